import { backoffDelay, type Logger, QUEUE_PREFIX, type QueueName } from '@holdfast/core';
import { type Processor, Worker } from 'bullmq';
import { type DeadLetterWatch, watchDeadLetters } from './dead-letters.ts';
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
  /** How often the queue's failed set is reconciled with its dead letters (also once at start). @defaultValue 300000 */
  deadLetterSweepMs?: number;
  /**
   * A job's lock lasts this long (renewed while it runs); a crashed worker's jobs go back to
   * waiting within about twice this. `HOLDFAST_STALLED_JOB_MS`. @defaultValue 30000
   */
  stalledJobMs?: number;
}

/** What `startQueueWorker` attached to each worker, for `closeQueueWorker` to stop. */
const deadLetterWatches = new WeakMap<Worker, DeadLetterWatch>();

/**
 * A BullMQ worker set up the Holdfast way: a connection that waits out Redis outages, the
 * shared capped-jitter backoff for jobs whose backoff type is `holdfast`, errors logged, and its
 * queue's dead letters recorded (see `watchDeadLetters`): every service that runs a worker gets
 * them without code of its own. Resolves once the worker is connected.
 */
export async function startQueueWorker<D, R>(options: QueueWorkerOptions<D, R>): Promise<Worker<D, R>> {
  const base = options.retryBaseMs ?? 1000;
  const cap = options.retryCapMs ?? 60_000;
  const worker = new Worker<D, R>(options.queue, options.process, {
    connection: createRedisConnection(options.redisUrl, 'worker', options.name, options.log),
    prefix: QUEUE_PREFIX,
    concurrency: options.concurrency,
    lockDuration: options.stalledJobMs ?? 30_000,
    stalledInterval: options.stalledJobMs ?? 30_000,
    settings: {
      // A provider that said when to come back (429/503 Retry-After) is not asked again sooner.
      backoffStrategy: (attemptsMade: number, _type?: string, error?: Error) =>
        Math.max(backoffDelay(attemptsMade, base, cap), retryAfterOf(error)),
    },
  });
  worker.on('error', (error) => options.log.error({ err: error.message }, `${options.name} worker error`));
  // Attached before the worker is ready so that no failure of its first jobs goes unseen.
  deadLetterWatches.set(
    worker as Worker,
    watchDeadLetters(worker as Worker, {
      queue: options.queue,
      redisUrl: options.redisUrl,
      name: options.name,
      log: options.log,
      sweepIntervalMs: options.deadLetterSweepMs,
    }),
  );
  try {
    await worker.waitUntilReady();
  } catch (error) {
    await closeQueueWorker(worker as Worker, 0);
    throw error;
  }
  return worker;
}

/** `retryAfterMs` of an error that carries one (a provider's Retry-After), else 0. */
function retryAfterOf(error: Error | undefined): number {
  const value = (error as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

/** The dead letters a worker started by `startQueueWorker` records (its sweep, its API). */
export function deadLetterWatchOf(worker: Worker): DeadLetterWatch | undefined {
  return deadLetterWatches.get(worker);
}

/**
 * Stop taking jobs and let active ones finish; after `graceMs` (say, Redis is down and the worker
 * cannot even hand its jobs back) force it closed: the stalled-job check re-runs those jobs
 * elsewhere, and every handler is idempotent.
 */
export async function closeQueueWorker(worker: Worker, graceMs = 10_000): Promise<void> {
  const deadline = Date.now() + graceMs;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const outcome = await Promise.race([worker.close().then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') await worker.close(true);
  // After the worker: the failures of the jobs it finished while closing are recorded too.
  const watch = deadLetterWatches.get(worker);
  deadLetterWatches.delete(worker);
  await watch?.close(Math.max(1000, deadline - Date.now()));
}
