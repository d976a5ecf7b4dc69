import { HoldfastError } from '@holdfast/core';

/**
 * A media download failed. `permanent`: retrying cannot help (a refused URL, a 4xx, a file over
 * the limit, a hash mismatch), so the job fails at once with this message; otherwise the job is
 * retried with backoff.
 */
export class MediaFetchError extends HoldfastError {
  readonly permanent: boolean;

  constructor(code: string, message: string, permanent: boolean, options?: ErrorOptions) {
    super(code, message, options);
    this.permanent = permanent;
  }
}

/** The URL is not https: media is only ever fetched over TLS. */
export class MediaNotHttpsError extends MediaFetchError {
  constructor(url: string) {
    super('HOLDFAST_ERR_MEDIA_NOT_HTTPS', `media URL ${url} is not https; only https URLs are fetched`, true);
  }
}

/** The URL cannot be used at all (unparsable, or carrying credentials of its own). */
export class MediaUrlInvalidError extends MediaFetchError {
  constructor(url: string, reason: string) {
    super('HOLDFAST_ERR_MEDIA_URL_INVALID', `media URL ${url} is refused: ${reason}`, true);
  }
}

/** The URL's host (of the first request or of a redirect) is not in HOLDFAST_MEDIA_ALLOWED_HOSTS. */
export class MediaHostNotAllowedError extends MediaFetchError {
  readonly host: string;

  constructor(host: string) {
    super(
      'HOLDFAST_ERR_MEDIA_HOST_NOT_ALLOWED',
      `media host "${host}" is not in HOLDFAST_MEDIA_ALLOWED_HOSTS; nothing was requested from it`,
      true,
    );
    this.host = host;
  }
}

/**
 * The host is (or resolves to) an address that is not public unicast (private, loopback,
 * link-local, unique-local, CGNAT, multicast, reserved, …) and lies in no network of
 * HOLDFAST_MEDIA_ALLOWED_NETWORKS: no connection was made.
 */
export class MediaAddressRefusedError extends MediaFetchError {
  readonly host: string;
  readonly address: string;

  constructor(host: string, address: string, range: string) {
    super(
      'HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED',
      `media host "${host}" resolves to ${address} (${range}), which is not a public address and is ` +
        'in no network of HOLDFAST_MEDIA_ALLOWED_NETWORKS; no connection was made',
      true,
    );
    this.host = host;
    this.address = address;
  }
}

/** The media is larger than HOLDFAST_MEDIA_MAX_BYTES (declared up front, or counted while streaming). */
export class MediaTooLargeError extends MediaFetchError {
  constructor(maxBytes: number, detail: string) {
    super(
      'HOLDFAST_ERR_MEDIA_TOO_LARGE',
      `media is larger than HOLDFAST_MEDIA_MAX_BYTES (${maxBytes} bytes): ${detail}`,
      true,
    );
  }
}

/** The download (every request and the whole body) did not finish within HOLDFAST_MEDIA_TIMEOUT_MS. */
export class MediaTimeoutError extends MediaFetchError {
  constructor(timeoutMs: number, what: string) {
    super(
      'HOLDFAST_ERR_MEDIA_TIMEOUT',
      `media download did not finish within HOLDFAST_MEDIA_TIMEOUT_MS (${timeoutMs} ms) while ${what}`,
      false,
    );
  }
}

/** More redirects than a media URL legitimately takes (Twilio: one, to its CDN). */
export class MediaTooManyRedirectsError extends MediaFetchError {
  constructor(url: string, max: number) {
    super(
      'HOLDFAST_ERR_MEDIA_TOO_MANY_REDIRECTS',
      `media URL ${url} redirected more than ${max} times`,
      true,
    );
  }
}

/** The provider refused the request (4xx other than 408/425/429): the media is gone or not ours. */
export class MediaRejectedError extends MediaFetchError {
  readonly status: number;

  constructor(url: string, status: number, detail: string) {
    super('HOLDFAST_ERR_MEDIA_REJECTED', `GET ${url} answered ${status}${detail}`, true);
    this.status = status;
  }
}

/** The provider could not answer now (5xx, 408, 429, connection reset, body cut short): retried. */
export class MediaUnavailableError extends MediaFetchError {
  /** From Retry-After (429/503): the next attempt waits at least this long. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super('HOLDFAST_ERR_MEDIA_UNAVAILABLE', message, false, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** The provider answered something its API does not (metadata that is not JSON, no url, a redirect without Location). */
export class MediaBadResponseError extends MediaFetchError {
  constructor(message: string) {
    super('HOLDFAST_ERR_MEDIA_BAD_RESPONSE', message, true);
  }
}

/** The bytes do not hash to what the provider reports for the media. */
export class MediaHashMismatchError extends MediaFetchError {
  constructor(reported: string, computed: string) {
    super(
      'HOLDFAST_ERR_MEDIA_HASH_MISMATCH',
      `the provider reports sha256 ${reported} for the media, but the downloaded bytes hash to ${computed}`,
      true,
    );
  }
}

/** A credential the provider's media API needs is not configured. */
export class MediaCredentialsMissingError extends MediaFetchError {
  constructor(provider: string, variable: string) {
    super(
      'HOLDFAST_ERR_MEDIA_CREDENTIALS_MISSING',
      `fetching ${provider} media needs ${variable}, which is not set`,
      true,
    );
  }
}
