import { HoldfastError } from '@holdfast/core';

/** The provider refused the message for a reason retrying cannot fix; the job fails at once. */
export class PermanentSendError extends HoldfastError {
  readonly provider: string;
  readonly reason: string;

  constructor(provider: string, reason: string, message: string) {
    super('HOLDFAST_ERR_SEND_REJECTED', `${provider} rejected the message: ${reason}: ${message}`);
    this.provider = provider;
    this.reason = reason;
  }
}

/** A send job ran without a completed archive write for the same bytes: fail closed, never send. */
export class NotArchivedError extends HoldfastError {
  constructor(eventId: string, detail: string) {
    super('HOLDFAST_ERR_NOT_ARCHIVED', `message ${eventId} is not archived (${detail}); refusing to send`);
  }
}
