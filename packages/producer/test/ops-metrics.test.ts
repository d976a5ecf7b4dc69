import { hostname } from 'node:os';
import { join } from 'node:path';
import { createLogger, type EventEnvelope, newEvent, QUEUE_PREFIX, QUEUES } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { Queue, UnrecoverableError } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  closeQueueWorker,
  EventWriter,
  holdfastMetrics,
  mergePrometheusText,
  observeArchiveJobs,
  observeMediaJobs,
  observeSpool,
  type PublishedSpoolState,
  publishSpoolState,
  readSpoolStates,
  SPOOL_STATE_KEY,
  startOpsServer,
  startQueueWorker,
} from '../src/index.ts';

const log = createLogger({ name: 'ops-metrics-test', level: 'silent' });

function sentEvent(): EventEnvelope {
  return newEvent({
    type: 'message.sent',
    occurredAt: new Date(),
    project: 'acme',
    channel: 'email',
    direction: 'outbound',
    subject: 'msg-1',
    category: 'email-transactional',
    data: { transport: 'outbox', providerMessageId: 'p-1', attempt: 1 },
  });
}

/**
 * The exposition rules a Prometheus scraper enforces: every family declared (HELP, TYPE) at most
 * once, before its samples, and its samples in one contiguous group. Returns the families in order.
 */
function checkExposition(text: string): string[] {
  const declared = new Map<string, { help: number; type: number }>();
  const order: string[] = [];
  let current: string | undefined;
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const decl = /^# (HELP|TYPE) (\S+)/.exec(line);
    if (decl) {
      const name = decl[2]!;
      const counts = declared.get(name) ?? { help: 0, type: 0 };
      if (decl[1] === 'HELP') counts.help++;
      else counts.type++;
      declared.set(name, counts);
      expect(counts.help, `HELP ${name} declared once`).toBeLessThanOrEqual(1);
      expect(counts.type, `TYPE ${name} declared once`).toBeLessThanOrEqual(1);
      if (current !== name) {
        expect(seen.has(name), `family ${name} is contiguous`).toBe(false);
        seen.add(name);
        order.push(name);
        current = name;
      }
      continue;
    }
    expect(line, 'a sample line').toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+$/);
    const name = /^[^{\s]+/.exec(line)![0];
    expect(current && name.startsWith(current), `sample ${name} follows its family's declaration`).toBe(true);
  }
  return order;
}

describe('service metrics', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    redis = await startRedis();
    dir = await tempDir();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await redis.stop();
    await dir.remove();
  });

  it('/metrics is one valid exposition: Holdfast metrics, process metrics, and every queue from BullMQ', async () => {
    const metrics = holdfastMetrics();
    expect(holdfastMetrics(metrics.registry)).toBe(metrics);

    const writer = await EventWriter.open({
      spoolDir: join(dir.path, 'spool'),
      redisUrl: redis.url,
      logger: log,
    });
    closers.push(() => writer.close());
    observeSpool(metrics, 'tester', writer);
    // Nothing archives it: it stays in the spool's backlog and its archive job waits.
    await writer.submit(sentEvent(), 'archive');

    const worker = await startQueueWorker<{ fail: boolean }, { created: boolean }>({
      queue: QUEUES.media,
      name: 'ops-metrics-test',
      redisUrl: redis.url,
      log,
      concurrency: 1,
      process: async (job) => {
        if (job.data.fail) throw new UnrecoverableError('the provider says the media is gone');
        return { created: true };
      },
    });
    closers.push(() => closeQueueWorker(worker, 1000));
    observeMediaJobs(metrics, worker, QUEUES.media);

    const connection = { url: redis.url };
    const archive = new Queue(QUEUES.archive, { connection, prefix: QUEUE_PREFIX });
    const media = new Queue(QUEUES.media, { connection, prefix: QUEUE_PREFIX });
    closers.push(() => archive.close());
    closers.push(() => media.close());
    await media.add('fetch', { fail: false }, { jobId: 'ok' });
    await media.add('fetch', { fail: true }, { jobId: 'gone' });
    const settled = async () => (await media.getJobCounts('completed', 'failed')) as Record<string, number>;
    for (let i = 0; i < 500; i++) {
      const counts = await settled();
      if (counts.completed === 1 && counts.failed === 1) break;
      await new Promise((r) => setTimeout(r, 20));
    }

    const ops = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      queues: [archive, media],
      checks: {},
      registry: metrics.registry,
      log,
    });
    closers.push(() => ops.close());
    const response = await fetch(`${ops.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();

    const families = checkExposition(text);
    expect(families).toEqual(
      expect.arrayContaining([
        'bullmq_job_count',
        'holdfast_job_duration_seconds',
        'holdfast_spool_backlog',
        'holdfast_spool_oldest_unacked_seconds',
        'holdfast_spool_fsync_seconds',
        'holdfast_archive_writes_total',
        'holdfast_sends_total',
        'holdfast_media_fetches_total',
        'process_resident_memory_bytes',
      ]),
    );
    // Both queues' counts, under the one bullmq_job_count family KEDA scales on.
    expect(text).toMatch(/bullmq_job_count\{queue="archive",\s*state="waiting"\} 1/);
    expect(text).toMatch(/bullmq_job_count\{queue="media",\s*state="completed"\} 1/);
    expect(text).toMatch(/bullmq_job_count\{queue="media",\s*state="failed"\} 1/);

    expect(text).toMatch(/holdfast_job_duration_seconds_count\{queue="media",outcome="completed"\} 1\n/);
    expect(text).toMatch(/holdfast_job_duration_seconds_count\{queue="media",outcome="failed"\} 1\n/);
    expect(text).toMatch(/holdfast_media_fetches_total\{outcome="captured"\} 1\n/);
    expect(text).toMatch(/holdfast_media_fetches_total\{outcome="failed"\} 1\n/);
    expect(text).toMatch(/holdfast_spool_backlog\{service="tester"\} 1\n/);
    expect(text).toMatch(/holdfast_spool_oldest_unacked_seconds\{service="tester"\} \d/);
    const fsyncs = /holdfast_spool_fsync_seconds_count\{service="tester"\} (\d+)/.exec(text);
    expect(Number(fsyncs?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('counts archive writes as created, existing or failed', async () => {
    const metrics = holdfastMetrics();
    let runs = 0;
    const worker = await startQueueWorker<{ outcome: string }, { created: boolean }>({
      queue: QUEUES.archive,
      name: 'ops-metrics-test',
      redisUrl: redis.url,
      log,
      concurrency: 1,
      process: async (job) => {
        runs++;
        if (job.data.outcome === 'failed') throw new Error('the store is down');
        return { created: job.data.outcome === 'created' };
      },
    });
    closers.push(() => closeQueueWorker(worker, 1000));
    observeArchiveJobs(metrics, worker, QUEUES.archive);
    const archive = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
    closers.push(() => archive.close());
    await archive.add('a', { outcome: 'created' });
    await archive.add('a', { outcome: 'existing' });
    // Two attempts: the first run is retried, the second fails for good.
    await archive.add('a', { outcome: 'failed' }, { attempts: 2, backoff: { type: 'fixed', delay: 10 } });
    for (let i = 0; i < 500 && runs < 4; i++) await new Promise((r) => setTimeout(r, 20));
    // The worker counts a failure on its 'failed' event, which can come after Redis shows the job
    // failed: wait for the count itself.
    let text = '';
    for (let i = 0; i < 500; i++) {
      text = await metrics.registry.metrics();
      if (/holdfast_job_duration_seconds_count\{queue="archive",outcome="failed"\} 1\n/.test(text)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(text).toMatch(/holdfast_archive_writes_total\{outcome="created"\} 1\n/);
    expect(text).toMatch(/holdfast_archive_writes_total\{outcome="existing"\} 1\n/);
    expect(text).toMatch(/holdfast_archive_writes_total\{outcome="failed"\} 2\n/);
    expect(text).toMatch(/holdfast_job_duration_seconds_count\{queue="archive",outcome="completed"\} 2\n/);
    expect(text).toMatch(/holdfast_job_duration_seconds_count\{queue="archive",outcome="retried"\} 1\n/);
    expect(text).toMatch(/holdfast_job_duration_seconds_count\{queue="archive",outcome="failed"\} 1\n/);
  });
});

describe('mergePrometheusText', () => {
  it('declares each family once and keeps its samples together', () => {
    const queue = (name: string) =>
      [
        '# HELP bullmq_job_count Number of jobs in the queue by state',
        '# TYPE bullmq_job_count gauge',
        `bullmq_job_count{queue="${name}", state="waiting"} 1`,
        '# HELP bullmq_job_completed_total Total number of completed jobs',
        '# TYPE bullmq_job_completed_total counter',
        `bullmq_job_completed_total{queue="${name}"} 0`,
      ].join('\n');
    const merged = mergePrometheusText(['# HELP up Up\n# TYPE up gauge\nup 1\n', queue('a'), queue('b')]);
    expect(merged).toBe(
      [
        '# HELP up Up',
        '# TYPE up gauge',
        'up 1',
        '# HELP bullmq_job_count Number of jobs in the queue by state',
        '# TYPE bullmq_job_count gauge',
        'bullmq_job_count{queue="a", state="waiting"} 1',
        'bullmq_job_count{queue="b", state="waiting"} 1',
        '# HELP bullmq_job_completed_total Total number of completed jobs',
        '# TYPE bullmq_job_completed_total counter',
        'bullmq_job_completed_total{queue="a"} 0',
        'bullmq_job_completed_total{queue="b"} 0',
        '',
      ].join('\n'),
    );
  });
});

describe('spool state in holdfast:spools', () => {
  let redis: TestRedis;
  let client: Redis;
  let dir: { path: string; remove(): Promise<void> };

  beforeEach(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = await tempDir();
  });
  afterEach(async () => {
    client.disconnect();
    await redis.stop();
    await dir.remove();
  });

  it("publishes this process's backlog and oldest age, drops long-gone fields, and removes its own on close", async () => {
    const gone: PublishedSpoolState = {
      service: 'sender',
      host: 'old-pod',
      pid: 7,
      backlog: 3,
      oldestUnackedAt: null,
      updatedAt: new Date(Date.now() - 2 * 3_600_000).toISOString(),
    };
    const quiet = { ...gone, host: 'quiet-pod', updatedAt: new Date(Date.now() - 5 * 60_000).toISOString() };
    await client.hset(SPOOL_STATE_KEY, {
      'sender/old-pod:7': JSON.stringify(gone),
      'sender/quiet-pod:7': JSON.stringify(quiet),
      'sender/broken:1': 'not json',
    });

    const writer = await EventWriter.open({
      spoolDir: join(dir.path, 'spool'),
      redisUrl: redis.url,
      logger: log,
      maxBacklog: 500,
    });
    const event = sentEvent();
    // Redis never completes the job, so the event stays unacknowledged.
    await writer.submit(event, 'archive');
    const ops = new Redis(redis.url);
    await ops.ping();
    const publisher = publishSpoolState({ service: 'ingest', writer, redis: ops, log, intervalMs: 60_000 });
    try {
      await publisher.publish();
      expect(publisher.field).toBe(`ingest/${hostname()}:${process.pid}`);
      const { live, stale } = await readSpoolStates(client);
      expect(live).toEqual([
        {
          service: 'ingest',
          host: expect.any(String),
          pid: process.pid,
          backlog: 1,
          maxBacklog: 500,
          oldestUnackedAt: writer.stats().spool.oldestUnackedAt!.toISOString(),
          updatedAt: expect.any(String),
        },
      ]);
      // Quiet for five minutes: stale for readers, kept; gone for two hours or unreadable: removed.
      expect(stale).toEqual([quiet]);
      expect(Object.keys(await client.hgetall(SPOOL_STATE_KEY)).sort()).toEqual(
        [publisher.field, 'sender/quiet-pod:7'].sort(),
      );

      await publisher.close();
      expect(await client.hexists(SPOOL_STATE_KEY, publisher.field)).toBe(0);
      expect((await readSpoolStates(client)).live).toEqual([]);
    } finally {
      await publisher.close();
      ops.disconnect();
      await writer.close();
    }
  });
});
