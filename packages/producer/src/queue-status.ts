import { QUEUE_PREFIX, QUEUES, type QueueName } from '@holdfast/core';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** One queue's job counts as on-call reads them. */
export interface QueueStatus {
  queue: QueueName;
  /** Nothing is taken from it (paused by hand or by a breaker). */
  paused: boolean;
  /** Ready to run (or held by a pause): waiting and prioritized. */
  waiting: number;
  /** Flow parents waiting for their children (a fail-closed send waits for its archive write). */
  waitingChildren: number;
  active: number;
  /** Retries waiting out their backoff, and jobs scheduled for later. */
  delayed: number;
  /** In BullMQ's failed set (see the dead letters for why). */
  failed: number;
  /** Kept completed jobs (each queue keeps only its recent ones). */
  completed: number;
}

/** Every Holdfast queue's counts, read through `redis` (the caller keeps it). */
export async function readQueueStatus(redis: Redis): Promise<QueueStatus[]> {
  const queues = Object.values(QUEUES).map(
    (name) => new Queue(name, { connection: redis, prefix: QUEUE_PREFIX }),
  );
  // Errors surface on each command (and the caller's connection reports them); without a
  // listener BullMQ would print every reconnect attempt.
  for (const queue of queues) queue.on('error', () => {});
  try {
    return await Promise.all(
      queues.map(async (queue) => {
        const [counts, paused] = await Promise.all([
          queue.getJobCounts(
            'waiting',
            'prioritized',
            'waiting-children',
            'active',
            'delayed',
            'failed',
            'completed',
          ),
          queue.isPaused(),
        ]);
        const n = (state: string) => counts[state] ?? 0;
        return {
          queue: queue.name as QueueName,
          paused,
          waiting: n('waiting') + n('prioritized'),
          waitingChildren: n('waiting-children'),
          active: n('active'),
          delayed: n('delayed'),
          failed: n('failed'),
          completed: n('completed'),
        };
      }),
    );
  } finally {
    await Promise.allSettled(queues.map((q) => q.close()));
  }
}
