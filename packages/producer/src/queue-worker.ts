import { backoffDelay, type Logger, QUEUE_PREFIX, type QueueName } from '@holdfast/core';
import { DelayedError, type Job, type Processor, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { sendAck } from './ack-stream.ts';
import { type Breaker, breakerOpenErrorOf } from './breaker.ts';
import { type BreakerGate, gateWorker } from './breaker-gate.ts';
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
  /**
   * The circuit breakers around the dependencies its jobs call. While any is open the worker
   * takes no jobs; half-open, it takes one at a time (the probe); see `gateWorker`. A job that
   * meets an open breaker anyway (it was already running) goes back to the queue until the
   * breaker's `retryAt` without spending an attempt. @defaultValue none
   */
  breakers?: readonly Breaker[];
}

/** Stalls (its worker died mid-job) a job survives before it fails for good. */
const MAX_STALLS = 20;

/** What `startQueueWorker` attached to each worker, for `closeQueueWorker` to stop. */
const deadLetterWatches = new WeakMap<Worker, DeadLetterWatch>();
const breakerGates = new WeakMap<Worker, BreakerGate>();
/** The connections startQueueWorker made for a worker, which closeQueueWorker ends. */
const ownedConnections = new WeakMap<Worker, { main: Redis; acks: Redis; log: Logger; name: string }>();

/**
 * A BullMQ worker set up the Holdfast way: a connection that waits out Redis outages, the
 * shared capped-jitter backoff for jobs whose backoff type is `holdfast`, errors logged, and its
 * queue's dead letters recorded (see `watchDeadLetters`): every service that runs a worker gets
 * them without code of its own. Resolves once the worker is connected.
 */
export async function startQueueWorker<D, R>(options: QueueWorkerOptions<D, R>): Promise<Worker<D, R>> {
  const base = options.retryBaseMs ?? 1000;
  const cap = options.retryCapMs ?? 60_000;
  // Auto-pipelined: the reports of jobs finishing together go out in one write.
  const acks = createRedisConnection(options.redisUrl, 'worker', `${options.name}-acks`, options.log, {
    autoPipelining: true,
  });
  const report = reporter(acks, options);
  const processor = holdingBackOnOpenBreakers(reportingDone(options.process, report));
  const main = createRedisConnection(options.redisUrl, 'worker', options.name, options.log);
  const worker = new Worker<D, R>(options.queue, processor, {
    connection: main,
    prefix: QUEUE_PREFIX,
    concurrency: options.concurrency,
    lockDuration: options.stalledJobMs ?? 30_000,
    stalledInterval: options.stalledJobMs ?? 30_000,
    // A job whose worker was killed runs again elsewhere; BullMQ's default fails it on the second
    // stall, which a few crashes in a row (an OOM loop, a bad node) would turn into a dead letter.
    // Every handler is idempotent, so let it stall a while before a person has to look.
    maxStalledCount: MAX_STALLS,
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
  ownedConnections.set(worker as Worker, { main, acks, log: options.log, name: options.name });
  // Every failed attempt is emitted; only one that failed for good has finished (`finishedOn`).
  // (A fail-closed message whose archive child failed for good is failed by the send worker that
  // takes it next, without running it: reported here like any other.) Attached before the worker
  // is ready: its first jobs may finish before that resolves.
  worker.on('failed', (job) => {
    if (job?.finishedOn) void report(job as Job, { failed: true });
  });
  if (options.breakers && options.breakers.length > 0) {
    breakerGates.set(
      worker as Worker,
      gateWorker(worker as Worker, options.breakers, {
        concurrency: options.concurrency,
        name: options.name,
        log: options.log,
      }),
    );
  }
  try {
    await worker.waitUntilReady();
  } catch (error) {
    await closeQueueWorker(worker as Worker, 0);
    throw error;
  }
  return worker;
}

type Report = (job: Job, outcome: Parameters<typeof sendAck>[3]) => Promise<void>;

/**
 * Tells a finished job's writer (its `ackTo`) that it is done, so the writer acknowledges its
 * spool records without reading every completion of the queue. A report lost to a crash or an
 * outage is covered by the writer's drainer, which looks the job up.
 */
function reporter(client: Redis, options: { queue: QueueName; log: Logger }): Report {
  return (job, outcome) =>
    sendAck(client, options.queue, job, outcome).catch((error: Error) =>
      options.log.debug({ jobId: job.id, err: error.message }, 'job finished; its writer was not told'),
    );
}

/**
 * Reports a job done once its work is, before BullMQ marks it completed: a report sent after
 * would be lost to a crash in between, leaving the writer to its drainer (15 s or more later).
 * Sent before, a crash only makes the job run again (every handler is idempotent), and the
 * writer ignores a second report. The processor's arity is kept, as below.
 */
function reportingDone<D, R>(process: Processor<D, R>, report: Report): Processor<D, R> {
  if (process.length >= 3) {
    return async (job, token, signal) => {
      const result = await process(job, token, signal);
      await report(job as Job, { failed: false, result });
      return result;
    };
  }
  return async (job, token) => {
    const result = await process(job, token);
    await report(job as Job, { failed: false, result });
    return result;
  };
}

/**
 * A job refused by an open circuit breaker never reached the dependency: it is put back (delayed
 * until the breaker lets calls through) and BullMQ's DelayedError tells the worker it was moved,
 * so the refusal spends no attempt. The processor's arity is kept (BullMQ reads it to decide
 * whether to pass an abort signal).
 */
function holdingBackOnOpenBreakers<D, R>(process: Processor<D, R>): Processor<D, R> {
  const holdBack = async (job: Job<D, R>, token: string | undefined, error: unknown): Promise<never> => {
    const open = breakerOpenErrorOf(error);
    if (!open || token === undefined) throw error;
    await job.moveToDelayed(Math.max(open.retryAt.getTime(), Date.now() + 10), token);
    throw new DelayedError();
  };
  if (process.length >= 3) {
    return async (job, token, signal) => {
      try {
        return await process(job, token, signal);
      } catch (error) {
        return holdBack(job, token, error);
      }
    };
  }
  return async (job, token) => {
    try {
      return await process(job, token);
    } catch (error) {
      return holdBack(job, token, error);
    }
  };
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
 * Stop taking jobs and let active ones finish; after `graceMs` (a job outlasting it, or Redis
 * down so the worker cannot even hand its jobs back) cut the worker's connection and return:
 * the stalled-job check re-runs those jobs elsewhere, and every handler is idempotent.
 */
export async function closeQueueWorker(worker: Worker, graceMs = 10_000): Promise<void> {
  const deadline = Date.now() + graceMs;
  const owned = ownedConnections.get(worker);
  ownedConnections.delete(worker);
  // First: a breaker turning half-open must not resume a worker that is closing.
  breakerGates.get(worker)?.close();
  breakerGates.delete(worker);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const closing = worker.close();
  const outcome = await Promise.race([closing.then(() => 'closed' as const), timedOut]);
  clearTimeout(timer);
  if (outcome === 'timeout') {
    // Not `close(true)`: it returns the close already under way, and BullMQ's close waits for
    // good on a connection that was reconnecting when it began (taskforcesh/bullmq#4656).
    closing.catch(() => undefined);
    owned?.main.disconnect();
    owned?.log.warn({ worker: owned.name, graceMs }, 'worker did not close in time; its connection was cut');
  }
  // After the worker: the failures of the jobs it finished while closing are recorded too.
  const watch = deadLetterWatches.get(worker);
  deadLetterWatches.delete(worker);
  await watch?.close(Math.max(1000, deadline - Date.now()));
  // Last: the jobs it finished while closing are reported (quit waits for replies in flight).
  const acks = owned?.acks;
  if (acks?.status === 'ready') await acks.quit().catch(() => acks.disconnect());
  else acks?.disconnect();
}
