import { SendError } from '../errors.ts';

/**
 * Connection errors raised before a connection existed: nothing was sent, so the provider cannot
 * have the message. Every other network error (reset, timeout, socket hang-up) may come after the
 * request went out, and its fate is unknown.
 */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Timeouts as the clients here report them: fetch/AbortSignal, the AWS SDK, axios (Twilio). */
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Milliseconds to wait from a `Retry-After` header: delay-seconds or an HTTP date. Anything else
 * (absent, malformed, negative) gives undefined, and the sender's own backoff applies.
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The first `code` found on an error, its causes, or the errors of an AggregateError (happy eyeballs). */
export function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (e instanceof AggregateError) {
      const inner = e.errors.map(errorCode).find((c) => c !== undefined);
      if (inner) return inner;
    }
    e = e.cause;
  }
  return undefined;
}

function isTimeout(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; depth++) {
    if (e.name === 'TimeoutError') return true;
    e = e.cause;
  }
  const code = errorCode(error);
  return code !== undefined && TIMEOUT_CODES.has(code);
}

/**
 * A call that got no answer from the provider. Refused or unresolvable connections never carried
 * the request (`reachedProvider: 'no'`); timeouts and resets may have, after the provider accepted
 * the message (`'unknown'`). Either way the send can be retried.
 */
export function noAnswer(provider: string, error: unknown, timeoutMs: number): SendError {
  const code = errorCode(error);
  if (code !== undefined && NEVER_CONNECTED.has(code)) {
    return new SendError(provider, `could not connect (${code}); the request was not sent`, {
      retryable: true,
      reachedProvider: 'no',
      cause: error,
    });
  }
  const what = isTimeout(error)
    ? `no answer within ${timeoutMs} ms`
    : `the call failed without an answer (${code ?? (error as Error)?.name ?? 'unknown error'})`;
  return new SendError(provider, `${what}; the message may or may not have been accepted`, {
    retryable: true,
    reachedProvider: 'unknown',
    cause: error,
  });
}

/** A lookup that failed: the earlier attempt's fate is still unknown, so it is always worth retrying. */
export function lookupFailed(provider: string, cause: SendError): SendError {
  const prefix = `${provider}: `;
  const detail = cause.message.startsWith(prefix) ? cause.message.slice(prefix.length) : cause.message;
  return new SendError(provider, `could not look up the earlier attempt: ${detail}`, {
    retryable: true,
    reachedProvider: 'unknown',
    ...(cause.providerCode === undefined ? {} : { providerCode: cause.providerCode }),
    ...(cause.status === undefined ? {} : { status: cause.status }),
    ...(cause.retryAfterMs === undefined ? {} : { retryAfterMs: cause.retryAfterMs }),
    cause,
  });
}
