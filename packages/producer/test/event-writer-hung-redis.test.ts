import { join } from 'node:path';
import {
  ARCHIVE_BATCH_JOB,
  type ArchiveBatchJobData,
  QUEUE_PREFIX,
  QUEUES,
  ValidationError,
} from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventWriter } from '../src/index.ts';
import { record, until } from './record-events.ts';

const within = <T>(ms: number, work: Promise<T>): Promise<T | 'timed out'> =>
  Promise.race([work, new Promise<'timed out'>((resolve) => setTimeout(() => resolve('timed out'), ms))]);

/*
 * A Redis that hangs (SIGSTOPped: its connections stay "ready", nothing answers) must not hold
 * submits or close() for ever: the events are durable in the spool, so an enqueue Redis does not
 * answer is abandoned and left to the drainer.
 */
describe('EventWriter against a hung Redis', () => {
  let dir: { path: string; remove(): Promise<void> };
  let redis: TestRedis;
  const writers: EventWriter[] = [];

  beforeEach(async () => {
    dir = await tempDir();
    redis = await startRedis({ appendOnly: false });
  });
  afterEach(async () => {
    redis.thaw();
    for (const w of writers.splice(0)) await w.close();
    await redis.stop();
    await dir.remove();
  });

  const open = async (name: string, options: { enqueueTimeoutMs?: number; closeTimeoutMs?: number }) => {
    const writer = await EventWriter.open({
      spoolDir: join(dir.path, name),
      redisUrl: redis.url,
      drainIntervalMs: 60_000,
      ...options,
    });
    writers.push(writer);
    return writer;
  };

  /** Whether every one of `ids` is in a waiting archive job. */
  const allEnqueued = async (ids: readonly string[]) => {
    const queue = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
    try {
      const held = new Set(
        (await queue.getJobs(['waiting'])).flatMap((job) =>
          job.name === ARCHIVE_BATCH_JOB
            ? (job.data as ArchiveBatchJobData).events.map((e) => e.id)
            : [job.id!],
        ),
      );
      return ids.every((id) => held.has(id));
    } finally {
      await queue.close();
    }
  };

  it('submits past the in-flight enqueue bound are acknowledged once their enqueues time out, close() returns, and the next start enqueues them', {
    timeout: 30_000,
  }, async () => {
    const writer = await open('bound', { enqueueTimeoutMs: 300, closeTimeoutMs: 5_000 });
    const first = record(0);
    await writer.submit(first, 'archive');
    await until('Redis took the first event', () => allEnqueued([first.id]));

    redis.freeze();
    // More than the 1024 enqueues a submit lets be in flight before it waits for one.
    const events = Array.from({ length: 1100 }, (_, n) => record(n + 1));
    const submitted = await within(10_000, Promise.all(events.map((e) => writer.submit(e, 'archive'))));
    expect(submitted).not.toBe('timed out');
    expect(writer.stats().spool.unacked).toBe(1101);
    expect(await within(10_000, writer.close())).not.toBe('timed out');
    writers.splice(0);

    redis.thaw();
    await open('bound', {});
    const all = events.map((e) => e.id);
    await until('every event enqueued by the next start', () => allEnqueued(all), 15_000);
  });

  it('close() returns after closeTimeoutMs while an enqueue waits on a hung Redis; the spool keeps the event', {
    timeout: 30_000,
  }, async () => {
    const writer = await open('close', { enqueueTimeoutMs: 60_000, closeTimeoutMs: 500 });
    const first = record(0);
    await writer.submit(first, 'archive');
    await until('Redis took the first event', () => allEnqueued([first.id]));

    redis.freeze();
    const event = record(1);
    await writer.submit(event, 'archive');
    const started = Date.now();
    expect(await within(10_000, writer.close())).not.toBe('timed out');
    expect(Date.now() - started).toBeLessThan(5_000);
    writers.splice(0);

    redis.thaw();
    await open('close', {});
    await until('the event enqueued by the next start', () => allEnqueued([event.id]), 15_000);
  });

  it('refuses a timeout that is not a whole number of milliseconds of at least 1, naming it', async () => {
    for (const name of ['enqueueTimeoutMs', 'closeTimeoutMs'] as const)
      for (const value of [0, -5, 2.5, Number.NaN]) {
        const refused = await open('bad', { [name]: value }).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(ValidationError);
        expect((refused as ValidationError).message).toMatch(new RegExp(`${name}: must be a whole number`));
      }
  });
});
