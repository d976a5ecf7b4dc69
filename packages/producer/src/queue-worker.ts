import { backoffDelay, type Logger, QUEUE_PREFIX, type QueueName } from '@holdfast/core';
import { type Processor, Worker } from 'bullmq';
import { createRedisConnection } from './redis-connection.ts';

export interface QueueWorkerOptions<D, R> {
  queue: QueueName;
  /** Names the Redis connection and the log lines, e.g. `holdfast-archiver`. */
  name: string;
  redisUrl: string;
  process: Processor<D, R>;
  log: Logger;
  concurrency: number;
  /** First retry delay; doubles per attempt with jitter. @defaultValue 1000 */
  retryBaseMs?: number;
  /** Longest retry delay. @defaultValue 60000 */
  retryCapMs?: number;
}

/**
 * A BullMQ worker set up the Holdfast way: a connection that waits out Redis outages, the
 * shared capped-jitter backoff for jobs whose backoff type is `holdfast`, and errors logged.
 * Resolves once the worker is connected.
 */
export async function startQueueWorker<D, R>(options: QueueWorkerOptions<D, R>): Promise<Worker<D, R>> {
  const base = options.retryBaseMs ?? 1000;
  const cap = options.retryCapMs ?? 60_000;
  const worker = new Worker<D, R>(options.queue, options.process, {
    connection: createRedisConnection(options.redisUrl, 'worker', options.name, options.log),
    prefix: QUEUE_PREFIX,
    concurrency: options.concurrency,
    settings: { backoffStrategy: (attemptsMade: number) => backoffDelay(attemptsMade, base, cap) },
  });
  worker.on('error', (error) => options.log.error({ err: error.message }, `${options.name} worker error`));
  await worker.waitUntilReady();
  return worker;
}

/**
 * Stop taking jobs and let active ones finish; after `graceMs` (say, Redis is down and the worker
 * cannot even hand its jobs back) force it closed: the stalled-job check re-runs those jobs
 * elsewhere, and every handler is idempotent.
 */
export async function closeQueueWorker(worker: Worker, graceMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const outcome = await Promise.race([worker.close().then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') await worker.close(true);
}
