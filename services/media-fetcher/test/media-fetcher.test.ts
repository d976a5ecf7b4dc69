import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
// The real archiver, so the media job comes from its enqueueMedia and media.captured is archived by it.
import { type ArchiverHandle, start as startArchiver } from '@holdfast/archiver';
import {
  type ArchiveJobResult,
  type EventEnvelope,
  type MediaJobData,
  QUEUE_PREFIX,
  QUEUES,
  RetentionPolicy,
  sidecarKey,
} from '@holdfast/core';
import { archiveJobOptions } from '@holdfast/producer';
import { type MediaServer, startMediaServer } from '@holdfast/testkit/media-server';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore } from '@holdfast/worm-store';
import { type Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MediaFetcherHandle, type MediaJobResult, start } from '../src/index.ts';
import {
  ACCESS_TOKEN,
  ACCOUNT_SID,
  AUTH_TOKEN,
  addMediaJob,
  archivedParent,
  inboundMessage,
  keysUnder,
  settled,
  testConfig,
} from './fixtures.ts';

const MAX_BYTES = 1024 * 1024;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const basic = `Basic ${Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64')}`;

let redis: TestRedis;
let server: MediaServer;
let connection: Redis;
let dir: { path: string; remove(): Promise<void> };
let store: LocalWormStore;
let queue: Queue<MediaJobData>;
let archiveQueue: Queue;
let fetcher: MediaFetcherHandle | undefined;
let archiver: ArchiverHandle | undefined;

beforeAll(async () => {
  redis = await startRedis();
  server = await startMediaServer();
  connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  queue = new Queue<MediaJobData>(QUEUES.media, { connection, prefix: QUEUE_PREFIX });
  archiveQueue = new Queue(QUEUES.archive, { connection, prefix: QUEUE_PREFIX });
});

afterAll(async () => {
  await queue?.close();
  await archiveQueue?.close();
  connection?.disconnect();
  await server?.close();
  await redis?.stop();
});

beforeEach(async () => {
  dir = await tempDir('holdfast-media-');
  store = await LocalWormStore.open({ dir: join(dir.path, 'store') });
  server.requests.length = 0;
});

afterEach(async () => {
  await fetcher?.close();
  await archiver?.close();
  fetcher = undefined;
  archiver = undefined;
  await store.close();
  // Queue names are fixed (`media`, `archive`): every test starts from an empty Redis instead.
  await connection.flushall();
  await dir.remove();
});

async function startFetcher(env: Record<string, string> = {}) {
  const config = testConfig({
    REDIS_URL: redis.url,
    HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
    HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
    HOLDFAST_WHATSAPP_GRAPH_URL: server.origin,
    HOLDFAST_TWILIO_API_URL: server.origin,
    HOLDFAST_MEDIA_MAX_BYTES: String(MAX_BYTES),
    HOLDFAST_MEDIA_TIMEOUT_MS: '10000',
    ...env,
  });
  fetcher = await start(config, { store, extraCa: [server.ca], retryBaseMs: 50, retryCapMs: 200 });
  return config;
}

async function readJson(key: string): Promise<Record<string, unknown>> {
  return JSON.parse(Buffer.from((await store.get(key)).body).toString('utf8'));
}

/** A job that failed at once, without retries, with the typed error's code and message. */
function expectPermanent(job: Job, code: string): void {
  expect(job.finishedOn).toBeDefined();
  expect(job.failedReason).toMatch(new RegExp(`^${code}: `));
  expect(job.attemptsMade).toBe(1);
}

describe('media fetcher: WhatsApp', () => {
  it('archives the media of an inbound message in two bearer-token steps, with its sidecar, and records media.captured through the archiver', async () => {
    const config = await startFetcher();
    archiver = await startArchiver(config, { store, policy: RetentionPolicy.defaults() });
    const bytes = randomBytes(300_000);
    const mediaId = '1037543291543636';
    server.whatsappMedia({ mediaId, accessToken: ACCESS_TOKEN, body: { bytes, contentType: 'image/jpeg' } });
    const wamid = 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUEzRjE1QzM1MjQ0RkQwNkVFMgA=';
    const event = inboundMessage({
      provider: 'whatsapp',
      channel: 'whatsapp',
      occurredAt: new Date('2026-05-01T12:00:00.000Z'),
      providerMessageId: wamid,
      media: [{ mediaId, contentType: 'image/jpeg', index: 0 }],
    });
    await archiveQueue.add('archive', { event }, archiveJobOptions(event));

    const parent = (await settled(archiveQueue, event.id)).returnvalue as ArchiveJobResult;
    const job = await settled(queue, `${event.id}-0`);
    expect(job.failedReason).toBeUndefined();
    expect(job.data).toMatchObject({ subject: event.subject, category: 'whatsapp-transactional' });
    const result = job.returnvalue as MediaJobResult;
    const hash = sha256(bytes);
    expect(result).toMatchObject({
      sha256: hash,
      size: bytes.byteLength,
      contentType: 'image/jpeg',
      created: true,
    });
    expect(result.key).toBe(
      `whatsapp/acme/inbound/2026/05/01/2026-05-01T12:00:00.000Z_${hash.slice(0, 12)}_${wamid}-media-0.jpg`,
    );
    expect(result.key.startsWith(parent.key.slice(0, parent.key.lastIndexOf('/') + 1))).toBe(true);

    const blob = await store.get(result.key);
    expect(Buffer.compare(Buffer.from(blob.body), bytes)).toBe(0);
    expect(blob.head).toMatchObject({
      sha256: hash,
      contentType: 'image/jpeg',
      mode: 'COMPLIANCE',
      legalHold: false,
      retainUntil: new Date(parent.retainUntil),
    });

    const sidecar = await readJson(sidecarKey(result.key));
    expect(sidecar).toMatchObject({
      type: 'media',
      project: 'acme',
      provider: 'whatsapp',
      capturedAt: blob.head.lastModified.toISOString(),
      retainUntil: parent.retainUntil,
      message: { eventId: event.id, key: parent.key, subject: event.subject },
      media: { index: 0, source: { mediaId }, providerSha256: hash },
      blob: { key: result.key, sha256: hash, size: bytes.byteLength, contentType: 'image/jpeg' },
    });
    const text = JSON.stringify(sidecar);
    expect(text).not.toContain(ACCESS_TOKEN);
    expect(text).not.toContain('hash=');
    expect(text).not.toContain('?');
    expect((await store.head(sidecarKey(result.key)))?.retainUntil).toEqual(new Date(parent.retainUntil));

    // Both steps carried the bearer token; the download URL was the one the metadata named.
    const metadata = server.requests.filter((r) => r.path === `/v23.0/${mediaId}`);
    const download = server.requests.filter((r) => r.path === '/whatsapp_business/attachments/');
    expect(metadata.map((r) => r.authorization)).toEqual([`Bearer ${ACCESS_TOKEN}`]);
    expect(download.map((r) => [r.authorization, r.query.mid])).toEqual([
      [`Bearer ${ACCESS_TOKEN}`, mediaId],
    ]);

    // media.captured went through the spool to the archiver, which archived it.
    const captured = (await settled(archiveQueue, result.capturedEventId)).returnvalue as ArchiveJobResult;
    const capturedEvent = (await readJson(captured.key)) as EventEnvelope;
    expect(capturedEvent).toMatchObject({
      id: result.capturedEventId,
      type: 'media.captured',
      project: 'acme',
      channel: 'whatsapp',
      direction: 'inbound',
      subject: event.subject,
      occurredAt: blob.head.lastModified.toISOString(),
      data: {
        messageEventId: event.id,
        messageKey: parent.key,
        key: result.key,
        sha256: hash,
        size: bytes.byteLength,
        contentType: 'image/jpeg',
        provider: 'whatsapp',
        mediaId,
      },
    });
    expect(JSON.stringify(capturedEvent)).not.toContain(ACCESS_TOKEN);
  });

  it('is idempotent: the same job run again writes nothing new and records the same event', async () => {
    await startFetcher();
    const bytes = randomBytes(10_000);
    server.whatsappMedia({
      mediaId: '555',
      accessToken: ACCESS_TOKEN,
      body: { bytes, contentType: 'audio/ogg' },
    });
    const { job: data } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '555', index: 0 },
    });
    const first = (await settled(queue, await addMediaJob(queue, data))).returnvalue as MediaJobResult;
    await queue.add('fetch', data, { jobId: 'again', attempts: 1 });
    const again = (await settled(queue, 'again')).returnvalue as MediaJobResult;
    expect(again).toEqual({ ...first, created: false });
    const versions = [];
    for await (const v of store.listVersions(first.key.slice(0, first.key.lastIndexOf('.'))))
      versions.push(v.key);
    expect(versions.sort()).toEqual([first.key, sidecarKey(first.key)].sort());
  });

  it('holds the media and its sidecar when the message is held, and keeps them as long as the message', async () => {
    await startFetcher();
    server.whatsappMedia({ mediaId: '777', accessToken: ACCESS_TOKEN, body: { bytes: randomBytes(5000) } });
    const { job } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '777', index: 0 },
      legalHold: true,
    });
    // The message's retention was extended after the job was queued: the media follows the message.
    const data = { ...job, retainUntil: '2031-01-01T00:00:00.000Z' };
    const result = (await settled(queue, await addMediaJob(queue, data))).returnvalue as MediaJobResult;
    const parent = await store.head(data.messageKey);
    for (const key of [result.key, sidecarKey(result.key)]) {
      expect(await store.head(key)).toMatchObject({ legalHold: true, retainUntil: parent!.retainUntil });
    }
    expect(parent!.retainUntil).toEqual(new Date('2033-05-01T12:00:00.000Z'));
    expect(result.key).toMatch(/\.bin$/);
  });

  it('fails for good when the bytes do not match the sha256 Meta reports, and archives nothing', async () => {
    await startFetcher();
    server.whatsappMedia({
      mediaId: '888',
      accessToken: ACCESS_TOKEN,
      body: { bytes: randomBytes(5000) },
      reportedSha256: sha256(Buffer.from('something else')),
    });
    const { job: data } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '888', index: 0 },
    });
    const job = await settled(queue, await addMediaJob(queue, data));
    expectPermanent(job, 'HOLDFAST_ERR_MEDIA_HASH_MISMATCH');
    expect(await keysUnder(store, 'whatsapp/')).toEqual([data.messageKey]);
  });

  it('fails for good with the Graph API error when the token is refused', async () => {
    await startFetcher({ HOLDFAST_WHATSAPP_ACCESS_TOKEN: 'not-the-token' });
    server.whatsappMedia({ mediaId: '999', accessToken: ACCESS_TOKEN, body: { bytes: randomBytes(10) } });
    const { job: data } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '999', index: 0 },
    });
    const job = await settled(queue, await addMediaJob(queue, data));
    expectPermanent(job, 'HOLDFAST_ERR_MEDIA_REJECTED');
    expect(job.failedReason).toContain('answered 401: Invalid OAuth access token.');
  });
});

describe('media fetcher: Twilio MMS', () => {
  it('sends basic auth to the API, follows the redirect to the CDN without it, and archives the media', async () => {
    await startFetcher();
    const bytes = randomBytes(200_000);
    const { url, cdnPath } = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { bytes, contentType: 'image/png' },
    });
    const { job: data } = await archivedParent(store, {
      provider: 'twilio',
      media: { url, contentType: 'image/png', index: 1 },
    });
    const job = await settled(queue, await addMediaJob(queue, data));
    expect(job.failedReason).toBeUndefined();
    const result = job.returnvalue as MediaJobResult;
    expect(result.key).toMatch(
      new RegExp(
        `^sms/acme/inbound/2026/05/01/2026-05-01T12:00:00.000Z_${sha256(bytes).slice(0, 12)}_MM[0-9a-f]{32}-media-1\\.png$`,
      ),
    );
    expect(Buffer.compare(Buffer.from((await store.get(result.key)).body), bytes)).toBe(0);

    const api = server.requests.filter((r) => r.path === new URL(url).pathname);
    expect(api.map((r) => [r.host, r.authorization, r.status])).toEqual([
      [`localhost:${server.port}`, basic, 307],
    ]);
    const cdn = server.requests.filter((r) => r.path === cdnPath);
    // Another host (the CDN): the credentials stay behind.
    expect(cdn.map((r) => [r.host, r.authorization, r.status])).toEqual([
      [`127.0.0.1:${server.port}`, undefined, 200],
    ]);

    const sidecar = await readJson(sidecarKey(result.key));
    expect(sidecar.media).toEqual({
      index: 1,
      source: { url: url, fetchedFrom: `https://127.0.0.1:${server.port}${cdnPath}` },
    });
    expect(JSON.stringify(sidecar)).not.toMatch(/Signature|Expires|auth-token/);
  });

  it('follows a few redirect hops, checking each, and refuses a chain longer than five', async () => {
    await startFetcher();
    const bytes = randomBytes(1000);
    const ok = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { bytes },
      extraHops: 3,
    });
    const { job: okData } = await archivedParent(store, {
      provider: 'twilio',
      media: { url: ok.url, index: 0 },
    });
    expect(
      ((await settled(queue, await addMediaJob(queue, okData))).returnvalue as MediaJobResult).sha256,
    ).toBe(sha256(bytes));

    const loop = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { bytes },
      extraHops: 6,
    });
    const { job: loopData } = await archivedParent(store, {
      provider: 'twilio',
      media: { url: loop.url, index: 0 },
    });
    expectPermanent(
      await settled(queue, await addMediaJob(queue, loopData)),
      'HOLDFAST_ERR_MEDIA_TOO_MANY_REDIRECTS',
    );
    expect(server.count(loop.cdnPath)).toBe(0);
  });

  it('retries a 5xx from the CDN with backoff until the media arrives', async () => {
    await startFetcher();
    const bytes = randomBytes(50_000);
    const { url, cdnPath } = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { bytes, failFirst: [503, 502] },
    });
    const { job: data } = await archivedParent(store, { provider: 'twilio', media: { url, index: 0 } });
    const job = await settled(queue, await addMediaJob(queue, data, 5));
    expect(await job.getState()).toBe('completed');
    expect((job.returnvalue as MediaJobResult).sha256).toBe(sha256(bytes));
    expect(server.requests.filter((r) => r.path === cdnPath).map((r) => r.status)).toEqual([503, 502, 200]);
    expect(job.attemptsMade).toBe(3);
  });
});

describe('media fetcher: safety rules', () => {
  it('refuses an allowlisted name that resolves to loopback when loopback is not an allowed network', async () => {
    await startFetcher({ HOLDFAST_MEDIA_ALLOWED_NETWORKS: '' });
    server.whatsappMedia({ mediaId: '1', accessToken: ACCESS_TOKEN, body: { bytes: randomBytes(10) } });
    const { job: data } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '1', index: 0 },
    });
    const job = await settled(queue, await addMediaJob(queue, data));
    expectPermanent(job, 'HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED');
    expect(job.failedReason).toContain('"localhost" resolves to 127.0.0.1 (loopback)');
    expect(server.requests).toEqual([]);
  });

  it('refuses literal private and link-local addresses even when they are allowlisted hosts', async () => {
    await startFetcher({ HOLDFAST_MEDIA_ALLOWED_HOSTS: 'localhost,127.0.0.1,10.1.2.3,169.254.169.254' });
    for (const url of ['https://10.1.2.3/media/1', 'https://169.254.169.254/latest/meta-data/iam/']) {
      const { job: data } = await archivedParent(store, { provider: 'twilio', media: { url, index: 0 } });
      const job = await settled(queue, await addMediaJob(queue, data));
      expectPermanent(job, 'HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED');
      expect(job.failedReason).toContain(new URL(url).hostname);
    }
    // A provider's answer pointing inside is refused the same way.
    server.whatsappMedia({
      mediaId: '2',
      accessToken: ACCESS_TOKEN,
      body: { bytes: randomBytes(10) },
      downloadUrl: 'https://169.254.169.254/latest/meta-data/',
    });
    const { job: data } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '2', index: 0 },
    });
    expectPermanent(
      await settled(queue, await addMediaJob(queue, data)),
      'HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED',
    );
  });

  it('refuses a redirect to a host that is not allowlisted, without sending it anything', async () => {
    await startFetcher();
    const { url } = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { bytes: randomBytes(10) },
      redirectTo: `https://attacker.example:${server.port}/collect`,
    });
    const { job: data } = await archivedParent(store, { provider: 'twilio', media: { url, index: 0 } });
    const job = await settled(queue, await addMediaJob(queue, data));
    expectPermanent(job, 'HOLDFAST_ERR_MEDIA_HOST_NOT_ALLOWED');
    expect(job.failedReason).toContain('"attacker.example"');
    expect(server.requests.map((r) => r.path)).toEqual([new URL(url).pathname]);
  });

  it('refuses http:// media URLs, first or named by a provider', async () => {
    await startFetcher();
    const url = `http://localhost:${server.port}/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/MM1/Media/ME1`;
    const { job: twilio } = await archivedParent(store, { provider: 'twilio', media: { url, index: 0 } });
    expectPermanent(await settled(queue, await addMediaJob(queue, twilio)), 'HOLDFAST_ERR_MEDIA_NOT_HTTPS');
    server.whatsappMedia({
      mediaId: '3',
      accessToken: ACCESS_TOKEN,
      body: { bytes: randomBytes(10) },
      downloadUrl: `http://localhost:${server.port}/whatsapp_business/attachments/?mid=3`,
    });
    const { job: whatsapp } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '3', index: 0 },
    });
    expectPermanent(await settled(queue, await addMediaJob(queue, whatsapp)), 'HOLDFAST_ERR_MEDIA_NOT_HTTPS');
    expect(server.requests.map((r) => r.path)).toEqual(['/v23.0/3']);
  });

  it('refuses media over the size limit by Content-Length, by Meta file_size, and while counting a chunked body', async () => {
    await startFetcher();
    const declared = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { size: 2 * MAX_BYTES },
    });
    const { job: a } = await archivedParent(store, {
      provider: 'twilio',
      media: { url: declared.url, index: 0 },
    });
    const byLength = await settled(queue, await addMediaJob(queue, a));
    expectPermanent(byLength, 'HOLDFAST_ERR_MEDIA_TOO_LARGE');
    expect(byLength.failedReason).toContain(`declares Content-Length ${2 * MAX_BYTES}`);

    server.whatsappMedia({ mediaId: '4', accessToken: ACCESS_TOKEN, body: { size: 2 * MAX_BYTES } });
    const { job: b } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '4', index: 0 },
    });
    const bySize = await settled(queue, await addMediaJob(queue, b));
    expectPermanent(bySize, 'HOLDFAST_ERR_MEDIA_TOO_LARGE');
    expect(bySize.failedReason).toContain(`reports file_size ${2 * MAX_BYTES}`);
    expect(server.count('/whatsapp_business/attachments/')).toBe(0);

    const chunked = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { size: 2 * MAX_BYTES, chunked: true },
    });
    const { job: c } = await archivedParent(store, {
      provider: 'twilio',
      media: { url: chunked.url, index: 0 },
    });
    const byCount = await settled(queue, await addMediaJob(queue, c));
    expectPermanent(byCount, 'HOLDFAST_ERR_MEDIA_TOO_LARGE');
    expect(byCount.failedReason).toContain('more than that arrived');
    expect(await keysUnder(store, 'sms/acme/inbound/')).toEqual([a.messageKey, c.messageKey].sort());
  });

  it('retries a body cut short of its Content-Length and fails with a clear reason when it stays short', async () => {
    await startFetcher();
    const { url } = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { size: 100_000, declaredLength: 200_000 },
    });
    const { job: data } = await archivedParent(store, { provider: 'twilio', media: { url, index: 0 } });
    const job = await settled(queue, await addMediaJob(queue, data, 2));
    expect(job.attemptsMade).toBe(2);
    expect(job.failedReason).toMatch(
      /^HOLDFAST_ERR_MEDIA_UNAVAILABLE: GET https:\/\/127\.0\.0\.1:\d+\/media\.twiliocdn\.com\/.* (failed: other side closed|declared Content-Length 200000 but the body ended after)/,
    );
  });

  it('gives up on a download that trickles past HOLDFAST_MEDIA_TIMEOUT_MS, retrying it first', async () => {
    await startFetcher({ HOLDFAST_MEDIA_TIMEOUT_MS: '1500' });
    const { url } = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { size: 500_000, trickle: { bytes: 512, intervalMs: 100 } },
    });
    const { job: data } = await archivedParent(store, { provider: 'twilio', media: { url, index: 0 } });
    const job = await settled(queue, await addMediaJob(queue, data, 2));
    expect(job.attemptsMade).toBe(2);
    expect(job.failedReason).toContain('did not finish within HOLDFAST_MEDIA_TIMEOUT_MS (1500 ms)');
    expect(await keysUnder(store, 'sms/acme/inbound/')).toEqual([data.messageKey]);
  });

  it('fails a job whose payload is not a media job, naming every problem', async () => {
    await startFetcher();
    await queue.add('fetch', { eventId: 'nope', provider: 'fax', media: {} } as unknown as MediaJobData, {
      jobId: 'bad',
      attempts: 3,
    });
    const job = await settled(queue, 'bad');
    expectPermanent(job, 'HOLDFAST_ERR_VALIDATION');
    expect(job.failedReason).toContain('eventId: must be a UUIDv7');
    expect(job.failedReason).toContain('provider: must be "whatsapp" or "twilio"');
    expect(job.failedReason).toContain('messageKey');
  });
});
