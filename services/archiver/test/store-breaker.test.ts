import { join } from 'node:path';
import { createLogger, loadConfig, QUEUE_PREFIX, QUEUES, RetentionPolicy } from '@holdfast/core';
import {
  type Accepted,
  type BreakerState,
  createBreaker,
  createProducer,
  type Producer,
  readBreakerStates,
} from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { type S3Server, startS3Server } from '@holdfast/testkit/s3-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { guardObjectStore, isStoreOutage, LocalWormStore, S3WormStore } from '@holdfast/worm-store';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ArchiverHandle, start } from '../src/index.ts';

const logger = createLogger({ name: 'store-breaker-test', level: 'silent' });
const TEST_TIMEOUT = 60_000;

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

describe('guardObjectStore', () => {
  let dir: { path: string; remove(): Promise<void> };
  let inner: LocalWormStore;
  beforeEach(async () => {
    dir = await tempDir('holdfast-guarded-store-');
    inner = await LocalWormStore.open({ dir: join(dir.path, 'store') });
  });
  afterEach(async () => {
    await inner.close();
    await dir.remove();
  });

  it('routes every call, and every step of a listing, through the guard; refusals of one request are not outages', async () => {
    const fired: string[] = [];
    const store = guardObjectStore(inner, {
      fire: (call) => {
        fired.push('call');
        return call();
      },
    });
    const body = Buffer.from('{"a":1}');
    const { createHash } = await import('node:crypto');
    const sha256 = createHash('sha256').update(body).digest('hex');
    const retainUntil = new Date(Date.now() + 86_400_000);
    const put = {
      key: 'records/x/a.json',
      body,
      sha256,
      contentType: 'application/json',
      retainUntil,
      ifNoneMatch: true,
    };
    const written = await store.put(put);
    expect((await store.head(put.key))?.versionId).toBe(written.versionId);
    expect(Buffer.from((await store.get(put.key)).body).equals(body)).toBe(true);
    await store.setLegalHold(put.key, written.versionId, true);
    await store.extendRetention(put.key, written.versionId, new Date(retainUntil.getTime() + 1000));
    const keys: string[] = [];
    for await (const o of store.list('records/')) keys.push(o.key);
    const versions: string[] = [];
    for await (const v of store.listVersions('records/')) versions.push(v.versionId);
    expect(keys).toEqual([put.key]);
    expect(versions).toEqual([written.versionId]);
    // put, head, get, hold, extend, 2 listing steps each (the entry, then the end).
    expect(fired).toHaveLength(9);

    const exists = await store.put(put).catch((e: unknown) => e);
    expect((exists as { code: string }).code).toBe('HOLDFAST_ERR_OBJECT_EXISTS');
    expect(isStoreOutage(exists)).toBe(false);
    const retained = await store.deleteVersion(put.key, written.versionId).catch((e: unknown) => e);
    expect((retained as { code: string }).code).toBe('HOLDFAST_ERR_OBJECT_RETAINED');
    expect(isStoreOutage(retained)).toBe(false);
    expect(store.description).toBe(inner.description);
  });

  it('a breaker around the store opens on outages only, and refuses calls without touching the store', async () => {
    const s3 = await startS3Server();
    const s3Store = await S3WormStore.open({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' },
    });
    const breaker = createBreaker({
      name: 'store',
      service: 'test',
      volumeThreshold: 2,
      resetTimeoutMs: 60_000,
      isFailure: isStoreOutage,
    });
    try {
      const store = guardObjectStore(s3Store, breaker);
      // Absent keys and validation errors: answers about one request.
      for (let i = 0; i < 2; i++) {
        expect(await store.head(`records/missing/${i}.json`)).toBeUndefined();
        await expect(store.head('/bad//key')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_INVALID_KEY' });
      }
      expect(breaker.state).toBe('closed');
      s3.setUnavailable(true);
      const outage = () =>
        expect(store.head('records/a.json')).rejects.toMatchObject({
          code: 'HOLDFAST_ERR_STORE_UNAVAILABLE',
        });
      await outage();
      await outage();
      // 2 outages of 6 calls: below 50%.
      expect(breaker.state).toBe('closed');
      await outage();
      await outage();
      // 4 of 8.
      expect(breaker.state).toBe('open');
      const before = s3.requests.length;
      await expect(store.head('records/a.json')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_BREAKER_OPEN' });
      expect(s3.requests.length).toBe(before);
    } finally {
      breaker.shutdown();
      await s3Store.close();
      await s3.close();
    }
  });
});

describe('archiver: a store outage opens its breaker', () => {
  let redis: TestRedis;
  let raw: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let s3: S3Server;
  let store: S3WormStore;
  let producer: Producer;
  let archiver: ArchiverHandle | undefined;
  let queue: Queue;

  beforeEach(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { maxRetriesPerRequest: null });
    dir = await tempDir('holdfast-archiver-breaker-');
    s3 = await startS3Server();
    store = await S3WormStore.open({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' },
    });
    queue = new Queue(QUEUES.archive, { connection: raw, prefix: QUEUE_PREFIX });
    producer = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'spool', 'producer'),
      logger,
      retentionPolicy: RetentionPolicy.defaults(),
    });
  });

  afterEach(async () => {
    await archiver?.close();
    archiver = undefined;
    await producer.close();
    await queue.close();
    raw.disconnect();
    await store.close();
    await s3.close();
    await redis.stop();
    await dir.remove();
  });

  it(
    'the archive worker stops taking jobs while the store is down, spends no attempts on it, and archives every event exactly once when it returns',
    async () => {
      const config = loadConfig({
        REDIS_URL: redis.url,
        HOLDFAST_STORE: `local:${join(dir.path, 'unused')}`,
        HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
        HOLDFAST_METRICS_PORT: '0',
        HOLDFAST_LOG_LEVEL: 'silent',
      });
      archiver = await start(config, {
        store,
        policy: RetentionPolicy.defaults(),
        logger,
        concurrency: 2,
        retryBaseMs: 50,
        retryCapMs: 200,
        breaker: {
          volumeThreshold: 2,
          errorThresholdPercentage: 50,
          rollingWindowMs: 500,
          resetTimeoutMs: 1500,
        },
      });
      const breaker = archiver.breakers.store;
      const seen: { state: BreakerState; paused: boolean }[] = [];
      breaker.onStateChange(({ state }) => seen.push({ state, paused: archiver!.worker.isPaused() }));
      const opened = new Promise<void>((resolve) =>
        breaker.onStateChange((c) => c.state === 'open' && resolve()),
      );

      s3.setUnavailable(true);
      const accepted: Accepted[] = [];
      for (let i = 0; i < 10; i++) {
        accepted.push(
          await producer.record({
            category: 'audit-log',
            type: 'audit.login',
            subject: `user-${i}`,
            occurredAt: new Date(Date.UTC(2026, 10, 20, 9, 0, i)).toISOString(),
            data: { n: i },
          }),
        );
        // Further apart than the writer's batch wait: each event travels as a job of its own.
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
      await opened;
      const metrics = await (await fetch(`${archiver.opsUrl}/metrics`)).text();
      expect(metrics).toContain('holdfast_breaker_state{service="archiver",breaker="store"} 2');
      expect(metrics).toContain('holdfast_breaker_opens_total{service="archiver",breaker="store"} 1');
      await eventually('the open store breaker published', async () =>
        (await readBreakerStates(raw)).some(
          (e) => e.service === 'archiver' && e.breaker === 'store' && e.state === 'open',
        ),
      );
      const jobs = await Promise.all(accepted.map((a) => queue.getJob(a.id)));
      // Taken before it opened: the two running, one fetched after the first failure, and one
      // whose fetch was already under way when the worker paused. The rest never left the queue.
      const neverTaken = jobs.filter((j) => !j!.processedOn);
      expect(neverTaken.length).toBeGreaterThanOrEqual(accepted.length - 4);
      for (const job of neverTaken) expect(job!.attemptsMade).toBe(0);

      s3.setUnavailable(false);
      await eventually('every event archived', async () => {
        const states = await Promise.all(accepted.map((a) => queue.getJobState(a.id)));
        return states.every((s) => s === 'completed');
      });
      for (const { archiveKey } of accepted) {
        const versions = [];
        for await (const v of store.listVersions(archiveKey)) if (v.key === archiveKey) versions.push(v);
        expect(versions).toHaveLength(1);
        expect(
          s3.requests.filter((r) => r.operation === 'PutObject' && r.key === archiveKey && r.status === 200),
        ).toHaveLength(1);
      }
      expect(seen[0]).toEqual({ state: 'open', paused: true });
      expect(seen.at(-1)?.state).toBe('closed');
      expect(breaker.state).toBe('closed');
      // No job ran out of attempts or was failed by the outage: all the refused ones waited.
      const attempts = (await Promise.all(accepted.map((a) => queue.getJob(a.id)))).map(
        (j) => j!.attemptsMade,
      );
      expect(attempts.every((n) => n >= 1)).toBe(true);
      const failedCalls = attempts.reduce((a, b) => a + b, 0) - accepted.length;
      // Only calls that really reached the store failed: the two that opened the breaker, one
      // still in flight then (concurrency 2), and one per probe.
      const probes = seen.filter((s) => s.state === 'half-open').length;
      expect(failedCalls).toBeLessThanOrEqual(3 + probes);

      await archiver.close();
      archiver = undefined;
      expect((await readBreakerStates(raw)).filter((e) => e.service === 'archiver')).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});
