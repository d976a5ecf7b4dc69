import { join } from 'node:path';
import { createLogger, QUEUES, ValidationError } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import type { Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BacklogFullError, closeQueueWorker, EventWriter, startQueueWorker } from '../src/index.ts';
import { record, until } from './record-events.ts';

const log = createLogger({ name: 'event-writer-backlog-test', level: 'silent' });

/*
 * The spool's backlog bound (HOLDFAST_SPOOL_MAX_BACKLOG): a real EventWriter against a real
 * Redis; nothing consumes the archive queue until a test starts a stand-in archiver.
 */

describe('EventWriter backlog bound', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let writers: EventWriter[] = [];
  let worker: Worker | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    dir = await tempDir();
  });
  afterAll(async () => {
    await redis.stop();
    await dir.remove();
  });
  beforeEach(async () => {
    const raw = new Redis(redis.url);
    await raw.flushall();
    raw.disconnect();
  });
  afterEach(async () => {
    if (worker) await closeQueueWorker(worker);
    worker = undefined;
    for (const w of writers.splice(0)) await w.close();
  });

  const open = async (name: string, maxBacklog: number) => {
    const writer = await EventWriter.open({
      spoolDir: join(dir.path, name),
      redisUrl: redis.url,
      drainIntervalMs: 60_000,
      maxBacklog,
    });
    writers.push(writer);
    return writer;
  };
  /** A stand-in archiver (a Holdfast queue worker) that completes every archive job, batches included. */
  const archive = async () => {
    worker = (await startQueueWorker({
      queue: QUEUES.archive,
      name: 'stand-in-archiver',
      redisUrl: redis.url,
      log,
      concurrency: 1,
      process: async (job: Job) =>
        job.name === 'archive-batch'
          ? { created: (job.data as { events: unknown[] }).events.length, existing: 0, split: [] }
          : { created: true },
    })) as Worker;
  };

  it('refuses a new event while the bound is unacknowledged, writes nothing for it, and accepts again once downstream catches up', async () => {
    const writer = await open('refuses', 3);
    for (let n = 0; n < 3; n++) await writer.submit(record(n), 'archive');

    const refused = await writer.submit(record(3), 'archive').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BacklogFullError);
    expect(refused).toMatchObject({ code: 'HOLDFAST_ERR_BACKLOG_FULL', backlog: 3, maxBacklog: 3 });
    expect((refused as Error).message).toMatch(/HOLDFAST_SPOOL_MAX_BACKLOG=3/);
    expect(writer.stats().spool.unacked).toBe(3);

    await archive();
    await until('the backlog archived', () => writer.stats().backlog === 0);
    await writer.submit(record(4), 'archive');
    expect(writer.stats().backlog).toBe(1);
  });

  it('counts submits still being written: a burst larger than the bound gets exactly the bound in', async () => {
    const writer = await open('burst', 4);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, n) => writer.submit(record(n), 'archive')),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(4);
    const reasons = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
    expect(reasons).toHaveLength(6);
    for (const reason of reasons) expect(reason).toBeInstanceOf(BacklogFullError);
    expect(writer.stats().spool.unacked).toBe(4);
  });

  it('refuses a bound that is not a whole number of at least 1, naming it', async () => {
    for (const maxBacklog of [0, -5, 2.5, Number.NaN]) {
      const refused = await open('bad', maxBacklog).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ValidationError);
      expect((refused as ValidationError).message).toMatch(/maxBacklog/);
    }
  });

  it('keeps and delivers a backlog from an earlier run that is over the bound, refusing new events meanwhile', async () => {
    const before = await open('restart', 100);
    const earlier = Array.from({ length: 5 }, (_, n) => record(n));
    for (const event of earlier) await before.submit(event, 'archive');
    await before.close();
    writers = writers.filter((w) => w !== before);

    // The earlier run's jobs are queued, addressed to this spool's ack stream, which the restarted
    // writer reads from its start: their completions reach it however soon they come.
    const after = await open('restart', 2);
    expect(after.stats().backlog).toBe(5);
    await expect(after.submit(record(9), 'archive')).rejects.toBeInstanceOf(BacklogFullError);

    await archive();
    await until('the earlier run archived', () => after.stats().backlog === 0);
    await after.submit(record(10), 'archive');
  });
});
