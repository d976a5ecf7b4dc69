import { getCACertificates } from 'node:tls';
import { Agent, type Dispatcher, request } from 'undici';
import {
  MediaBadResponseError,
  MediaFetchError,
  MediaRejectedError,
  MediaTimeoutError,
  MediaTooManyRedirectsError,
  MediaUnavailableError,
} from './errors.ts';
import { type Resolve, safeLookup } from './safe-lookup.ts';
import { redactUrl, type UrlPolicy } from './url-policy.ts';

export interface MediaClientOptions {
  policy: UrlPolicy;
  /** Redirects followed per request; Twilio takes one (to its CDN). @defaultValue 5 */
  maxRedirects?: number;
  /** PEM certificates trusted besides Node's default CAs (tests: a loopback server's self-signed one). */
  extraCa?: readonly string[];
  /** Name resolution; the system resolver unless a test hands in its own. */
  resolve?: Resolve;
}

export interface GetOptions {
  /** Sent only to the origin of the URL asked for, never to a host a redirect names. */
  authorization?: string;
  /** Aborted when the job's time is up. */
  signal: AbortSignal;
  /** For the timeout error's message. */
  timeoutMs: number;
}

export interface MediaResponse {
  /** The URL that answered (after redirects). */
  url: URL;
  headers: Dispatcher.ResponseData['headers'];
  body: Dispatcher.ResponseData['body'];
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** 4xx statuses that say "not now" rather than "never": retried like a 5xx. */
const TRANSIENT_4XX = new Set([408, 425, 429]);
const USER_AGENT = 'holdfast-media-fetcher';
const MAX_RETRY_AFTER_MS = 10 * 60_000;

/**
 * HTTP GET for media under the safety rules. Redirects are followed by hand, so every hop passes
 * the URL policy before it is requested; sockets connect only to addresses the safe lookup
 * checked; credentials go only to the origin they were given for.
 */
export class MediaClient {
  readonly #agent: Agent;
  readonly #policy: UrlPolicy;
  readonly #maxRedirects: number;

  constructor(options: MediaClientOptions) {
    this.#policy = options.policy;
    this.#maxRedirects = options.maxRedirects ?? 5;
    const ca = options.extraCa?.length ? { ca: [...getCACertificates('default'), ...options.extraCa] } : {};
    this.#agent = new Agent({
      connect: { lookup: safeLookup(options.policy.addresses, options.resolve), ...ca },
      // One media download is one long HTTP/1.1 stream; h2 would add a second code path for nothing.
      allowH2: false,
    });
  }

  /**
   * The first 2xx answer for `url`; 4xx answers throw MediaRejectedError (permanent), 5xx and
   * transport failures MediaUnavailableError (retried), the policy's refusals their own errors.
   */
  async get(url: string, options: GetOptions): Promise<MediaResponse> {
    let current = this.#policy.check(url);
    const credentialOrigin = current.origin;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT, accept: '*/*' };
      if (options.authorization !== undefined && current.origin === credentialOrigin) {
        headers.authorization = options.authorization;
      }
      let response: Dispatcher.ResponseData;
      try {
        response = await request(current, {
          method: 'GET',
          headers,
          dispatcher: this.#agent,
          signal: options.signal,
        });
      } catch (error) {
        throw transportError(error, current, options, 'waiting for an answer');
      }
      const { statusCode, body } = response;
      if (REDIRECTS.has(statusCode)) {
        await body.dump().catch(() => {});
        const location = header(response.headers, 'location');
        if (location === undefined) {
          throw new MediaBadResponseError(
            `GET ${redactUrl(current)} answered ${statusCode} without a Location`,
          );
        }
        if (hop >= this.#maxRedirects)
          throw new MediaTooManyRedirectsError(redactUrl(url), this.#maxRedirects);
        current = this.#policy.check(location, current);
        continue;
      }
      if (statusCode >= 200 && statusCode < 300) return { url: current, headers: response.headers, body };
      const detail = await errorDetail(body);
      if (statusCode >= 400 && statusCode < 500 && !TRANSIENT_4XX.has(statusCode)) {
        throw new MediaRejectedError(redactUrl(current), statusCode, detail);
      }
      const retryAfterMs = retryAfter(header(response.headers, 'retry-after'));
      throw new MediaUnavailableError(
        `GET ${redactUrl(current)} answered ${statusCode}${detail}`,
        retryAfterMs === undefined ? {} : { retryAfterMs },
      );
    }
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** Retry-After (seconds or an HTTP date) in ms, capped: a provider cannot park a job for days. */
function retryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value) * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}

/** One header's value (the first, if repeated). */
export function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * What went wrong below HTTP, as a typed error: the policy's own refusal (raised by the safe
 * lookup) as it is, the job's deadline as MediaTimeoutError, anything else as retryable.
 */
export function transportError(error: unknown, url: URL, options: GetOptions, what: string): MediaFetchError {
  const own = findOwn(error);
  if (own) return own;
  if (options.signal.aborted) return new MediaTimeoutError(options.timeoutMs, what);
  const e = error as { code?: string; message?: string };
  const reason = [e.message, e.code && `(${e.code})`].filter(Boolean).join(' ') || String(error);
  return new MediaUnavailableError(`GET ${redactUrl(url)} failed: ${reason}`, { cause: error });
}

function findOwn(error: unknown, depth = 0): MediaFetchError | undefined {
  if (error instanceof MediaFetchError) return error;
  if (depth > 4 || typeof error !== 'object' || error === null) return undefined;
  const nested = [(error as { cause?: unknown }).cause, ...((error as { errors?: unknown[] }).errors ?? [])];
  for (const inner of nested) {
    const found = findOwn(inner, depth + 1);
    if (found) return found;
  }
  return undefined;
}

/** The provider's own error message, when its error body is small JSON that names one. */
async function errorDetail(body: Dispatcher.ResponseData['body']): Promise<string> {
  let text: string;
  try {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > 16_384) break;
      chunks.push(chunk);
    }
    text = Buffer.concat(chunks).toString('utf8');
  } catch {
    return '';
  } finally {
    body.destroy();
  }
  try {
    const json = JSON.parse(text) as { message?: unknown; error?: { message?: unknown } };
    const message = json.error?.message ?? json.message;
    return typeof message === 'string' ? `: ${message.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}
