import { HoldfastError } from '@holdfast/core';

/** The producer is closed; nothing more is accepted. */
export class ProducerClosedError extends HoldfastError {
  constructor() {
    super('HOLDFAST_ERR_PRODUCER_CLOSED', 'the producer is closed; create a new one to send more');
  }
}

/**
 * A queue was given an auto-pipelined connection: ioredis would copy BullMQ's ~60 scripts onto
 * every pipeline it builds (one per event-loop turn), which cost the archiver seconds of CPU per
 * 10k emails before its queues got a connection of their own. A programming error.
 */
export class QueueConnectionError extends HoldfastError {
  constructor(queue: string) {
    super(
      'HOLDFAST_ERR_QUEUE_CONNECTION',
      `queue ${queue} needs a connection without enableAutoPipelining; give queues a connection of their own`,
    );
  }
}

/**
 * The event could not be made durable (the spool refused it). Nothing was accepted: the caller
 * must retry or report the failure. An HTTP front end answers 503.
 */
export class NotDurableError extends HoldfastError {
  constructor(cause: unknown) {
    super(
      'HOLDFAST_ERR_NOT_DURABLE',
      `the event was not accepted: the spool could not write it (${(cause as Error)?.message ?? cause})`,
      {
        cause,
      },
    );
  }
}

/**
 * The spool holds as many unacknowledged events as it may (`HOLDFAST_SPOOL_MAX_BACKLOG`):
 * downstream (Redis, the workers) is not keeping up or not there. Nothing was accepted: the
 * caller retries later. An HTTP front end answers 503 with Retry-After.
 */
export class BacklogFullError extends HoldfastError {
  readonly backlog: number;
  readonly maxBacklog: number;

  constructor(backlog: number, maxBacklog: number) {
    super(
      'HOLDFAST_ERR_BACKLOG_FULL',
      `the event was not accepted: the spool already holds ${backlog} unacknowledged events, its limit ` +
        `(HOLDFAST_SPOOL_MAX_BACKLOG=${maxBacklog}); Redis or the workers are behind, retry later`,
    );
    this.backlog = backlog;
    this.maxBacklog = maxBacklog;
  }
}

/** A dead letter named by the caller does not exist; nothing was changed. */
export class DeadLetterNotFoundError extends HoldfastError {
  readonly refs: readonly { queue: string; jobId: string }[];

  constructor(refs: readonly { queue: string; jobId: string }[]) {
    super(
      'HOLDFAST_ERR_DEAD_LETTER_NOT_FOUND',
      `no dead letter ${refs.map((r) => `${r.queue} ${r.jobId}`).join(', ')}: nothing was changed (holdfast dlq list shows what there is)`,
    );
    this.refs = Object.freeze(refs.map((r) => ({ ...r })));
  }
}

/**
 * A circuit breaker is open (or half-open with its one probe call in flight): the call was not
 * made, so the dependency never saw it. A queue worker puts the job back until `retryAt` without
 * spending an attempt.
 */
export class BreakerOpenError extends HoldfastError {
  readonly service: string;
  readonly breaker: string;
  readonly state: 'open' | 'half-open';
  /** When the breaker lets a call through again (its probe, or the calls after a probe). */
  readonly retryAt: Date;
  /** `retryAt` as a wait from when the call was refused, for backoffs that honour Retry-After. */
  readonly retryAfterMs: number;

  constructor(service: string, breaker: string, state: 'open' | 'half-open', retryAt: Date) {
    super(
      'HOLDFAST_ERR_BREAKER_OPEN',
      `${service}/${breaker} circuit breaker is ${state === 'open' ? 'open' : 'half-open and probing'}: ` +
        `the call was not made; try again at ${retryAt.toISOString()}`,
    );
    this.service = service;
    this.breaker = breaker;
    this.state = state;
    this.retryAt = retryAt;
    this.retryAfterMs = Math.max(0, retryAt.getTime() - Date.now());
  }
}

/** A call through a circuit breaker with a `timeoutMs` took longer; it counts as a failure. */
export class BreakerTimeoutError extends HoldfastError {
  readonly service: string;
  readonly breaker: string;

  constructor(service: string, breaker: string, timeoutMs: number) {
    super(
      'HOLDFAST_ERR_BREAKER_TIMEOUT',
      `${service}/${breaker}: the call did not settle within ${timeoutMs} ms (it may still complete)`,
    );
    this.service = service;
    this.breaker = breaker;
  }
}
