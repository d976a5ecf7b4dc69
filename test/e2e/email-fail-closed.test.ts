import {
  addDuration,
  canonicalJson,
  parseDuration,
  RetentionPolicy,
  sha256Hex,
  sidecarKey,
} from '@holdfast/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { readOutbox } from '../support/outbox.ts';
import { sleep, waitFor } from '../support/wait-for.ts';

const email = {
  from: 'Acme Alerts <alerts@acme.example>',
  to: ['Ada <ada@customer.example>'],
  cc: ['ops@acme.example'],
  bcc: ['compliance@acme.example'],
  subject: 'Your statement is ready',
  text: 'Hello Ada, your statement is attached.',
  html: '<p>Hello Ada, your statement is attached.</p>',
  attachments: [
    {
      filename: 'statement.pdf',
      content: Buffer.from('%PDF-1.7 fake').toString('base64'),
      encoding: 'base64' as const,
      contentType: 'application/pdf',
    },
  ],
  metadata: { ticket: 'T-42' },
};

async function archivedJson(fleet: TestFleet, prefix: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const o of fleet.store.list(prefix)) {
    if (o.key.endsWith('.json') && !o.key.endsWith('.meta.json')) {
      out.push(JSON.parse(Buffer.from((await fleet.store.get(o.key)).body).toString('utf8')));
    }
  }
  return out;
}

describe('sendEmail end to end (fail-closed email)', () => {
  let fleet: TestFleet;
  beforeEach(async () => {
    fleet = await startFleet();
  });
  afterEach(async () => {
    await fleet.close();
  });

  it('archives the .eml and its sidecar under COMPLIANCE retention, then sends the same bytes', async () => {
    await fleet.startArchiver();
    await fleet.startSender();
    const producer = await fleet.producer();

    const { id, archiveKey } = await producer.sendEmail(email);

    const [sent] = await waitFor('the email in the outbox', async () => {
      const entries = await readOutbox(fleet.outboxDir);
      return entries.length > 0 ? entries : undefined;
    });
    const head = await fleet.store.head(archiveKey);
    expect(head).toBeDefined();
    const sidecar = JSON.parse(
      Buffer.from((await fleet.store.get(sidecarKey(archiveKey))).body).toString('utf8'),
    );

    // Retention: COMPLIANCE, counted from the message's own date by the policy's category.
    expect(head!.mode).toBe('COMPLIANCE');
    expect(sidecar.category).toBe('email-transactional');
    const expected = addDuration(new Date(sidecar.occurredAt), parseDuration('7y'));
    expect(head!.retainUntil!.toISOString()).toBe(expected.toISOString());
    expect(head!.retainUntil!.toISOString()).toBe(
      RetentionPolicy.defaults().retainUntil('email-transactional', sidecar.occurredAt).toISOString(),
    );

    // The outbox holds exactly the archived bytes, and the sidecar records their hash.
    expect(sent!.eventId).toBe(id);
    expect(sha256Hex(sent!.raw)).toBe(sidecar.blob.sha256);
    expect(head!.sha256).toBe(sidecar.blob.sha256);
    expect(Buffer.from((await fleet.store.get(archiveKey)).body).equals(sent!.raw)).toBe(true);
    expect(sent!.raw.toString()).toContain(`Message-ID: <${id}@acme.example>`);
    expect(sent!.raw.toString()).not.toMatch(/^Bcc:/im);

    // Bcc is in the envelope and the sidecar, never in the headers.
    expect(sent!.envelope.to.sort()).toEqual([
      'ada@customer.example',
      'compliance@acme.example',
      'ops@acme.example',
    ]);
    expect(sidecar.message.headers.bcc).toEqual(['compliance@acme.example']);
    expect(sidecar).toMatchObject({
      project: 'acme',
      eventId: id,
      archiveVersion: 1,
      message: { metadata: { ticket: 'T-42' } },
    });
    const sidecarHead = await fleet.store.head(sidecarKey(archiveKey));
    expect(sidecarHead!.retainUntil!.toISOString()).toBe(expected.toISOString());

    // The archive write finished before the send started.
    const archiveJob = await fleet.queue('archive').getJob(id);
    const sendJob = await fleet.queue('send-email').getJob(id);
    expect(archiveJob!.finishedOn).toBeLessThanOrEqual(sendJob!.processedOn!);
    expect(head!.lastModified.getTime()).toBeLessThanOrEqual(sent!.writtenAt.getTime());

    // message.sent went through the same path: archived, carrying the provider's id.
    const events = await waitFor('message.sent archived', async () => {
      const found = (await archivedJson(fleet, 'email/acme/outbound/')).filter(
        (e) => e.type === 'message.sent',
      );
      return found.length > 0 ? found : undefined;
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      subject: id,
      data: { transport: 'outbox', providerMessageId: sent!.providerMessageId },
    });

    // Once fully handled, nothing is left in the producer's spool.
    await waitFor('producer spool drained', () => producer.stats().backlog === 0);
  });

  it('sends nothing while the archiver is down, then archives and sends exactly once when it returns', async () => {
    await fleet.startSender();
    const producer = await fleet.producer();
    const { id, archiveKey } = await producer.sendEmail(email);

    await sleep(2_000);
    expect(await readOutbox(fleet.outboxDir)).toHaveLength(0);
    expect(await fleet.store.head(archiveKey)).toBeUndefined();
    // Structurally blocked, not merely slow: the send waits on its archive child.
    expect(await fleet.queue('send-email').getJobState(id)).toBe('waiting-children');

    await fleet.startArchiver();
    await waitFor('the email sent', async () => (await readOutbox(fleet.outboxDir)).length > 0);
    await sleep(1_000);
    const sent = await readOutbox(fleet.outboxDir);
    expect(sent).toHaveLength(1);
    const head = await fleet.store.head(archiveKey);
    expect(head!.lastModified.getTime()).toBeLessThanOrEqual(sent[0]!.writtenAt.getTime());
    await waitFor(
      'message.sent archived',
      async () => (await archivedJson(fleet, 'email/acme/outbound/')).length === 2,
    );
    const versions: unknown[] = [];
    for await (const v of fleet.store.listVersions('email/acme/outbound/')) versions.push(v);
    // .eml + .meta.json + message.send-attempted + message.sent, each written once.
    expect(versions).toHaveLength(4);
  });

  it('accepts while Redis is down and delivers once Redis is back (the spool drainer re-enqueues)', async () => {
    await fleet.startArchiver();
    await fleet.startSender();
    const producer = await fleet.producer({ redeliverAfterMs: 200, drainIntervalMs: 200 });
    await fleet.redis.kill();

    const accepted = await producer.sendEmail(email);
    expect(producer.stats().backlog).toBe(1);

    await fleet.redis.restart();
    await waitFor(
      'the email sent after Redis returned',
      async () => (await readOutbox(fleet.outboxDir)).length > 0,
      30_000,
    );
    expect((await fleet.store.head(accepted.archiveKey))?.mode).toBe('COMPLIANCE');
    await waitFor('producer spool drained', () => producer.stats().backlog === 0);
    expect(await readOutbox(fleet.outboxDir)).toHaveLength(1);
  });

  it('archives records as canonical JSON under their category, counted from the record date', async () => {
    await fleet.startArchiver();
    const producer = await fleet.producer();
    const { id, archiveKey } = await producer.record({
      category: 'financial-transaction',
      type: 'transaction.posted',
      subject: 'account-991',
      occurredAt: '2025-03-31T23:59:59.000Z',
      data: { amount: '125.00', currency: 'EUR', z: 1, a: 2 },
    });
    expect(archiveKey).toMatch(
      /^records\/financial-transaction\/2025\/03\/31\/2025-03-31T23:59:59.000Z_[0-9a-f]{12}\.json$/,
    );
    const head = await waitFor('record archived', () => fleet.store.head(archiveKey));
    expect(head.retainUntil!.toISOString()).toBe('2032-03-31T23:59:59.000Z');
    const body = Buffer.from((await fleet.store.get(archiveKey)).body).toString('utf8');
    const event = JSON.parse(body);
    expect(event).toMatchObject({
      id,
      channel: 'record',
      category: 'financial-transaction',
      subject: 'account-991',
    });
    expect(body).toBe(canonicalJson(event));
    expect(archiveKey).toContain(`_${sha256Hex(body).slice(0, 12)}.json`);
  });
});
