import { createLogger, QUEUE_PREFIX, QUEUES } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { Queue, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeQueueWorker, startQueueWorker } from '../src/index.ts';

const log = createLogger({ name: 'queue-worker-retry-test', level: 'silent' });

/** What a provider said: come back no sooner than this (429/503 Retry-After). */
class Throttled extends Error {
  readonly retryAfterMs: number;
  constructor(retryAfterMs: number) {
    super(`throttled; retry after ${retryAfterMs} ms`);
    this.retryAfterMs = retryAfterMs;
  }
}

describe('startQueueWorker retries', () => {
  let redis: TestRedis;
  let queue: Queue;
  let inspect: Redis;
  let worker: Worker | undefined;
  beforeEach(async () => {
    redis = await startRedis();
    queue = new Queue(QUEUES.media, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
    inspect = new Redis(redis.url);
  });
  afterEach(async () => {
    if (worker) await closeQueueWorker(worker);
    worker = undefined;
    await queue.close();
    inspect.disconnect();
    await redis.stop();
  });

  /** Run one job that fails once with `error`; resolve with how far in the future its retry was scheduled. */
  async function scheduledRetryDelay(error: Error): Promise<number> {
    let failedAt = 0;
    worker = await startQueueWorker<unknown, unknown>({
      queue: QUEUES.media,
      name: 'retry-test',
      redisUrl: redis.url,
      log,
      concurrency: 1,
      retryBaseMs: 100,
      retryCapMs: 200,
      process: async () => {
        failedAt = Date.now();
        throw error;
      },
    });
    await queue.add('job', {}, { jobId: 'j1', attempts: 3, backoff: { type: 'holdfast' } });
    for (let i = 0; i < 500; i++) {
      const state = await queue.getJobState('j1');
      if (state === 'delayed') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await queue.getJobState('j1')).toBe('delayed');
    // BullMQ keeps the time a delayed job is due in its delayed set's score (ms * 4096 + counter).
    const score = Number(await inspect.zscore(`${QUEUE_PREFIX}:${QUEUES.media}:delayed`, 'j1'));
    return Math.floor(score / 4096) - failedAt;
  }

  it('honours a Retry-After longer than the backoff: the retry is not scheduled sooner', async () => {
    expect(await scheduledRetryDelay(new Throttled(5_000))).toBeGreaterThanOrEqual(4_900);
  });

  it('uses the capped, jittered backoff when the error names no Retry-After', async () => {
    expect(await scheduledRetryDelay(new Error('timeout'))).toBeLessThanOrEqual(300);
  });
});
