import { HoldfastError } from '@holdfast/core';

/** The producer is closed; nothing more is accepted. */
export class ProducerClosedError extends HoldfastError {
  constructor() {
    super('HOLDFAST_ERR_PRODUCER_CLOSED', 'the producer is closed; create a new one to send more');
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
