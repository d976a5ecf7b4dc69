import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { type MediaJobData, QUEUE_PREFIX, QUEUES } from '@holdfast/core';
import { type BreakerState, readBreakerStates } from '@holdfast/producer';
import { type MediaServer, startMediaServer } from '@holdfast/testkit/media-server';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { type S3Server, startS3Server } from '@holdfast/testkit/s3-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore, type ObjectStore, S3WormStore } from '@holdfast/worm-store';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type MediaFetcherHandle, type MediaJobResult, start } from '../src/index.ts';
import { ACCOUNT_SID, AUTH_TOKEN, addMediaJob, archivedParent, testConfig } from './fixtures.ts';

const TEST_TIMEOUT = 60_000;
const BREAKER = {
  volumeThreshold: 2,
  errorThresholdPercentage: 50,
  rollingWindowMs: 500,
  resetTimeoutMs: 1500,
};

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('media fetcher circuit breakers', () => {
  let redis: TestRedis;
  let raw: Redis;
  let server: MediaServer;
  let dir: { path: string; remove(): Promise<void> };
  let queue: Queue<MediaJobData>;
  let fetcher: MediaFetcherHandle | undefined;
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { maxRetriesPerRequest: null });
    server = await startMediaServer();
    dir = await tempDir('holdfast-media-breakers-');
    queue = new Queue<MediaJobData>(QUEUES.media, { connection: raw, prefix: QUEUE_PREFIX });
  });

  afterEach(async () => {
    await fetcher?.close();
    fetcher = undefined;
    for (const close of closers.splice(0).reverse()) await close();
    await queue.close();
    raw.disconnect();
    await server.close();
    await redis.stop();
    await dir.remove();
  });

  const startFetcher = async (store: ObjectStore) => {
    const config = testConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'unused')}`,
      HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
      HOLDFAST_WHATSAPP_GRAPH_URL: server.origin,
      HOLDFAST_TWILIO_API_URL: server.origin,
      HOLDFAST_MEDIA_TIMEOUT_MS: '10000',
    });
    fetcher = await start(config, {
      store,
      extraCa: [server.ca],
      concurrency: 1,
      retryBaseMs: 50,
      retryCapMs: 200,
      breaker: BREAKER,
    });
    return fetcher;
  };

  /** `n` Twilio MMS media jobs; the first `failing` are served 503 once before their bytes. */
  const twilioJobs = async (store: ObjectStore, n: number, failing: number) => {
    const ids: string[] = [];
    const sizes = new Map<string, number>();
    const paths = new Map<string, string>();
    for (let i = 0; i < n; i++) {
      const bytes = randomBytes(1000 + i);
      const { url } = server.twilioMedia({
        accountSid: ACCOUNT_SID,
        authToken: AUTH_TOKEN,
        body: { bytes, contentType: 'image/png', ...(i < failing ? { failFirst: [503] } : {}) },
      });
      const { job } = await archivedParent(store, { provider: 'twilio', media: { url, index: 0 } });
      const id = await addMediaJob(queue, job, 20);
      ids.push(id);
      sizes.set(id, bytes.byteLength);
      paths.set(id, new URL(url).pathname);
    }
    return { ids, sizes, paths };
  };

  const allCompleted = async (ids: readonly string[]) =>
    (await Promise.all(ids.map((id) => queue.getJobState(id)))).every((s) => s === 'completed');

  it(
    "a provider's download outage opens its breaker: the media worker stops taking jobs, and every item is archived once it answers",
    async () => {
      const store = await LocalWormStore.open({ dir: join(dir.path, 'store') });
      closers.push(() => store.close());
      const { ids, sizes } = await twilioJobs(store, 6, 2);
      const handle = await startFetcher(store);
      const breaker = handle.breakers['download-twilio'];
      const seen: { state: BreakerState; paused: boolean }[] = [];
      breaker.onStateChange(({ state }) => seen.push({ state, paused: handle.worker.isPaused() }));
      await eventually('the download breaker open', () => breaker.state === 'open' || seen.length > 0);

      expect(seen[0]).toEqual({ state: 'open', paused: true });
      const metrics = await (await fetch(`${handle.opsUrl}/metrics`)).text();
      expect(metrics).toContain(
        'holdfast_breaker_state{service="media-fetcher",breaker="download-twilio"} 2',
      );
      expect(metrics).toContain(
        'holdfast_breaker_state{service="media-fetcher",breaker="download-whatsapp"} 0',
      );
      expect(metrics).toContain('holdfast_breaker_state{service="media-fetcher",breaker="store"} 0');
      await eventually('the open breaker published', async () =>
        (await readBreakerStates(raw)).some((e) => e.breaker === 'download-twilio' && e.state === 'open'),
      );
      const untouched = (await Promise.all(ids.map((id) => queue.getJob(id)))).filter((j) => !j!.processedOn);
      expect(untouched).toHaveLength(4);
      for (const job of untouched) expect(job!.attemptsMade).toBe(0);

      await eventually('every media item archived', () => allCompleted(ids));
      for (const id of ids) {
        const job = (await queue.getJob(id))!;
        expect((job.returnvalue as MediaJobResult).size).toBe(sizes.get(id));
        // The two served 503 once spent one failed attempt each; none waited out the breaker with one.
        expect(job.attemptsMade).toBe(ids.indexOf(id) < 2 ? 2 : 1);
      }
      expect(seen.map((s) => s.state)).toEqual(['open', 'half-open', 'closed']);
    },
    TEST_TIMEOUT,
  );

  it(
    'a store outage opens the store breaker: the media worker stops taking jobs (nothing is downloaded for them) until the store answers, then every item is archived exactly once',
    async () => {
      const s3: S3Server = await startS3Server();
      const store = await S3WormStore.open({
        bucket: s3.bucket,
        endpoint: s3.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' },
      });
      closers.push(async () => {
        await store.close();
        await s3.close();
      });
      const { ids, paths } = await twilioJobs(store, 6, 0);
      s3.setUnavailable(true);
      const handle = await startFetcher(store);
      const breaker = handle.breakers.store;
      const opened = new Promise<boolean>((resolve) =>
        breaker.onStateChange((c) => c.state === 'open' && resolve(handle.worker.isPaused())),
      );
      expect(await opened).toBe(true);
      const untouched = (await Promise.all(ids.map((id) => queue.getJob(id)))).filter((j) => !j!.processedOn);
      expect(untouched.length).toBeGreaterThanOrEqual(ids.length - 3);
      for (const job of untouched) {
        expect(job!.attemptsMade).toBe(0);
        expect(server.count(paths.get(job!.id!)!)).toBe(0);
      }
      expect(handle.breakers['download-twilio'].state).toBe('closed');

      s3.setUnavailable(false);
      await eventually('every media item archived', () => allCompleted(ids));
      expect(breaker.state).toBe('closed');
      for (const id of ids) {
        const { key } = (await queue.getJob(id))!.returnvalue as MediaJobResult;
        const versions = [];
        for await (const v of store.listVersions(key)) if (v.key === key) versions.push(v);
        expect(versions).toHaveLength(1);
      }
    },
    TEST_TIMEOUT,
  );
});
