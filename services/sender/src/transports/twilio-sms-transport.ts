import { AsyncLocalStorage } from 'node:async_hooks';
import { Agent as HttpAgent } from 'node:http';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient.js';
import type * as TwilioHttp from 'twilio/lib/http/response.js';
import { PermanentSendError, SendError, TransportConfigError } from '../errors.ts';
import { lookupFailed, noAnswer, parseRetryAfter } from './provider-failure.ts';
import type { LookupResult, OutboundSms, SendResult, SmsTransport } from './transport.ts';

export interface TwilioSmsTransportOptions {
  /** `AC` + 32 hex digits. */
  accountSid: string;
  authToken: string;
  /**
   * Where the REST API answers. Anything but the default (a Twilio-compatible server, a test
   * server on loopback) replaces `https://api.twilio.com` in every request the library makes.
   * @defaultValue `'https://api.twilio.com'`
   */
  apiUrl?: string;
  /** How long one API call may take before it counts as a timeout. @defaultValue 15000 */
  timeoutMs?: number;
  /**
   * The public URL of the ingest service. When set, every message asks for status callbacks at
   * `<publicBaseUrl>/webhooks/twilio/<project>/status`; when not, Twilio uses the sender number's
   * or Messaging Service's own callback settings.
   * @defaultValue undefined
   */
  publicBaseUrl?: string;
  /**
   * `lookup` matches messages created from this long before the attempt began, for Twilio's clock
   * being behind ours and its timestamps being whole seconds.
   * @defaultValue 120000
   */
  lookupClockSkewMs?: number;
  /**
   * `lookup` reads at most this many of the recipient's messages; a longer history makes the
   * lookup fail (retryably) rather than answer "not found" without having looked everywhere.
   * @defaultValue 1000
   */
  lookupMaxMessages?: number;
}

const DEFAULT_API_URL = 'https://api.twilio.com';
/** The hosts the library addresses for the Messages API: `api.twilio.com`, or with edge/region. */
const TWILIO_API_HOST = /^api(\.[a-z0-9-]+){0,2}\.twilio\.com$/;
/** Twilio prefixes every body sent from a trial account with this. */
const TRIAL_PREFIX = 'Sent from your Twilio trial account - ';
const MESSAGING_SERVICE_SID = /^MG[0-9a-fA-F]{32}$/;

/**
 * 400-class answers that say "not now" rather than "never": 20429 too many requests, 14107 send
 * rate limit, 21611 the sender's queue is full. Retried, and the provider never took the message.
 */
const THROTTLED_CODES = new Set([20429, 14107, 21611]);

type TwilioClient = ReturnType<typeof twilio>;
type TwilioMessage = Awaited<ReturnType<TwilioClient['messages']['create']>>;
type TwilioMessagePage = Awaited<ReturnType<TwilioClient['messages']['page']>>;

/**
 * The `Retry-After` of the last error answer within one send or lookup. Twilio's RestException
 * carries status and code but not headers, so the request client notes it here; the scope keeps
 * concurrent sends on the one client apart.
 */
const answerScope = new AsyncLocalStorage<{ retryAfter?: string }>();

/**
 * The library's own request client (axios, its timeout, its auth and form encoding), extended in
 * the way twilio-node documents for custom HTTP clients: requests for the Messages API go to the
 * configured `apiUrl`, and error answers leave their `Retry-After` for the transport.
 */
class HoldfastTwilioRequestClient extends twilio.RequestClient {
  readonly #apiUrl: URL | undefined;
  readonly #httpAgent = new HttpAgent({ keepAlive: true });

  constructor(timeoutMs: number, apiUrl: URL | undefined) {
    // Never retried inside the library: a retried create is a second message. The sender decides.
    super({ timeout: timeoutMs, autoRetry: false });
    this.#apiUrl = apiUrl;
    // Plain-http API URLs (loopback test servers) get an agent of ours, so close() can end it.
    this.axios.defaults.httpAgent = this.#httpAgent;
  }

  override async request<TData>(
    opts: RequestClient.RequestOptions<TData>,
  ): Promise<TwilioHttp.default<TData>> {
    const scope = answerScope.getStore();
    const response = await super.request({ ...opts, uri: this.#target(opts.uri) });
    if (scope && response.statusCode >= 400) {
      const retryAfter = headerValue(response.headers, 'retry-after');
      if (retryAfter === undefined) delete scope.retryAfter;
      else scope.retryAfter = retryAfter;
    }
    return response;
  }

  destroy(): void {
    this.#httpAgent.destroy();
    (this.axios.defaults.httpsAgent as { destroy?: () => void } | undefined)?.destroy?.();
  }

  #target(uri: string): string {
    if (!this.#apiUrl) return uri;
    const url = new URL(uri);
    if (!TWILIO_API_HOST.test(url.hostname)) return uri;
    const base = this.#apiUrl.href.replace(/\/+$/, '');
    return `${base}${url.pathname}${url.search}`;
  }
}

/**
 * SMS and MMS through Twilio's Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json`) with
 * the official `twilio` library. A `from` that is a Messaging Service SID (`MG…`) is sent as
 * `MessagingServiceSid`, so Twilio picks the sender from the service's pool.
 */
export class TwilioSmsTransport implements SmsTransport {
  readonly name = 'twilio';
  readonly #client: TwilioClient;
  readonly #http: HoldfastTwilioRequestClient;
  readonly #timeoutMs: number;
  readonly #publicBaseUrl: string | undefined;
  readonly #clockSkewMs: number;
  readonly #lookupMaxMessages: number;

  constructor(options: TwilioSmsTransportOptions) {
    if (!/^AC[0-9a-fA-F]{32}$/.test(options.accountSid)) {
      throw new TransportConfigError(
        'twilio',
        'an account SID of AC + 32 hex digits (HOLDFAST_TWILIO_ACCOUNT_SID)',
      );
    }
    if (!options.authToken) throw new TransportConfigError('twilio', 'HOLDFAST_TWILIO_AUTH_TOKEN');
    const apiUrl = httpUrl(options.apiUrl ?? DEFAULT_API_URL, 'HOLDFAST_TWILIO_API_URL');
    if (options.publicBaseUrl !== undefined) httpUrl(options.publicBaseUrl, 'HOLDFAST_PUBLIC_BASE_URL');
    this.#timeoutMs = positive(options.timeoutMs ?? 15_000, 'timeoutMs');
    this.#clockSkewMs = positive(options.lookupClockSkewMs ?? 120_000, 'lookupClockSkewMs');
    this.#lookupMaxMessages = positive(options.lookupMaxMessages ?? 1000, 'lookupMaxMessages');
    // Exactly as the ingest service rebuilds it to check Twilio's signature: the configured text.
    this.#publicBaseUrl = options.publicBaseUrl?.replace(/\/$/, '');
    this.#http = new HoldfastTwilioRequestClient(
      this.#timeoutMs,
      apiUrl.href.replace(/\/+$/, '') === DEFAULT_API_URL ? undefined : apiUrl,
    );
    this.#client = twilio(options.accountSid, options.authToken, {
      httpClient: this.#http,
      userAgentExtensions: ['holdfast-sender'],
    });
  }

  async send(sms: OutboundSms): Promise<SendResult> {
    const scope: { retryAfter?: string } = {};
    let message: TwilioMessage;
    try {
      message = await answerScope.run(scope, () =>
        this.#client.messages.create({
          to: sms.to,
          ...(MESSAGING_SERVICE_SID.test(sms.from) ? { messagingServiceSid: sms.from } : { from: sms.from }),
          body: sms.body,
          ...(sms.mediaUrls.length > 0 ? { mediaUrl: [...sms.mediaUrls] } : {}),
          ...(this.#publicBaseUrl
            ? {
                statusCallback: `${this.#publicBaseUrl}/webhooks/twilio/${encodeURIComponent(sms.project)}/status`,
              }
            : {}),
        }),
      );
    } catch (error) {
      throw this.#failure(error, scope.retryAfter);
    }
    if (typeof message.sid !== 'string' || !/^(SM|MM)[0-9a-fA-F]{32}$/.test(message.sid)) {
      throw new SendError(
        'twilio',
        'answered 2xx without a message SID; the message may have been accepted',
        {
          retryable: true,
          reachedProvider: 'unknown',
        },
      );
    }
    return { providerMessageId: message.sid };
  }

  /**
   * Did Twilio accept this message in an attempt that began at `since`? Twilio keeps no id of ours
   * on a message, so this reads the recipient's messages (`To`, and `From` unless it is a Messaging
   * Service) and matches an outbound message with the same sender, the same body (or the body with
   * the trial-account prefix) created no earlier than `since` less `lookupClockSkewMs`.
   *
   * Why no `DateSent` filter: it only compares whole days, and a message Twilio accepted but has
   * not yet handed to a carrier (`queued`, `accepted`, `scheduled`) has `date_sent: null` and
   * would be filtered out: exactly the message a lookup exists to find. Twilio sorts by
   * `date_sent`, newest first, and does not document where the null ones go, so the scan cannot
   * stop early on dates; it reads the whole filtered history, up to `lookupMaxMessages`, and throws
   * (retryably) rather than answer "not found" past that.
   *
   * Limits: two messages with the same sender, recipient and body created in the window are
   * indistinguishable (whichever Twilio lists first is reported as ours); an account that redacts
   * message bodies can never match; and Twilio's message list can lag its API, so a lookup made
   * moments after a crash may not see a message that was just accepted.
   */
  async lookup(sms: OutboundSms, since: Date): Promise<LookupResult> {
    const scope: { retryAfter?: string } = {};
    const viaService = MESSAGING_SERVICE_SID.test(sms.from);
    const earliest = since.getTime() - this.#clockSkewMs;
    const isOurs = (m: TwilioMessage): boolean => {
      if (!String(m.direction).startsWith('outbound') || m.to !== sms.to) return false;
      if (viaService ? m.messagingServiceSid !== sms.from : m.from !== sms.from) return false;
      if (m.body !== sms.body && m.body !== `${TRIAL_PREFIX}${sms.body}`) return false;
      const created = new Date(m.dateCreated as Date | string).getTime();
      // An unreadable date cannot rule the message out.
      return Number.isNaN(created) || created >= earliest;
    };
    try {
      return await answerScope.run(scope, async () => {
        let page = await this.#client.messages.page({
          to: sms.to,
          ...(viaService ? {} : { from: sms.from }),
          pageSize: Math.min(100, this.#lookupMaxMessages),
        });
        let read = 0;
        for (;;) {
          const ours = page.instances.find(isOurs);
          if (ours) return { found: true, providerMessageId: ours.sid };
          read += page.instances.length;
          if (!page.nextPageUrl) return { found: false };
          if (read >= this.#lookupMaxMessages) {
            throw new SendError(
              'twilio',
              `the recipient has more than ${this.#lookupMaxMessages} messages; cannot tell whether this one was accepted`,
              { retryable: true, reachedProvider: 'unknown' },
            );
          }
          page = (await page.nextPage()) as TwilioMessagePage;
        }
      });
    } catch (error) {
      throw lookupFailed('twilio', this.#failure(error, scope.retryAfter));
    }
  }

  async close(): Promise<void> {
    this.#http.destroy();
  }

  #failure(error: unknown, retryAfter: string | undefined): SendError {
    if (error instanceof SendError) return error;
    const answer = twilioAnswer(error);
    return answer
      ? classifyAnswer(answer, parseRetryAfter(retryAfter))
      : noAnswer('twilio', error, this.#timeoutMs);
  }
}

interface TwilioAnswer {
  status: number;
  code: number | undefined;
  message: string;
}

/**
 * An error answer from Twilio: the library's RestException (`{code, message, more_info, status}`)
 * or TwilioServiceException (RFC 9457). axios errors have no numeric status here: the library
 * accepts every status, so an axios error is always a call that got no answer.
 */
function twilioAnswer(error: unknown): TwilioAnswer | undefined {
  if (!(error instanceof Error) || (error as { isAxiosError?: boolean }).isAxiosError) return undefined;
  const { status, code } = error as { status?: unknown; code?: unknown };
  if (typeof status !== 'number') return undefined;
  const detail = (error as { detail?: unknown }).detail;
  return {
    status,
    code:
      typeof code === 'number'
        ? code
        : typeof code === 'string' && /^\d+$/.test(code)
          ? Number(code)
          : undefined,
    message: error.message || (typeof detail === 'string' ? detail : `HTTP ${status}`),
  };
}

/**
 * Twilio answered, so it did not accept the message (2xx is the only acceptance) unless the answer
 * was a 5xx, after which it may have. Rejections of the message itself (invalid or unsubscribed
 * recipient, bad sender, empty body, region not enabled) are permanent; throttling and account or
 * credential problems are retried, so a misconfiguration never dead-letters every message.
 */
function classifyAnswer(answer: TwilioAnswer, retryAfterMs: number | undefined): SendError {
  const { status, code, message } = answer;
  const providerCode = code === undefined ? undefined : String(code);
  const details = {
    ...(providerCode === undefined ? {} : { providerCode }),
    status,
  };
  if (status === 429 || (code !== undefined && THROTTLED_CODES.has(code))) {
    return new SendError('twilio', `throttled: ${message}`, {
      retryable: true,
      reachedProvider: 'no',
      ...details,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  if (status >= 500) {
    return new SendError(
      'twilio',
      `answered ${status}; the message may or may not have been accepted: ${message}`,
      {
        retryable: true,
        reachedProvider: 'unknown',
        ...details,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      },
    );
  }
  if (status === 401 || status === 403 || status === 404 || status === 408) {
    return new SendError('twilio', `refused the request (check the account SID and auth token): ${message}`, {
      retryable: true,
      reachedProvider: 'no',
      ...details,
    });
  }
  if (status >= 400)
    return new PermanentSendError('twilio', providerCode ?? `HTTP ${status}`, message, status);
  return new SendError('twilio', `answered ${status} instead of creating the message: ${message}`, {
    retryable: true,
    reachedProvider: 'unknown',
    ...details,
  });
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const get = (headers as { get?: (n: string) => unknown }).get;
  const value =
    typeof get === 'function'
      ? get.call(headers, name)
      : (headers as Record<string, unknown>)[name.toLowerCase()];
  if (Array.isArray(value)) return value.length > 0 ? String(value[0]) : undefined;
  return value === undefined || value === null ? undefined : String(value);
}

function httpUrl(value: string, variable: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new TransportConfigError('twilio', `${variable} to be an http(s) URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new TransportConfigError('twilio', `${variable} to be an http(s) URL`);
  }
  return url;
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value <= 0)
    throw new TransportConfigError('twilio', `${name} to be a positive integer`);
  return value;
}
