import {
  DEFAULT_RETENTION_CATEGORIES,
  loadConfig,
  newEvent,
  RetentionPolicy,
  sha256Hex,
  ValidationError,
} from '@holdfast/core';
import { createProducer } from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { type S3Server, startS3Server } from '@holdfast/testkit/s3-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore, type ObjectStore, S3WormStore } from '@holdfast/worm-store';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureMatterRegistry, holdMediaWithMessage } from '../src/holds.ts';
import {
  archiveEvent,
  MATTER_CACHE_MS,
  MatterNotFoundError,
  openMatters,
  placeHold,
  rebuildMatters,
  recordPolicyChange,
  releaseHold,
  start,
} from '../src/index.ts';
import { emailEvent } from './email-event.ts';

const policy = RetentionPolicy.defaults();
const DAY = 86_400_000;

interface Backend {
  store: ObjectStore;
  advance(ms: number): void;
  close(): Promise<void>;
}

const backends: [string, (dir: string) => Promise<Backend>][] = [
  [
    'LocalWormStore',
    async (dir) => {
      let offset = 0;
      const store = await LocalWormStore.open({ dir, clock: () => new Date(Date.now() + offset) });
      return {
        store,
        advance: (ms) => {
          offset += ms;
        },
        close: () => store.close(),
      };
    },
  ],
  [
    'S3WormStore (loopback S3)',
    async () => {
      let offset = 0;
      const clock = () => new Date(Date.now() + offset);
      const server: S3Server = await startS3Server({ clock });
      const store = await S3WormStore.open({
        bucket: server.bucket,
        endpoint: server.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
        clock,
      });
      return {
        store,
        advance: (ms) => {
          offset += ms;
        },
        close: async () => {
          await store.close();
          await server.close();
        },
      };
    },
  ],
];

const record = (subject: string, at: string, category = 'audit-log') =>
  newEvent({
    type: 'audit.login',
    occurredAt: new Date(at),
    project: 'acme',
    channel: 'record',
    direction: 'internal',
    subject,
    category,
    data: { user: subject },
  });

const inbound = (sid: string, from: string) =>
  newEvent({
    type: 'message.received',
    occurredAt: new Date('2026-03-01T10:00:00Z'),
    project: 'acme',
    channel: 'sms',
    direction: 'inbound',
    subject: from,
    category: 'sms-transactional',
    data: { provider: 'twilio', providerMessageId: sid, from, to: '+14155550100', body: 'photo' },
  });
/** What the media fetcher writes for a message's first media item: the bytes and their sidecar. */
const captureMedia = async (
  store: ObjectStore,
  message: { key: string; versionId: string },
  sid: string,
  legalHold = false,
) => {
  const bytes = Buffer.from(`jpeg of ${sid}`);
  const mediaKey = message.key.replace(/\.json$/, '-media-0.jpg');
  const sidecar = Buffer.from(
    JSON.stringify({
      type: 'media',
      project: 'acme',
      channel: 'sms',
      direction: 'inbound',
      message: { key: message.key, eventId: sid },
      blob: { key: mediaKey, sha256: sha256Hex(bytes), size: bytes.byteLength },
    }),
  );
  const common = { retainUntil: new Date('2033-03-01T10:00:00Z'), ifNoneMatch: true, legalHold };
  await store.put({
    key: mediaKey,
    body: bytes,
    sha256: sha256Hex(bytes),
    contentType: 'image/jpeg',
    ...common,
  });
  const metaKey = mediaKey.replace(/\.jpg$/, '.meta.json');
  await store.put({
    key: metaKey,
    body: sidecar,
    sha256: sha256Hex(sidecar),
    contentType: 'application/json',
    ...common,
  });
  return [mediaKey, metaKey];
};

describe.each(backends)('legal holds as matters over %s', (_name, open) => {
  let redis: TestRedis;
  let client: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let backend: Backend;
  beforeEach(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = await tempDir();
    backend = await open(`${dir.path}/store`);
  });
  afterEach(async () => {
    client.disconnect();
    await backend.close();
    await redis.stop();
    await dir.remove();
  });

  it('holds every selected version, archives who/why/the manifest first, and keeps held objects past their retention', async () => {
    const a = await archiveEvent(backend.store, policy, record('user-1', '2026-01-05T00:00:00Z'));
    const b = await archiveEvent(backend.store, policy, record('user-2', '2026-01-06T00:00:00Z'));
    const placed = await placeHold(backend.store, client, policy, {
      matter: 'SEC-2026-01',
      reason: 'SEC inquiry',
      actor: 'counsel@acme',
      selection: { subject: 'user-1' },
    });
    expect(placed.manifest).toEqual([{ key: a.key, versionId: a.versionId, sha256: a.sha256 }]);
    expect((await backend.store.head(a.key))!.legalHold).toBe(true);
    expect((await backend.store.head(b.key))!.legalHold).toBe(false);
    const evt = JSON.parse(Buffer.from((await backend.store.get(placed.eventKey)).body).toString());
    expect(evt).toMatchObject({
      type: 'hold.placed',
      subject: 'SEC-2026-01',
      category: 'audit-log-admin',
      data: { actor: 'counsel@acme', reason: 'SEC inquiry', manifest: placed.manifest },
    });
    expect((await backend.store.head(placed.eventKey))!.mode).toBe('COMPLIANCE');

    // Past retention, the held version still cannot be deleted; the unheld one can. Nor can the
    // placement's own record while the matter is open (a rebuilt registry reads it).
    backend.advance(8 * 366 * DAY);
    await expect(backend.store.deleteVersion(a.key, a.versionId)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_OBJECT_HELD',
    });
    const placement = (await backend.store.head(placed.eventKey))!;
    await expect(backend.store.deleteVersion(placed.eventKey, placement.versionId)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_OBJECT_HELD',
    });
    // Back to a date where the release's own record (locked from today's date) can be written.
    backend.advance(-4 * 366 * DAY);
    await backend.store.deleteVersion(b.key, b.versionId);

    const released = await releaseHold(backend.store, client, policy, {
      matter: 'SEC-2026-01',
      actor: 'counsel@acme',
      reason: 'closed',
    });
    expect(released.released.map((o) => o.key)).toEqual([a.key]);
    expect((await backend.store.head(a.key))!.legalHold).toBe(false);
    expect((await backend.store.head(placed.eventKey))!.legalHold).toBe(false);
    await backend.store.deleteVersion(a.key, a.versionId);
    const rel = JSON.parse(Buffer.from((await backend.store.get(released.eventKey)).body).toString());
    expect(rel).toMatchObject({
      type: 'hold.released',
      data: {
        actor: 'counsel@acme',
        released: expect.arrayContaining([{ key: a.key, versionId: a.versionId, sha256: a.sha256 }]),
      },
    });
  });

  it('keeps an object held while any other open matter holds it', async () => {
    const a = await archiveEvent(backend.store, policy, record('user-1', '2026-02-01T00:00:00Z'));
    await placeHold(backend.store, client, policy, {
      matter: 'M-1',
      reason: 'r1',
      actor: 'x',
      selection: { keys: [a.key] },
    });
    await placeHold(backend.store, client, policy, {
      matter: 'M-2',
      reason: 'r2',
      actor: 'x',
      selection: { channel: 'record', from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z' },
    });
    const first = await releaseHold(backend.store, client, policy, { matter: 'M-1', actor: 'x' });
    expect(first.stillHeld.map((o) => o.key)).toContain(a.key);
    expect((await backend.store.head(a.key))!.legalHold).toBe(true);
    await releaseHold(backend.store, client, policy, { matter: 'M-2', actor: 'x' });
    expect((await backend.store.head(a.key))!.legalHold).toBe(false);
  });

  it('a placement that runs while another matter is released keeps what it holds held', async () => {
    const a = await archiveEvent(backend.store, policy, record('user-1', '2026-02-01T00:00:00Z'));
    await placeHold(backend.store, client, policy, {
      matter: 'M-1',
      reason: 'r1',
      actor: 'x',
      selection: { keys: [a.key] },
    });
    // The release lifts its holds slowly: a placement that scans and holds in the meantime must
    // not have its hold lifted after it (it would leave an unheld object under an open matter).
    const slowLift = new Proxy(backend.store, {
      get(target, prop) {
        if (prop === 'setLegalHold')
          return async (key: string, versionId: string, on: boolean) => {
            if (!on) await new Promise((r) => setTimeout(r, 2 * MATTER_CACHE_MS));
            return target.setLegalHold(key, versionId, on);
          };
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const release = releaseHold(slowLift, client, policy, { matter: 'M-1', actor: 'x' });
    await new Promise((r) => setTimeout(r, 50));
    const place = placeHold(backend.store, client, policy, {
      matter: 'M-2',
      reason: 'r2',
      actor: 'x',
      selection: { subject: 'user-1' },
    });
    const [released, placed] = await Promise.all([release, place]);
    expect(released.released.map((o) => o.key)).toEqual([a.key]);
    expect(placed.manifest.map((o) => o.key)).toEqual([a.key]);
    expect((await backend.store.head(a.key))!.legalHold).toBe(true);
  });

  it('a participant selects a message by its sidecar, and holds the message bytes with it', async () => {
    const email = (id: string, to: string) =>
      emailEvent({ id, to, mime: `To: ${to}\r\nSubject: hi\r\n\r\nhello\r\n` });
    const wanted = await archiveEvent(
      backend.store,
      policy,
      email('019a0000-0000-7000-8000-000000000011', 'jane@customer.example'),
    );
    const other = await archiveEvent(
      backend.store,
      policy,
      email('019a0000-0000-7000-8000-000000000012', 'joe@customer.example'),
    );
    const placed = await placeHold(backend.store, client, policy, {
      matter: 'JANE',
      reason: 'subject access dispute',
      actor: 'counsel@acme',
      selection: { participant: 'jane@customer.example' },
    });
    const keysOf = (r: { objects?: { key: string }[] }) => r.objects!.map((o) => o.key).sort();
    expect(keysOf(wanted)).toHaveLength(2);
    expect(placed.manifest.map((o) => o.key).sort()).toEqual(keysOf(wanted));
    for (const key of keysOf(wanted)) expect((await backend.store.head(key))!.legalHold).toBe(true);
    for (const key of keysOf(other)) expect((await backend.store.head(key))!.legalHold).toBe(false);
  });

  it('a participant or subject hold also holds the media captured for the messages it selects', async () => {
    const wanted = await archiveEvent(backend.store, policy, inbound('SM1', '+447700900123'));
    const other = await archiveEvent(backend.store, policy, inbound('SM2', '+447700900999'));
    const wantedMedia = await captureMedia(backend.store, wanted, 'SM1');
    const otherMedia = await captureMedia(backend.store, other, 'SM2');

    const byParticipant = await placeHold(backend.store, client, policy, {
      matter: 'BY-PARTICIPANT',
      reason: 'complaint',
      actor: 'counsel@acme',
      selection: { participant: '+447700900123' },
    });
    expect(byParticipant.manifest.map((o) => o.key).sort()).toEqual([wanted.key, ...wantedMedia].sort());
    const bySubject = await placeHold(backend.store, client, policy, {
      matter: 'BY-SUBJECT',
      reason: 'complaint',
      actor: 'counsel@acme',
      selection: { subject: '+447700900123' },
    });
    expect(bySubject.manifest.map((o) => o.key).sort()).toEqual([wanted.key, ...wantedMedia].sort());
    for (const key of wantedMedia) expect((await backend.store.head(key))!.legalHold).toBe(true);
    for (const key of [other.key, ...otherMedia])
      expect((await backend.store.head(key))!.legalHold).toBe(false);
  });

  it("media the fetcher captured for a held message are the matter's: its release releases them", async () => {
    const message = await archiveEvent(backend.store, policy, inbound('SM3', '+447700900123'));
    await placeHold(backend.store, client, policy, {
      matter: 'M-MEDIA',
      reason: 'complaint',
      actor: 'x',
      selection: { participant: '+447700900123' },
    });
    // Fetched after the placement: the fetcher copies the message's hold onto what it writes.
    const [mediaKey, metaKey] = await captureMedia(backend.store, message, 'SM3', true);
    const versionOf = async (key: string) => (await backend.store.head(key))!.versionId;
    await holdMediaWithMessage(backend.store, client, () => openMatters(client), {
      messageKey: message.key,
      key: mediaKey!,
      versionId: await versionOf(mediaKey!),
      sidecarKey: metaKey!,
      sidecarVersionId: await versionOf(metaKey!),
    });
    const released = await releaseHold(backend.store, client, policy, { matter: 'M-MEDIA', actor: 'x' });
    expect(released.released.map((o) => o.key).sort()).toEqual([message.key, mediaKey, metaKey].sort());
    for (const key of [message.key, mediaKey!, metaKey!])
      expect((await backend.store.head(key))!.legalHold).toBe(false);
  });

  it('rebuilds the matter registry from the archive after Redis lost it, holding what was written meanwhile', async () => {
    const before = await archiveEvent(backend.store, policy, record('acct-1', '2026-03-01T00:00:00Z'));
    const placed = await placeHold(backend.store, client, policy, {
      matter: 'LIT-1',
      reason: 'litigation',
      actor: 'counsel@acme',
      selection: { subject: 'acct-1' },
    });
    await placeHold(backend.store, client, policy, {
      matter: 'AUDIT-9',
      reason: 'closed audit',
      actor: 'counsel@acme',
      selection: { keys: [before.key] },
    });
    await releaseHold(backend.store, client, policy, { matter: 'AUDIT-9', actor: 'counsel@acme' });

    // Redis loses everything; a write that LIT-1 selects lands while nobody knows of LIT-1.
    await client.flushall();
    const meanwhile = await archiveEvent(backend.store, policy, record('acct-1', '2026-03-02T00:00:00Z'));
    const other = await archiveEvent(backend.store, policy, record('acct-2', '2026-03-02T00:00:00Z'));
    expect((await backend.store.head(meanwhile.key))!.legalHold).toBe(false);

    const rebuilt = await rebuildMatters(backend.store, client, policy, { actor: 'oncall@acme' });
    expect(rebuilt.released).toEqual(['AUDIT-9']);
    const newlyHeld = [{ key: meanwhile.key, versionId: meanwhile.versionId, sha256: meanwhile.sha256 }];
    expect(rebuilt.open).toEqual([{ matter: 'LIT-1', held: 2, newlyHeld, eventKey: expect.any(String) }]);
    expect((await backend.store.head(meanwhile.key))!.legalHold).toBe(true);
    expect((await backend.store.head(before.key))!.legalHold).toBe(true);
    expect((await backend.store.head(other.key))!.legalHold).toBe(false);
    const matters = await openMatters(client);
    expect(matters).toEqual([
      expect.objectContaining({
        matter: 'LIT-1',
        reason: 'litigation',
        actor: 'counsel@acme',
        selection: { subject: 'acct-1' },
      }),
    ]);
    expect(placed.matter.selection).toEqual(matters[0]!.selection);
    // The newly held versions are on record, by whom, before their hold was set.
    const reapplied = JSON.parse(
      Buffer.from((await backend.store.get(rebuilt.open[0]!.eventKey!)).body).toString(),
    );
    expect(reapplied).toMatchObject({
      type: 'hold.reapplied',
      subject: 'LIT-1',
      data: { actor: 'oncall@acme', matter: 'LIT-1', manifest: newlyHeld },
    });

    // Running it again changes nothing, and the rebuilt matter releases everything it holds.
    const again = await rebuildMatters(backend.store, client, policy, { actor: 'oncall@acme' });
    expect(again.open).toEqual([{ matter: 'LIT-1', held: 2, newlyHeld: [] }]);
    const released = await releaseHold(backend.store, client, policy, {
      matter: 'LIT-1',
      actor: 'counsel@acme',
    });
    expect(released.released.map((o) => o.key).sort()).toEqual([before.key, meanwhile.key].sort());
    // The placement's record, held again by the rebuild, is released with its matter.
    expect((await backend.store.head(placed.eventKey))!.legalHold).toBe(false);
    expect((await backend.store.head(meanwhile.key))!.legalHold).toBe(false);
    expect((await rebuildMatters(backend.store, client, policy, { actor: 'oncall@acme' })).open).toEqual([]);
    expect(await openMatters(client)).toEqual([]);
  });

  it('restores a matter placed under an earlier policy that put operator events in another category', async () => {
    const { 'audit-log-admin': _admin, ...withoutAdmin } = DEFAULT_RETENTION_CATEGORIES;
    const earlier = new RetentionPolicy(withoutAdmin, 'earlier: operator events in default');
    await recordPolicyChange({ redis: client, store: backend.store, policy: earlier });
    await placeHold(backend.store, client, earlier, {
      matter: 'M-OLD',
      reason: 'placed under the earlier policy',
      actor: 'x',
      selection: { subject: 'user-1' },
    });
    await recordPolicyChange({ redis: client, store: backend.store, policy });
    await client.flushall();

    await ensureMatterRegistry(backend.store, client, policy);
    expect((await openMatters(client)).map((m) => m.matter)).toEqual(['M-OLD']);
  });

  it('refuses bad input with clear errors and changes nothing', async () => {
    await expect(
      releaseHold(backend.store, client, policy, { matter: 'no-such-matter', actor: 'x' }),
    ).rejects.toBeInstanceOf(MatterNotFoundError);
    await expect(
      placeHold(backend.store, client, policy, { matter: 'M', reason: 'r', actor: 'x', selection: {} }),
    ).rejects.toThrow(/select something/);
    await expect(
      placeHold(backend.store, client, policy, {
        matter: 'M',
        reason: 'r',
        actor: 'x',
        selection: { from: 'yesterday' },
      }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      placeHold(backend.store, client, policy, {
        matter: 'M',
        reason: ' ',
        actor: 'x',
        selection: { prefix: 'records/' },
      }),
    ).rejects.toThrow(/reason/);
    expect(await openMatters(client)).toEqual([]);
    let objects = 0;
    for await (const _ of backend.store.list('')) objects++;
    expect(objects).toBe(0);
  });
});

describe('writes under an open matter', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let client: Redis;
  let store: LocalWormStore;
  let archiver: { close(): Promise<void> };
  let producer: Awaited<ReturnType<typeof createProducer>>;
  beforeEach(async () => {
    redis = await startRedis();
    dir = await tempDir();
    client = new Redis(redis.url);
    store = await LocalWormStore.open({ dir: `${dir.path}/store` });
    const config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_SPOOL_DIR: `${dir.path}/spool`,
      HOLDFAST_LOG_LEVEL: 'silent',
      HOLDFAST_METRICS_PORT: '0',
    });
    archiver = await start(config, { store });
    producer = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: `${dir.path}/producer`,
    });
  });
  afterEach(async () => {
    await producer.close();
    await archiver.close();
    await store.close();
    client.disconnect();
    await redis.stop();
    await dir.remove();
  });

  it('are held at write time by the archiver', async () => {
    await placeHold(store, client, policy, {
      matter: 'LIT-7',
      reason: 'litigation',
      actor: 'counsel',
      selection: { subject: 'acct-9' },
    });
    const held = await producer.record({
      category: 'financial-transaction',
      type: 'transaction.posted',
      subject: 'acct-9',
      data: { amount: '1.00' },
    });
    const free = await producer.record({
      category: 'financial-transaction',
      type: 'transaction.posted',
      subject: 'acct-10',
      data: { amount: '2.00' },
    });
    const deadline = Date.now() + 20_000;
    while (
      Date.now() < deadline &&
      !((await store.head(held.archiveKey)) && (await store.head(free.archiveKey)))
    )
      await new Promise((r) => setTimeout(r, 50));
    expect((await store.head(held.archiveKey))!.legalHold).toBe(true);
    expect((await store.head(free.archiveKey))!.legalHold).toBe(false);
    const released = await releaseHold(store, client, policy, { matter: 'LIT-7', actor: 'counsel' });
    expect(released.released.map((o) => o.key)).toContain(held.archiveKey);
    expect((await store.head(held.archiveKey))!.legalHold).toBe(false);
  });

  it('are held even after Redis lost the matter registry: the archiver restores it from the archive first', async () => {
    await placeHold(store, client, policy, {
      matter: 'LIT-8',
      reason: 'litigation',
      actor: 'counsel',
      selection: { subject: 'acct-9' },
    });
    await client.flushall();
    // Past the archiver's cached view of the matters: it reads the (now empty) registry again.
    await new Promise((r) => setTimeout(r, MATTER_CACHE_MS * 1.5));
    const held = await producer.record({
      category: 'financial-transaction',
      type: 'transaction.posted',
      subject: 'acct-9',
      data: { amount: '1.00' },
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(await store.head(held.archiveKey)))
      await new Promise((r) => setTimeout(r, 50));
    expect((await store.head(held.archiveKey))!.legalHold).toBe(true);
    expect(await openMatters(client)).toEqual([
      expect.objectContaining({ matter: 'LIT-8', selection: { subject: 'acct-9' } }),
    ]);
    const released = await releaseHold(store, client, policy, { matter: 'LIT-8', actor: 'counsel' });
    expect(released.released.map((o) => o.key)).toContain(held.archiveKey);
  });
});
