import { HoldfastError } from '@holdfast/core';

/**
 * Whether a failed call may have reached the provider: `no` when the provider answered with an
 * error (it did not accept the message), `unknown` for timeouts, resets and 5xx answers, after
 * which the message may or may not have been accepted.
 */
export type ReachedProvider = 'no' | 'unknown';

/** A provider call failed; the fields say whether to retry, when, and whether it may have gone out. */
export class SendError extends HoldfastError {
  readonly provider: string;
  /** False: retrying cannot help (invalid number, unsubscribed recipient, bad template). */
  readonly retryable: boolean;
  readonly reachedProvider: ReachedProvider;
  /** The provider's own error code or name, when it gave one (e.g. Twilio 21211, Meta 131026). */
  readonly providerCode: string | undefined;
  /** HTTP status of the provider's answer, when there was one. */
  readonly status: number | undefined;
  /** From Retry-After (429/503): wait at least this long before the next attempt. */
  readonly retryAfterMs: number | undefined;

  constructor(
    provider: string,
    message: string,
    details: {
      retryable: boolean;
      reachedProvider: ReachedProvider;
      providerCode?: string;
      status?: number;
      retryAfterMs?: number;
      cause?: unknown;
    },
  ) {
    super(
      details.retryable ? 'HOLDFAST_ERR_SEND_FAILED' : 'HOLDFAST_ERR_SEND_REJECTED',
      `${provider}: ${message}`,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.provider = provider;
    this.retryable = details.retryable;
    this.reachedProvider = details.reachedProvider;
    this.providerCode = details.providerCode;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The provider refused the message for a reason retrying cannot fix; the job fails at once. */
export class PermanentSendError extends SendError {
  constructor(provider: string, reason: string, message: string, status?: number) {
    super(provider, `rejected the message: ${reason}: ${message}`, {
      retryable: false,
      reachedProvider: 'no',
      providerCode: reason,
      ...(status === undefined ? {} : { status }),
    });
  }
}

/** A send job ran without a completed archive write for the same bytes: fail closed, never send. */
export class NotArchivedError extends HoldfastError {
  constructor(eventId: string, detail: string) {
    super('HOLDFAST_ERR_NOT_ARCHIVED', `message ${eventId} is not archived (${detail}); refusing to send`);
  }
}

/** A transport's configuration is incomplete (e.g. `twilio` without an account SID). */
export class TransportConfigError extends HoldfastError {
  /** What is missing, usually the environment variable to set (e.g. `HOLDFAST_TWILIO_AUTH_TOKEN`). */
  readonly missing: string;

  constructor(transport: string, missing: string) {
    super('HOLDFAST_ERR_TRANSPORT_CONFIG', `the ${transport} transport needs ${missing}`);
    this.missing = missing;
  }
}
