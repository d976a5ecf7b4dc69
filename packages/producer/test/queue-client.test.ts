import { createLogger, QUEUES } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisConnection, openQueue, QueueConnectionError } from '../src/index.ts';

const log = createLogger({ name: 'queue-client-test', level: 'silent' });

describe('openQueue', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('refuses an auto-pipelined connection with HOLDFAST_ERR_QUEUE_CONNECTION', () => {
    const pipelined = createRedisConnection(redis.url, 'worker', 'pipelined', log, { autoPipelining: true });
    try {
      expect(() => openQueue(QUEUES.archive, pipelined, log)).toThrow(QueueConnectionError);
      expect(() => openQueue(QUEUES.archive, pipelined, log)).toThrow(/enableAutoPipelining/);
    } finally {
      pipelined.disconnect();
    }
  });

  it('adds and counts jobs on a plain connection', async () => {
    const plain = createRedisConnection(redis.url, 'worker', 'plain', log);
    const queue = openQueue(QUEUES.archive, plain, log);
    try {
      await queue.add('archive', { n: 1 }, { jobId: 'queue-client-test-1' });
      expect(await queue.getJobCountByTypes('waiting')).toBe(1);
    } finally {
      await queue.close();
      plain.disconnect();
    }
  });
});
