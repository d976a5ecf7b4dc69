import { createLogger, QUEUE_PREFIX, QUEUES } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { Queue } from 'bullmq';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeQueueWorker, startQueueWorker } from '../src/index.ts';

const log = createLogger({ name: 'queue-worker-close-test', level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('closeQueueWorker', () => {
  let redis: TestRedis;
  beforeEach(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await redis.stop();
  });

  const start = () =>
    startQueueWorker<unknown, string>({
      queue: QUEUES.media,
      name: 'close-test',
      redisUrl: redis.url,
      log,
      concurrency: 1,
      process: async () => 'done',
    });

  /** A closed worker takes nothing more, even once Redis answers again. */
  async function expectNoJobTaken(): Promise<void> {
    const queue = new Queue(QUEUES.media, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
    try {
      const job = await queue.add('after-close', {});
      await sleep(1500);
      expect(await job.getState()).toBe('waiting');
    } finally {
      await queue.close();
    }
  }

  // BullMQ's own close waits for a connection that was reconnecting when it began, for good
  // (taskforcesh/bullmq#4656), and close(true) only returns that same promise: a SIGTERM during
  // a Redis outage must still let the service finish closing.
  it('returns after its grace period when Redis is gone and the worker is reconnecting', {
    timeout: 20_000,
  }, async () => {
    const worker = await start();
    await redis.kill();
    await sleep(300);
    await closeQueueWorker(worker, 500);
    await redis.restart();
    await expectNoJobTaken();
  });

  it('returns after its grace period when Redis came back while the worker was still reconnecting', {
    timeout: 20_000,
  }, async () => {
    const worker = await start();
    await redis.kill();
    await sleep(1500);
    await redis.restart();
    await closeQueueWorker(worker, 500);
    await expectNoJobTaken();
  });
});
