import { sha256Hex, sidecarKey } from '@holdfast/core';
import type { IngestHandle } from '@holdfast/ingest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { readOutbox } from '../support/outbox.ts';
import { waitFor } from '../support/wait-for.ts';

const ACME_KEY = 'hf_acme_0123456789abcdef';
const BETA_KEY = 'hf_beta_0123456789abcdef';

describe('ingest API', () => {
  let fleet: TestFleet;
  let ingest: IngestHandle;
  const call = (path: string, init: RequestInit & { key?: string | null } = {}) => {
    const { key = ACME_KEY, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (key) headers.set('authorization', `Bearer ${key}`);
    return fetch(`${ingest.url}${path}`, { ...rest, headers });
  };
  const postJson = (path: string, body: unknown, init: RequestInit & { key?: string | null } = {}) =>
    call(path, {
      method: 'POST',
      ...init,
      headers: { 'content-type': 'application/json', ...(init.headers ?? {}) },
      body: JSON.stringify(body),
    });
  const spooled = () => ingest.writer.stats().spool.appends;

  beforeEach(async () => {
    fleet = await startFleet({
      env: { HOLDFAST_API_KEYS: `acme:${ACME_KEY},beta:${BETA_KEY}`, HOLDFAST_INGEST_BODY_LIMIT: '65536' },
    });
    await fleet.startArchiver();
    await fleet.startSender();
    ingest = await fleet.startIngest();
  });
  afterEach(async () => {
    await fleet.close();
  });

  it('sends an email with the SDK semantics: 202, archived under lock, then sent', async () => {
    const res = await postJson('/v1/messages/email', {
      from: 'a@acme.example',
      to: ['b@x.example'],
      subject: 'hi',
      text: 'hello',
    });
    expect(res.status).toBe(202);
    const { id, archiveKey } = (await res.json()) as { id: string; archiveKey: string };
    expect(archiveKey.startsWith('email/acme/outbound/')).toBe(true);
    await waitFor('sent', async () => (await readOutbox(fleet.outboxDir)).length === 1);
    expect((await fleet.store.head(archiveKey))?.mode).toBe('COMPLIANCE');

    const view = await waitFor('timeline with sent', async () => {
      const r = await call(`/v1/messages/${id}`);
      const v =
        r.status === 200
          ? ((await r.json()) as { state: string; events: { type: string; key: string }[] })
          : undefined;
      return v?.state === 'sent' ? v : undefined;
    });
    expect(view.events.map((e) => e.type)).toEqual([
      'message.submitted',
      'message.send-attempted',
      'message.sent',
    ]);
    expect(view.events[0]!.key).toBe(archiveKey);
    // Another project's key cannot see it.
    expect((await call(`/v1/messages/${id}`, { key: BETA_KEY })).status).toBe(404);
  });

  it('archives a JSON record and a binary document record, each under its category', async () => {
    const json = await postJson('/v1/records', {
      category: 'audit-log-admin',
      type: 'audit.role-granted',
      subject: 'user-7',
      occurredAt: '2026-02-03T04:05:06Z',
      data: { role: 'admin', by: 'ops-1' },
    });
    expect(json.status).toBe(202);
    const jsonKey = ((await json.json()) as { archiveKey: string }).archiveKey;
    expect(jsonKey).toMatch(/^records\/audit-log-admin\/2026\/02\/03\//);

    const pdf = Buffer.from('%PDF-1.7\nsigned contract body\n%%EOF');
    const doc = await call(
      '/v1/records?category=contract&type=contract.signed&subject=customer-42&occurredAt=2026-01-15T10:00:00Z&filename=msa.pdf',
      {
        method: 'POST',
        headers: { 'content-type': 'application/pdf' },
        body: pdf,
      },
    );
    expect(doc.status).toBe(202);
    const docKey = ((await doc.json()) as { archiveKey: string }).archiveKey;
    expect(docKey).toBe(
      `records/contract/2026/01/15/2026-01-15T10:00:00.000Z_${sha256Hex(pdf).slice(0, 12)}.pdf`,
    );

    // The blob is written before its sidecar: wait for both.
    await waitFor('document sidecar archived', () => fleet.store.head(sidecarKey(docKey)));
    const head = await waitFor('document archived', () => fleet.store.head(docKey));
    expect(head).toMatchObject({
      mode: 'COMPLIANCE',
      sha256: sha256Hex(pdf),
      contentType: 'application/pdf',
    });
    expect(head.retainUntil!.toISOString()).toBe('2033-01-15T10:00:00.000Z');
    expect(Buffer.from((await fleet.store.get(docKey)).body).equals(pdf)).toBe(true);
    const sidecar = JSON.parse(Buffer.from((await fleet.store.get(sidecarKey(docKey))).body).toString());
    expect(sidecar).toMatchObject({
      subject: 'customer-42',
      record: { document: { filename: 'msa.pdf', sha256: sha256Hex(pdf) } },
    });
    expect(sidecar.record.document.base64).toBeUndefined();
    await waitFor('json record archived', () => fleet.store.head(jsonKey));
  });

  it('returns the first response for a repeated Idempotency-Key and submits nothing new', async () => {
    const body = {
      category: 'financial-transaction',
      type: 'transaction.posted',
      subject: 'acct-1',
      data: { amount: '10.00' },
    };
    const first = await postJson('/v1/records', body, { headers: { 'idempotency-key': 'tx-abc-1' } });
    const appends = spooled();
    const again = await postJson('/v1/records', body, { headers: { 'idempotency-key': 'tx-abc-1' } });
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(await first.json());
    expect(spooled()).toBe(appends);

    const reused = await postJson(
      '/v1/records',
      { ...body, subject: 'acct-2' },
      { headers: { 'idempotency-key': 'tx-abc-1' } },
    );
    expect(reused.status).toBe(422);
    expect(((await reused.json()) as { error: { code: string } }).error.code).toBe(
      'HOLDFAST_ERR_IDEMPOTENCY_KEY_REUSED',
    );
    // Keys are per project: the same key from another project is a new request.
    expect(
      (
        await postJson('/v1/records', body, { key: BETA_KEY, headers: { 'idempotency-key': 'tx-abc-1' } })
      ).headers.get('idempotent-replayed'),
    ).toBe('false');
  });

  describe('bad input gets a clear error and nothing is spooled', () => {
    const cases: [string, () => Promise<Response>, number, string, RegExp][] = [
      [
        'no API key',
        () => postJson('/v1/records', {}, { key: null }),
        401,
        'HOLDFAST_ERR_UNAUTHORIZED',
        /Bearer/,
      ],
      [
        'a wrong API key',
        () => postJson('/v1/records', {}, { key: 'hf_wrong_0123456789abcdef' }),
        401,
        'HOLDFAST_ERR_UNAUTHORIZED',
        /not valid/,
      ],
      [
        'malformed JSON',
        () =>
          call('/v1/records', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: '{"category":',
          }),
        400,
        'HOLDFAST_ERR_MALFORMED_BODY',
        /JSON/i,
      ],
      [
        'a missing field',
        () => postJson('/v1/records', { type: 'a.b', subject: 's', data: {} }),
        400,
        'HOLDFAST_ERR_VALIDATION',
        /category/,
      ],
      [
        'an unknown category',
        () => postJson('/v1/records', { category: 'nope', type: 'a.b', subject: 's', data: {} }),
        400,
        'HOLDFAST_ERR_VALIDATION',
        /retention category "nope"/,
      ],
      [
        'an invalid email',
        () =>
          postJson('/v1/messages/email', { from: 'a@acme.example', to: 'nobody', subject: 's', text: 't' }),
        400,
        'HOLDFAST_ERR_VALIDATION',
        /to: "nobody" is not an email address/,
      ],
      [
        'a body over the limit',
        () =>
          postJson('/v1/records', {
            category: 'audit-log',
            type: 'a.b',
            subject: 's',
            data: { blob: 'x'.repeat(70_000) },
          }),
        413,
        'HOLDFAST_ERR_BODY_TOO_LARGE',
        /./,
      ],
      [
        'a non-JSON email',
        () =>
          call('/v1/messages/email', {
            method: 'POST',
            headers: { 'content-type': 'text/csv' },
            body: 'a,b',
          }),
        415,
        'HOLDFAST_ERR_UNSUPPORTED_MEDIA_TYPE',
        /application\/json/,
      ],
      [
        'an empty document',
        () =>
          call('/v1/records?category=contract&type=contract.signed&subject=c', {
            method: 'POST',
            headers: { 'content-type': 'application/pdf' },
            body: '',
          }),
        400,
        'HOLDFAST_ERR_',
        /./,
      ],
      [
        'an SMS to a number that is not E.164',
        () => postJson('/v1/messages/sms', { from: '+14155550100', to: '5550100', body: 'x' }),
        400,
        'HOLDFAST_ERR_VALIDATION',
        /to: must be an E\.164 number/,
      ],
      [
        'a WhatsApp message with both text and a template',
        () =>
          postJson('/v1/messages/whatsapp', {
            to: '+14155550100',
            text: 'hi',
            template: { name: 'x', language: 'en' },
          }),
        400,
        'HOLDFAST_ERR_VALIDATION',
        /exactly one of text, template or media/,
      ],
      [
        'a WhatsApp template with a bad language code',
        () =>
          postJson('/v1/messages/whatsapp', {
            to: '+14155550100',
            template: { name: 'otp', language: 'English' },
          }),
        400,
        'HOLDFAST_ERR_VALIDATION',
        /template\.language: must be a language code/,
      ],
    ];
    it.each(cases)('%s', async (_name, send, status, code, message) => {
      const before = spooled();
      const res = await send();
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code.startsWith(code)).toBe(true);
      expect(body.error.message).toMatch(message);
      expect(spooled()).toBe(before);
    });
  });

  it('reports health and readiness', async () => {
    expect((await call('/healthz', { key: null })).status).toBe(200);
    const ready = await call('/readyz', { key: null });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { spool: 'ok', redis: 'ok' } });
    await fleet.redis.kill();
    const notReady = await call('/readyz', { key: null });
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { checks: { redis: string } }).checks.redis).not.toBe('ok');
    await fleet.redis.restart();
    await waitFor(
      'ready again once Redis is back',
      async () => (await call('/readyz', { key: null })).status === 200,
    );
  });

  it('answers 404 with the stable error shape for an unknown route or message', async () => {
    const route = await call('/v2/nothing');
    expect(route.status).toBe(404);
    expect(((await route.json()) as { error: { code: string } }).error.code).toBe('HOLDFAST_ERR_NOT_FOUND');
    expect((await call('/v1/messages/01930000-0000-7000-8000-000000000000')).status).toBe(404);
  });
});
