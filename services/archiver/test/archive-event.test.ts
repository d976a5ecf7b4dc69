import {
  canonicalJson,
  DEFAULT_RETENTION_CATEGORIES,
  newEvent,
  RetentionPolicy,
  sha256Hex,
  sidecarKey,
} from '@holdfast/core';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore, ObjectConflictError } from '@holdfast/worm-store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveEvent, PayloadHashMismatchError } from '../src/index.ts';
import { emailEvent } from './email-event.ts';

const policy = RetentionPolicy.defaults();

async function countVersions(store: LocalWormStore): Promise<number> {
  let n = 0;
  for await (const _ of store.listVersions('')) n++;
  return n;
}

describe('archiveEvent', () => {
  let dir: { path: string; remove(): Promise<void> };
  let store: LocalWormStore;
  beforeEach(async () => {
    dir = await tempDir();
    store = await LocalWormStore.open({ dir: dir.path });
  });
  afterEach(async () => {
    await store.close();
    await dir.remove();
  });

  it('writes the message blob and its sidecar with retention from the message date', async () => {
    const event = emailEvent();
    const result = await archiveEvent(store, policy, event);
    expect(result.created).toBe(true);
    expect(result.key).toMatch(
      /^email\/acme\/outbound\/2026\/05\/01\/2026-05-01T12:00:00.000Z_[0-9a-f]{12}\.eml$/,
    );
    expect(result.retainUntil).toBe('2033-05-01T12:00:00.000Z');
    const blob = await store.head(result.key);
    const sidecar = await store.head(sidecarKey(result.key));
    expect(blob).toMatchObject({
      mode: 'COMPLIANCE',
      contentType: 'message/rfc822',
      sha256: sha256Hex('Subject: hi\r\n\r\nhello\r\n'),
    });
    expect(sidecar!.retainUntil!.toISOString()).toBe('2033-05-01T12:00:00.000Z');
    const meta = JSON.parse(Buffer.from((await store.get(sidecarKey(result.key))).body).toString());
    expect(meta.message.mime).toBeUndefined();
    expect(meta.capturedAt).toBe(event.recordedAt);
  });

  it('is idempotent: a re-delivered event writes nothing new', async () => {
    const event = emailEvent();
    const first = await archiveEvent(store, policy, event);
    const again = await archiveEvent(store, policy, structuredClone(event));
    expect(again).toMatchObject({
      created: false,
      key: first.key,
      versionId: first.versionId,
      sha256: first.sha256,
    });
    expect(await countVersions(store)).toBe(2);
  });

  it('finishes a half-done write: blob present, sidecar missing', async () => {
    const event = emailEvent();
    const first = await archiveEvent(store, policy, event);
    const otherDir = await tempDir();
    const other = await LocalWormStore.open({ dir: otherDir.path });
    try {
      // The same blob alone, as if the archiver crashed between its two puts.
      const blob = await store.get(first.key);
      await other.put({
        key: first.key,
        body: blob.body,
        sha256: first.sha256,
        contentType: 'message/rfc822',
        retainUntil: new Date(first.retainUntil),
        ifNoneMatch: true,
      });
      const finished = await archiveEvent(other, policy, event);
      expect(finished.created).toBe(false);
      expect(await other.head(sidecarKey(first.key))).toBeDefined();
    } finally {
      await other.close();
      await otherDir.remove();
    }
  });

  it('refuses a message whose bytes do not match the hash it was accepted with', async () => {
    const event = emailEvent();
    (event.data as { mime: string }).mime = 'tampered';
    await expect(archiveEvent(store, policy, event)).rejects.toBeInstanceOf(PayloadHashMismatchError);
    expect(await countVersions(store)).toBe(0);
  });

  it('reports a different object at the deterministic key as a conflict', async () => {
    const event = newEvent({
      type: 'audit.login',
      occurredAt: new Date('2026-01-01T00:00:00Z'),
      project: 'acme',
      channel: 'record',
      direction: 'internal',
      subject: 'u1',
      category: 'audit-log',
      data: {},
    });
    const { key } = await archiveEvent(store, policy, event);
    const otherDir = await tempDir();
    const other = await LocalWormStore.open({ dir: otherDir.path });
    try {
      const junk = Buffer.from('not the record');
      await other.put({
        key,
        body: junk,
        sha256: sha256Hex(junk),
        contentType: 'application/json',
        retainUntil: new Date('2030-01-01'),
        ifNoneMatch: true,
      });
      await expect(archiveEvent(other, policy, event)).rejects.toBeInstanceOf(ObjectConflictError);
    } finally {
      await other.close();
      await otherDir.remove();
    }
  });

  it('adopts the sidecar an earlier run wrote under another policy: the first lock stands', async () => {
    const event = emailEvent();
    const first = await archiveEvent(store, policy, event);
    const longer = new RetentionPolicy(
      { ...DEFAULT_RETENTION_CATEGORIES, 'email-transactional': '10y' },
      'longer email retention',
    );
    // A retried or re-enqueued job runs after the policy changed: its sidecar would say 2036.
    const again = await archiveEvent(store, longer, structuredClone(event));
    expect(again).toMatchObject({
      created: false,
      versionId: first.versionId,
      retainUntil: first.retainUntil,
    });
    expect(again.objects).toEqual(first.objects);
    expect(await countVersions(store)).toBe(2);
  });

  it('still refuses a sidecar at the key that another event wrote', async () => {
    const event = emailEvent();
    const { key } = await archiveEvent(store, policy, event);
    const otherDir = await tempDir();
    const other = await LocalWormStore.open({ dir: otherDir.path });
    try {
      const junk = Buffer.from('{"not":"this event"}');
      await other.put({
        key: sidecarKey(key),
        body: junk,
        sha256: sha256Hex(junk),
        contentType: 'application/json',
        retainUntil: new Date('2040-01-01'),
        ifNoneMatch: true,
        metadata: { 'holdfast-event-id': '019a0000-0000-7000-8000-0000000000ff' },
      });
      await expect(archiveEvent(other, policy, event)).rejects.toBeInstanceOf(ObjectConflictError);
    } finally {
      await other.close();
      await otherDir.remove();
    }
  });

  it('holds the versions an earlier run left unheld when a matter now selects them', async () => {
    const event = emailEvent();
    const first = await archiveEvent(store, policy, event);
    const again = await archiveEvent(store, policy, event, { legalHold: true });
    expect(again.created).toBe(false);
    for (const o of first.objects!)
      expect((await store.head(o.key, { versionId: o.versionId }))?.legalHold).toBe(true);
  });

  it('keeps an event whose retention ended before it was archived, locked for a day from now', async () => {
    const event = newEvent({
      type: 'audit.login',
      occurredAt: new Date('2020-01-01T00:00:00Z'),
      project: 'acme',
      channel: 'record',
      direction: 'internal',
      subject: 'u1',
      category: 'audit-log',
      data: {},
    });
    const before = Date.now();
    const result = await archiveEvent(store, policy, event);
    const lockedUntil = Date.parse(result.retainUntil);
    expect(lockedUntil).toBeGreaterThanOrEqual(before + 24 * 3600 * 1000);
    expect(lockedUntil).toBeLessThanOrEqual(Date.now() + 24 * 3600 * 1000);
    expect((await store.head(result.key))?.retainUntil?.getTime()).toBe(lockedUntil);
  });

  it('archives records as canonical JSON keyed by category and record date', async () => {
    const event = newEvent({
      type: 'transaction.posted',
      occurredAt: new Date('2024-02-29T08:00:00Z'),
      project: 'acme',
      channel: 'record',
      direction: 'internal',
      subject: 'acct-1',
      category: 'financial-transaction',
      data: { b: 1, a: 2 },
    });
    const result = await archiveEvent(store, policy, event);
    expect(result.key.startsWith('records/financial-transaction/2024/02/29/')).toBe(true);
    expect(result.retainUntil).toBe('2031-03-01T08:00:00.000Z');
    expect(Buffer.from((await store.get(result.key)).body).toString()).toBe(canonicalJson(event));
  });

  it('refuses an unknown category without writing', async () => {
    const event = newEvent({
      type: 'audit.login',
      occurredAt: new Date(),
      project: 'acme',
      channel: 'record',
      direction: 'internal',
      subject: 'u',
      category: 'unheard-of',
      data: {},
    });
    await expect(archiveEvent(store, policy, event)).rejects.toThrow(
      /unknown retention category "unheard-of"/,
    );
    expect(await countVersions(store)).toBe(0);
  });
});
