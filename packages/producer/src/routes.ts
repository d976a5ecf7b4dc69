import { type EventEnvelope, QUEUE_PREFIX, QUEUES, type QueueName } from '@holdfast/core';
import type { FlowJob, JobsOptions } from 'bullmq';

/**
 * How an accepted event travels. `archive`: one archive job. `send-email`: a flow whose parent
 * (the send) cannot start before its child (the archive write) has completed: fail-closed.
 */
export const routes = ['archive', 'send-email'] as const;
export type Route = (typeof routes)[number];

/** The job whose completion means the event is fully handled and its spool record can go. */
export function topQueue(route: Route): QueueName {
  return route === 'archive' ? QUEUES.archive : QUEUES.sendEmail;
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

export function emailFlow(event: EventEnvelope): FlowJob {
  return {
    name: 'send',
    queueName: QUEUES.sendEmail,
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
