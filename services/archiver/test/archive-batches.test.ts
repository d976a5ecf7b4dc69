import { join } from 'node:path';
import {
  ARCHIVE_BATCH_JOB,
  type ArchiveBatchJobResult,
  archiveBatchJobId,
  canonicalJson,
  createLogger,
  type EventEnvelope,
  loadConfig,
  newEvent,
  QUEUE_PREFIX,
  QUEUES,
  RetentionPolicy,
  recordKey,
  sha256Hex,
} from '@holdfast/core';
import { DeadLetters } from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { guardObjectStore, LocalWormStore, type ObjectStore } from '@holdfast/worm-store';
import { type Job, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ArchiverHandle, start } from '../src/index.ts';

const logger = createLogger({ name: 'archive-batches-test', level: 'silent' });
const policy = RetentionPolicy.defaults();

function record(n: number, data: Record<string, unknown> = { n }): EventEnvelope {
  return newEvent({
    type: 'audit.login',
    occurredAt: new Date(Date.UTC(2026, 10, 20, 9, 0, n)),
    project: 'acme',
    channel: 'record',
    direction: 'internal',
    subject: `user-${n}`,
    category: 'audit-log',
    data,
  });
}

const keyOf = (event: EventEnvelope) =>
  recordKey({
    category: event.category,
    occurredAt: event.occurredAt,
    sha256: sha256Hex(canonicalJson(event)),
    ext: 'json',
  });

describe('archiver: archive-batch jobs', () => {
  let redis: TestRedis;
  let client: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let local: LocalWormStore;
  let archiver: ArchiverHandle | undefined;
  let queue: Queue;
  let events: QueueEvents;

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });
  beforeEach(async () => {
    await client.flushall();
    dir = await tempDir('holdfast-batches-');
    local = await LocalWormStore.open({ dir: join(dir.path, 'store') });
    queue = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
    events = new QueueEvents(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
    await events.waitUntilReady();
  });
  afterEach(async () => {
    await archiver?.close();
    archiver = undefined;
    await events.close();
    await queue.close();
    await local.close();
    await dir.remove();
  });

  const startArchiver = async (store: ObjectStore = local) => {
    const config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'unused')}`,
      HOLDFAST_LOG_LEVEL: 'silent',
    });
    archiver = await start(config, { store, policy, logger, retryBaseMs: 20, retryCapMs: 50 });
  };

  const addBatch = (batch: readonly EventEnvelope[]): Promise<Job> =>
    queue.add(
      ARCHIVE_BATCH_JOB,
      { events: batch },
      { jobId: archiveBatchJobId(batch.map((e) => e.id)), attempts: 100, backoff: { type: 'holdfast' } },
    );

  const versionsOf = async (key: string) => {
    const found = [];
    for await (const v of local.listVersions(key)) if (v.key === key) found.push(v);
    return found;
  };

  it('writes each event of a batch as its own object, and a second delivery finds them all archived', async () => {
    await startArchiver();
    const batch = Array.from({ length: 20 }, (_, i) => record(i));
    const first = (await (await addBatch(batch)).waitUntilFinished(events, 20_000)) as ArchiveBatchJobResult;
    expect(first).toEqual({ created: 20, existing: 0, split: [] });
    for (const event of batch) expect(await versionsOf(keyOf(event))).toHaveLength(1);

    // The same events grouped otherwise (a restarted producer's drain): nothing is written twice.
    const again = (await (
      await addBatch(batch.slice(5))
    ).waitUntilFinished(events, 20_000)) as ArchiveBatchJobResult;
    expect(again).toEqual({ created: 0, existing: 15, split: [] });
    for (const event of batch) expect(await versionsOf(keyOf(event))).toHaveLength(1);
  });

  it('archives a provider event delivered twice in one batch once', async () => {
    await startArchiver();
    // Two webhook deliveries of one provider event, received a second apart: two event ids.
    const delivery = (n: number) => record(n, { provider: 'meta', providerEventId: 'wamid.SAME' });
    const [first, again] = [delivery(1), delivery(2)];
    const job = await addBatch([first!, again!, record(3)]);
    const result = (await job.waitUntilFinished(events, 20_000)) as ArchiveBatchJobResult;
    // The second delivery waits for the first (the batch runs again; a rerun reports what the
    // first run wrote as existing).
    expect(result.split).toEqual([]);
    expect(result.created + result.existing).toBe(3);
    const archived = [];
    for (const e of [first!, again!]) archived.push(...(await versionsOf(keyOf(e))));
    expect(archived).toHaveLength(1);
  });

  it('moves an event that fails for good to a job of its own, kept as its dead letter, and archives the rest', async () => {
    await startArchiver();
    const body = Buffer.from('%PDF-1.7 signed');
    const tampered = record(3, {
      document: {
        contentType: 'application/pdf',
        sha256: sha256Hex(Buffer.from('the bytes that were signed')),
        size: body.byteLength,
        base64: body.toString('base64'),
      },
    });
    const batch = [record(1), record(2), tampered, record(4)];
    const result = (await (await addBatch(batch)).waitUntilFinished(events, 20_000)) as ArchiveBatchJobResult;
    expect(result).toEqual({ created: 3, existing: 0, split: [tampered.id] });
    for (const event of batch.filter((e) => e !== tampered))
      expect(await versionsOf(keyOf(event))).toHaveLength(1);

    const own = await queue.getJob(tampered.id);
    expect(own?.name).toBe('archive');
    await expect(own!.waitUntilFinished(events, 20_000)).rejects.toThrow(
      /HOLDFAST_ERR_PAYLOAD_HASH_MISMATCH/,
    );
    const dlq = new DeadLetters({ redisUrl: redis.url, log: logger });
    try {
      await expect
        .poll(async () => (await dlq.list({ queue: QUEUES.archive })).map((d) => [d.jobId, d.eventId]), {
          timeout: 10_000,
        })
        .toEqual([[tampered.id, tampered.id]]);
    } finally {
      await dlq.close();
    }
  });

  it('keeps at most 512 events of batch jobs in the store at once, however many batches run', async () => {
    let inFlight = 0;
    let most = 0;
    const counting = guardObjectStore(local, {
      fire: async (call) => {
        most = Math.max(most, ++inFlight);
        try {
          return await call();
        } finally {
          inFlight--;
        }
      },
    });
    await startArchiver(counting);
    const jobs = await Promise.all(
      Array.from({ length: 6 }, (_, b) =>
        addBatch(Array.from({ length: 100 }, (_, i) => record(b * 100 + i))),
      ),
    );
    const results = (await Promise.all(
      jobs.map((j) => j.waitUntilFinished(events, 60_000)),
    )) as ArchiveBatchJobResult[];
    expect(results.reduce((n, r) => n + r.created, 0)).toBe(600);
    // Six batches of 100 were taken at once (the worker runs 16 jobs), and the bound held.
    expect(most).toBeGreaterThan(100);
    expect(most).toBeLessThanOrEqual(512);
  }, 60_000);

  it('retries the whole batch after a transient store failure, and each event is archived once', async () => {
    let puts = 0;
    // The store goes away for the third put of the first run only.
    const flaky = guardObjectStore(local, {
      fire: (call) => {
        puts++;
        if (puts === 3)
          return Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
        return call();
      },
    });
    await startArchiver(flaky);
    const batch = Array.from({ length: 10 }, (_, i) => record(i));
    const job = await addBatch(batch);
    const result = (await job.waitUntilFinished(events, 20_000)) as ArchiveBatchJobResult;
    expect(result.split).toEqual([]);
    expect(result.created + result.existing).toBe(10);
    expect((await queue.getJob(job.id!))!.attemptsMade).toBe(2);
    for (const event of batch) expect(await versionsOf(keyOf(event))).toHaveLength(1);
  });
});
