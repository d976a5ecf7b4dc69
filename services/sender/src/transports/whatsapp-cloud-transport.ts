import { PermanentSendError, SendError, TransportConfigError } from '../errors.ts';
import { noAnswer, parseRetryAfter } from './provider-failure.ts';
import type { OutboundWhatsApp, SendResult, WhatsAppTransport } from './transport.ts';
import { cloudApiMessage } from './whatsapp-message.ts';

export interface WhatsAppCloudTransportOptions {
  /** A system-user access token with `whatsapp_business_messaging`. */
  accessToken: string;
  /** The sending number's id in the WhatsApp Business Account (digits). */
  phoneNumberId: string;
  /** @defaultValue `'https://graph.facebook.com'` */
  graphUrl?: string;
  /** @defaultValue `'v23.0'` */
  graphVersion?: string;
  /** How long one API call may take before it counts as a timeout. @defaultValue 15000 */
  timeoutMs?: number;
}

/** Throttling: the message was not taken, try later. 429 answers count too. */
const RATE_LIMIT_CODES = new Set([4, 80007, 130429, 131048, 131056]);
/** "Something went wrong" on Meta's side (API Unknown, API Service, generic, service unavailable). */
const UNKNOWN_OUTCOME_CODES = new Set([1, 2, 131000, 131016, 133004]);
/** The token or its permissions: a configuration problem, retried so it never dead-letters everything. */
const AUTH_CODES = new Set([0, 3, 10, 102, 190]);
/** The business account cannot send now (locked, payment, policy block): retried, not the message's fault. */
const ACCOUNT_CODES = new Set([368, 131031, 131042]);
/**
 * The message itself cannot be sent: invalid parameter, missing/invalid value, recipient is the
 * sender, undeliverable, outside the 24-hour window, unsupported type, media download failure,
 * recipient number not registered. Template errors (132000-132016) are added below.
 */
const PERMANENT_CODES = new Set([100, 131008, 131009, 131021, 131026, 131047, 131051, 131052, 133010]);

interface GraphError {
  message?: string;
  type?: string;
  code?: number;
  error_subcode?: number;
  error_data?: { details?: string };
  fbtrace_id?: string;
}

/**
 * WhatsApp through Meta's Cloud API: `POST {graphUrl}/{version}/{phoneNumberId}/messages` with a
 * bearer token; the answer's `messages[0].id` (`wamid.…`) is the provider message id.
 *
 * There is no `lookup`: the Cloud API has no endpoint to read or find a message sent earlier
 * (message status arrives only through webhooks), so an attempt whose outcome was lost stays
 * uncertain and the channel's delivery policy decides whether to send again.
 */
export class WhatsAppCloudTransport implements WhatsAppTransport {
  readonly name = 'cloud-api';
  readonly #endpoint: string;
  readonly #authorization: string;
  readonly #timeoutMs: number;

  constructor(options: WhatsAppCloudTransportOptions) {
    if (!options.accessToken) throw new TransportConfigError('cloud-api', 'HOLDFAST_WHATSAPP_ACCESS_TOKEN');
    if (!/^\d+$/.test(options.phoneNumberId ?? '')) {
      throw new TransportConfigError(
        'cloud-api',
        'HOLDFAST_WHATSAPP_PHONE_NUMBER_ID (the numeric phone number id)',
      );
    }
    const version = options.graphVersion ?? 'v23.0';
    if (!/^v\d+\.\d+$/.test(version)) {
      throw new TransportConfigError('cloud-api', 'HOLDFAST_WHATSAPP_GRAPH_VERSION like v23.0');
    }
    let graphUrl: URL;
    try {
      graphUrl = new URL(options.graphUrl ?? 'https://graph.facebook.com');
      if (graphUrl.protocol !== 'https:' && graphUrl.protocol !== 'http:') throw new Error('not http(s)');
    } catch {
      throw new TransportConfigError('cloud-api', 'HOLDFAST_WHATSAPP_GRAPH_URL to be an http(s) URL');
    }
    const timeoutMs = options.timeoutMs ?? 15_000;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new TransportConfigError('cloud-api', 'timeoutMs to be a positive integer');
    }
    this.#endpoint = `${graphUrl.href.replace(/\/+$/, '')}/${version}/${options.phoneNumberId}/messages`;
    this.#authorization = `Bearer ${options.accessToken}`;
    this.#timeoutMs = timeoutMs;
  }

  async send(message: OutboundWhatsApp): Promise<SendResult> {
    let response: Response;
    let text: string;
    try {
      // One deadline for the whole exchange, body included: a stalled body is as unknown as no answer.
      response = await fetch(this.#endpoint, {
        method: 'POST',
        headers: {
          authorization: this.#authorization,
          'content-type': 'application/json',
          accept: 'application/json',
        },
        body: JSON.stringify(cloudApiMessage(message)),
        // A redirect would carry the token elsewhere; it is an answer that did not take the message.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      throw noAnswer('cloud-api', error, this.#timeoutMs);
    }
    const body = parseJson(text);
    if (response.ok) {
      const id = (body as { messages?: { id?: unknown }[] } | undefined)?.messages?.[0]?.id;
      if (typeof id === 'string' && id.length > 0) return { providerMessageId: id };
      throw new SendError(
        'cloud-api',
        `answered ${response.status} without a message id; it may have been accepted`,
        {
          retryable: true,
          reachedProvider: 'unknown',
          status: response.status,
        },
      );
    }
    const graph = (body as { error?: GraphError } | undefined)?.error;
    throw classifyGraphError(response.status, graph, parseRetryAfter(response.headers.get('retry-after')));
  }

  async close(): Promise<void> {}
}

/**
 * Meta answered with an error, so it did not accept the message, unless the answer was a 5xx or
 * one of its "something went wrong" codes, after which it may have.
 */
function classifyGraphError(
  status: number,
  graph: GraphError | undefined,
  retryAfterMs: number | undefined,
): SendError {
  const code = typeof graph?.code === 'number' ? graph.code : undefined;
  const subcode = typeof graph?.error_subcode === 'number' ? graph.error_subcode : undefined;
  const providerCode = code === undefined ? undefined : String(code);
  const details = graph?.error_data?.details;
  const text = [
    graph?.message ?? `HTTP ${status}`,
    details && details !== graph?.message ? `(${details})` : undefined,
    code === undefined ? undefined : `[code ${code}${subcode === undefined ? '' : `/${subcode}`}]`,
    graph?.fbtrace_id ? `fbtrace_id ${graph.fbtrace_id}` : undefined,
  ]
    .filter((part) => part !== undefined)
    .join(' ');
  const base = { ...(providerCode === undefined ? {} : { providerCode }), status };

  if (status === 429 || (code !== undefined && RATE_LIMIT_CODES.has(code))) {
    return new SendError('cloud-api', `throttled: ${text}`, {
      retryable: true,
      reachedProvider: 'no',
      ...base,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
  }
  if (status >= 500 || (code !== undefined && UNKNOWN_OUTCOME_CODES.has(code))) {
    return new SendError(
      'cloud-api',
      `failed on Meta's side; the message may or may not have been accepted: ${text}`,
      {
        retryable: true,
        reachedProvider: 'unknown',
        ...base,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      },
    );
  }
  // Code 100 with subcode 33: the phone number id does not exist or the token cannot see it.
  const misconfigured =
    status === 401 ||
    status === 403 ||
    (code !== undefined && (AUTH_CODES.has(code) || (code >= 200 && code <= 299))) ||
    (code === 100 && subcode === 33);
  if (misconfigured) {
    return new SendError(
      'cloud-api',
      `refused the request (check the access token and phone number id): ${text}`,
      {
        retryable: true,
        reachedProvider: 'no',
        ...base,
      },
    );
  }
  if (code !== undefined && (PERMANENT_CODES.has(code) || (code >= 132000 && code <= 132016))) {
    return new PermanentSendError('cloud-api', String(code), text, status);
  }
  if (code !== undefined && ACCOUNT_CODES.has(code)) {
    return new SendError('cloud-api', `the business account cannot send now: ${text}`, {
      retryable: true,
      reachedProvider: 'no',
      ...base,
    });
  }
  // Any other 400 is a request Meta will refuse again; other 4xx (and redirects) are not about the message.
  if (status === 400) return new PermanentSendError('cloud-api', providerCode ?? 'HTTP 400', text, status);
  return new SendError('cloud-api', `answered ${status}: ${text}`, {
    retryable: true,
    reachedProvider: 'no',
    ...base,
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
