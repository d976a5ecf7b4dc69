import { HoldfastError } from '@holdfast/core';

/** No API key, or one that matches no project. */
export class UnauthorizedError extends HoldfastError {
  constructor(message = 'a valid API key is required: Authorization: Bearer <key>') {
    super('HOLDFAST_ERR_UNAUTHORIZED', message);
  }
}

/** The same Idempotency-Key was used with a different request (route, content type, query or body). */
export class IdempotencyKeyReusedError extends HoldfastError {
  constructor() {
    super(
      'HOLDFAST_ERR_IDEMPOTENCY_KEY_REUSED',
      'this Idempotency-Key was already used with a different request (route, content type, query or body)',
    );
  }
}

/** A request with this Idempotency-Key is still being processed. */
export class IdempotencyKeyInProgressError extends HoldfastError {
  constructor() {
    super(
      'HOLDFAST_ERR_IDEMPOTENCY_KEY_IN_PROGRESS',
      'a request with this Idempotency-Key is still in progress; retry shortly',
    );
  }
}

/** A webhook arrived for a provider whose secret is not configured: nothing can be verified, so nothing is accepted. */
export class ProviderNotConfiguredError extends HoldfastError {
  constructor(variable: string) {
    super(
      'HOLDFAST_ERR_PROVIDER_NOT_CONFIGURED',
      `this webhook is disabled: set ${variable} to verify its signatures`,
    );
  }
}

/** Redis (idempotency keys, the read model) cannot be reached: retry later. */
export class DependencyUnavailableError extends HoldfastError {
  constructor(what: string, cause: unknown) {
    super(
      'HOLDFAST_ERR_UNAVAILABLE',
      `${what} is unavailable: ${(cause as Error)?.message ?? cause}; retry later`,
      { cause },
    );
  }
}

/** The body's content type is not one this route reads. */
export class UnsupportedMediaTypeError extends HoldfastError {
  constructor(message: string) {
    super('HOLDFAST_ERR_UNSUPPORTED_MEDIA_TYPE', message);
  }
}

/** The body cannot be read as what its content type says (e.g. JSON that does not parse). */
export class MalformedBodyError extends HoldfastError {
  constructor(message: string, cause?: unknown) {
    super('HOLDFAST_ERR_MALFORMED_BODY', message, cause === undefined ? undefined : { cause });
  }
}

/** Stable error code -> HTTP status. Anything unlisted is a 500. */
export const HTTP_STATUS: Readonly<Record<string, number>> = Object.freeze({
  HOLDFAST_ERR_VALIDATION: 400,
  HOLDFAST_ERR_PAYLOAD_INVALID: 400,
  HOLDFAST_ERR_MALFORMED_BODY: 400,
  HOLDFAST_ERR_UNAUTHORIZED: 401,
  HOLDFAST_ERR_SIGNATURE_MISSING: 401,
  HOLDFAST_ERR_SIGNATURE_INVALID: 403,
  HOLDFAST_ERR_CERTIFICATE_URL_REJECTED: 403,
  HOLDFAST_ERR_SUBSCRIBE_URL_REJECTED: 403,
  HOLDFAST_ERR_MESSAGE_EXPIRED: 403,
  HOLDFAST_ERR_TOPIC_NOT_ALLOWED: 403,
  HOLDFAST_ERR_NOT_FOUND: 404,
  HOLDFAST_ERR_IDEMPOTENCY_KEY_IN_PROGRESS: 409,
  HOLDFAST_ERR_BODY_TOO_LARGE: 413,
  HOLDFAST_ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  HOLDFAST_ERR_IDEMPOTENCY_KEY_REUSED: 422,
  HOLDFAST_ERR_SUBSCRIPTION_CONFIRM: 502,
  HOLDFAST_ERR_CERTIFICATE_FETCH: 503,
  HOLDFAST_ERR_NOT_DURABLE: 503,
  HOLDFAST_ERR_BACKLOG_FULL: 503,
  HOLDFAST_ERR_PROVIDER_NOT_CONFIGURED: 503,
  HOLDFAST_ERR_UNAVAILABLE: 503,
});
