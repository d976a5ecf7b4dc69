import {
  ARCHIVE_BATCH_JOB,
  type ArchiveBatchJobData,
  archiveBatchJobId,
  type EventEnvelope,
  QUEUE_PREFIX,
  QUEUES,
  type QueueName,
  SEND_QUEUES,
} from '@holdfast/core';
import type { FlowJob, JobsOptions } from 'bullmq';

/**
 * How an accepted event travels. `archive`: one archive job. `send`: an outbound message, shaped
 * by its fail mode (`data.failMode`):
 * - `closed`: a flow whose parent (the send) cannot start before its child (the archive write)
 *   has completed;
 * - `open`: an archive job and a send job side by side: the send does not wait for the store,
 *   and the spool keeps the event until both are done.
 */
export const routes = ['archive', 'send'] as const;
export type Route = (typeof routes)[number];

/** Spool records written before `send` covered every channel used the email queue's name. */
export function routeOf(value: unknown): Route | undefined {
  if (value === 'send-email') return 'send';
  return routes.find((r) => r === value);
}

/** What one enqueue adds: standalone jobs, or a flow (parent with its archive child). */
export type Enqueue =
  | {
      kind: 'job';
      queue: QueueName;
      name: string;
      data: { event: EventEnvelope } | ArchiveBatchJobData;
      opts: JobsOptions;
    }
  | { kind: 'flow'; queue: QueueName; flow: FlowJob };

function sendQueueOf(event: EventEnvelope): QueueName {
  if (event.channel === 'record') throw new Error(`event ${event.id} is a record, not a message to send`);
  return SEND_QUEUES[event.channel];
}

function failsOpen(event: EventEnvelope): boolean {
  return event.data.failMode === 'open';
}

/** The queues whose jobs must all complete before the event's spool record can go. */
export function completionQueues(route: Route, event: EventEnvelope): QueueName[] {
  if (route === 'archive') return [QUEUES.archive];
  return failsOpen(event) ? [QUEUES.archive, sendQueueOf(event)] : [sendQueueOf(event)];
}

/** Every queue a completion can arrive on. */
export const COMPLETION_QUEUES: readonly QueueName[] = Object.freeze([
  QUEUES.archive,
  ...Object.values(SEND_QUEUES),
]);

/** The enqueue that puts `event`'s job for `queue` (one of its completion queues) into Redis. */
export function enqueueFor(route: Route, event: EventEnvelope, queue: QueueName): Enqueue {
  if (queue === QUEUES.archive) {
    return { kind: 'job', queue, name: 'archive', data: { event }, opts: archiveJobOptions(event) };
  }
  if (route !== 'send') throw new Error(`route ${route} has no ${queue} job`);
  if (failsOpen(event)) {
    return { kind: 'job', queue, name: 'send', data: { event }, opts: sendJobOptions(event) };
  }
  return { kind: 'flow', queue, flow: sendFlow(event) };
}

/**
 * Events whose only job is their archive write may share an `archive-batch` job with events
 * spooled beside them (see `ARCHIVE_BATCH_JOB`); sends keep a job each, named by their event.
 */
export function travelsInBatches(route: Route): boolean {
  return route === 'archive';
}

/** One archive job for `events` (at least two, all of route `archive`). */
export function archiveBatchFor(events: readonly EventEnvelope[]): Extract<Enqueue, { kind: 'job' }> {
  if (events.length < 2) throw new Error('a batch holds at least two events');
  return {
    kind: 'job',
    queue: QUEUES.archive,
    name: ARCHIVE_BATCH_JOB,
    data: { events: [...events] },
    opts: {
      jobId: archiveBatchJobId(events.map((e) => e.id)),
      attempts: 10_000,
      backoff: { type: 'holdfast' },
      ...keep,
    },
  };
}

const keep = { removeOnComplete: { age: 24 * 3600, count: 10_000 }, removeOnFail: false } as const;

/**
 * Archive jobs retry transient store failures for about a week (the archiver caps the backoff);
 * permanent failures are raised as UnrecoverableError and skip the retries. Failed jobs are
 * never removed automatically: a person must see them.
 */
export function archiveJobOptions(event: EventEnvelope): JobsOptions {
  return { jobId: event.id, attempts: 10_000, backoff: { type: 'holdfast' }, ...keep };
}

export function sendJobOptions(event: EventEnvelope): JobsOptions {
  return { jobId: event.id, attempts: 10, backoff: { type: 'holdfast' }, ...keep };
}

/** Fail-closed: the send is the parent of the archive write and cannot run before it completed. */
export function sendFlow(event: EventEnvelope): FlowJob {
  return {
    name: 'send',
    queueName: sendQueueOf(event),
    prefix: QUEUE_PREFIX,
    data: { event },
    opts: sendJobOptions(event),
    children: [
      {
        name: 'archive',
        queueName: QUEUES.archive,
        prefix: QUEUE_PREFIX,
        data: { event },
        opts: { ...archiveJobOptions(event), failParentOnFailure: true },
      },
    ],
  };
}
