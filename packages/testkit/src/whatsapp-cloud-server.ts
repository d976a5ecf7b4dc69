/**
 * The WhatsApp Business Cloud API's send endpoint on loopback, answering as Meta documents:
 * `POST /{version}/{phone-number-id}/messages` with `Authorization: Bearer <token>` and a JSON
 * message object answers 200 `{ messaging_product, contacts: [{ input, wa_id }], messages: [{ id }] }`
 * with a `wamid.…` id; errors are Graph API error bodies
 * `{ error: { message, type, code, error_subcode, error_data, fbtrace_id } }`.
 *
 * Tests can make the next calls fail (`failNext`), reset the connection, and hold responses: a held
 * send is accepted and recorded but its answer waits until `release()` (or a delay), which stands
 * in for a timeout, or for a crash between the provider call and the recorded outcome.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeldAnswers, type HoldOptions } from './held-answers.ts';

/** A message the server accepted. */
export interface WhatsAppSentMessage {
  /** `wamid.…` */
  id: string;
  version: string;
  phoneNumberId: string;
  to: string;
  type: string;
  /** `biz_opaque_callback_data`: Holdfast puts the event id here. */
  bizOpaqueCallbackData: string | undefined;
  /** The message object as received. */
  body: Record<string, unknown>;
  /** When the server accepted it. */
  receivedAt: Date;
  headers: IncomingHttpHeaders;
}

/** A Graph API error answer with this HTTP status. */
export interface WhatsAppFailure {
  status: number;
  /** Graph error code, e.g. 131026, 131047, 130429, 190. */
  code: number;
  subcode?: number;
  /** @defaultValue Meta's text for well-known codes, else a generic one */
  message?: string;
  /** @defaultValue `'OAuthException'` */
  type?: string;
  /** Sent as `Retry-After`. */
  retryAfterSeconds?: number;
}

/** No answer at all: the connection is destroyed after the request was read. */
export interface WhatsAppReset {
  reset: true;
  /**
   * Accept and record the message before resetting (it went out; the caller cannot know).
   * @defaultValue false
   */
  accept?: boolean;
}

/** Which of the next accepted requests to hold, and for how long. */
export type WhatsAppHoldOptions = HoldOptions;

export interface WhatsAppCloudServerOptions {
  /** @defaultValue a random token */
  accessToken?: string;
  /** @defaultValue a random 15-digit id */
  phoneNumberId?: string;
}

export interface TestWhatsAppCloudServer {
  /** The Graph API base URL (instead of `https://graph.facebook.com`). */
  url: string;
  accessToken: string;
  phoneNumberId: string;
  /** Every accepted message, in order. */
  sent: WhatsAppSentMessage[];
  /** The accepted messages whose `biz_opaque_callback_data` is this event id. */
  sentFor(eventId: string): WhatsAppSentMessage[];
  /** Answer the next `times` sends with this error, or reset their connection. */
  failNext(times: number, failure: WhatsAppFailure | WhatsAppReset): void;
  /**
   * Every send to this number is refused with 400 and `code` (default 131026, "Message
   * undeliverable"): a recipient the API will never deliver to.
   */
  refuseRecipient(to: string, code?: number): void;
  /** Accept and record the next sends, but withhold their answers. */
  hold(options?: WhatsAppHoldOptions): void;
  /** Send every withheld answer now; returns how many there were. */
  release(): number;
  /** Resolves once at least `count` answers are being withheld. */
  whenHeld(count?: number): Promise<void>;
  close(): Promise<void>;
}

const KNOWN_ERRORS: Record<number, string> = {
  4: 'Application request limit reached',
  100: 'Invalid parameter',
  130429: 'Rate limit hit',
  131000: 'Something went wrong',
  131008: 'Required parameter is missing',
  131009: 'Parameter value is not valid',
  131021: 'Recipient cannot be sender',
  131026: 'Message undeliverable',
  131047: 'Re-engagement message',
  131048: 'Spam rate limit hit',
  131051: 'Unsupported message type',
  131056: '(Business Account, Consumer Account) pair rate limit hit',
  132000: 'Number of parameters does not match the expected number of params',
  132001: 'Template name does not exist in the translation',
  133010: 'Phone number Not Registered',
  190: 'Invalid OAuth access token - Cannot parse access token',
};

const MESSAGES_PATH = /^\/(v\d+\.\d+)\/([^/]+)\/messages$/;
const TYPES = new Set([
  'text',
  'template',
  'image',
  'document',
  'audio',
  'video',
  'sticker',
  'location',
  'contacts',
  'interactive',
  'reaction',
]);
const MEDIA_TYPES = new Set(['image', 'document', 'audio', 'video', 'sticker']);

export async function startWhatsAppCloudServer(
  options: WhatsAppCloudServerOptions = {},
): Promise<TestWhatsAppCloudServer> {
  const accessToken = options.accessToken ?? `EAAG${randomBytes(24).toString('hex')}`;
  const phoneNumberId = options.phoneNumberId ?? String(100_000_000_000_000 + randomBytes(4).readUInt32BE());
  const sent: WhatsAppSentMessage[] = [];
  const failures: (WhatsAppFailure | WhatsAppReset)[] = [];
  const refused = new Map<string, number>();
  const held = new HeldAnswers();

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://graph.invalid');
    const match = MESSAGES_PATH.exec(url.pathname);
    if (!match || req.method !== 'POST') {
      return graphError(res, 400, {
        code: 100,
        type: 'GraphMethodException',
        message: 'Unknown path components',
      });
    }
    const [, version, targetId] = match as unknown as [string, string, string];
    if (req.headers.authorization !== `Bearer ${accessToken}`) {
      return graphError(res, 401, { code: 190, type: 'OAuthException', message: KNOWN_ERRORS[190]! });
    }
    if (targetId !== phoneNumberId) {
      return graphError(res, 400, {
        code: 100,
        subcode: 33,
        type: 'GraphMethodException',
        message: `Unsupported post request. Object with ID '${targetId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
      });
    }
    let body: Record<string, unknown>;
    try {
      if (!String(req.headers['content-type'] ?? '').startsWith('application/json'))
        throw new Error('not JSON');
      const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      return invalidParameter(res, 'The request body must be a JSON object.');
    }
    const problem = validate(body);
    if (problem) return invalidParameter(res, problem);

    const refusal = refused.get(String(body.to));
    if (refusal !== undefined) return sendFailure(res, { status: 400, code: refusal });
    const failure = failures.shift();
    if (failure && !('reset' in failure)) return sendFailure(res, failure);
    if (failure && !failure.accept) return req.socket.destroy();
    const to = String(body.to);
    const record: WhatsAppSentMessage = {
      id: `wamid.${randomBytes(30).toString('base64').replace(/[+/=]/g, '')}`,
      version,
      phoneNumberId: targetId,
      to,
      type: String(body.type),
      bizOpaqueCallbackData:
        typeof body.biz_opaque_callback_data === 'string' ? body.biz_opaque_callback_data : undefined,
      body,
      receivedAt: new Date(),
      headers: req.headers,
    };
    sent.push(record);
    if (failure) return req.socket.destroy();

    const answer = () =>
      sendJson(res, 200, {
        messaging_product: 'whatsapp',
        contacts: [{ input: to, wa_id: to.replace(/^\+/, '') }],
        messages: [{ id: record.id, ...(record.type === 'template' ? { message_status: 'accepted' } : {}) }],
      });
    held.answerOrHold(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    accessToken,
    phoneNumberId,
    sent,
    sentFor: (eventId) => sent.filter((m) => m.bizOpaqueCallbackData === eventId),
    refuseRecipient(to, code = 131026) {
      refused.set(to, code);
    },
    failNext(times, failure) {
      for (let i = 0; i < times; i++) failures.push(failure);
    },
    hold: (holdOptions) => held.hold(holdOptions),
    release: () => held.release(),
    whenHeld: (count) => held.whenHeld(count),
    close: () =>
      new Promise<void>((resolve) => {
        held.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** What the Cloud API checks before accepting a message, in its words where it has them. */
function validate(body: Record<string, unknown>): string | undefined {
  if (body.messaging_product !== 'whatsapp') return '(#100) The parameter messaging_product is required.';
  if (
    body.recipient_type !== undefined &&
    body.recipient_type !== 'individual' &&
    body.recipient_type !== 'group'
  ) {
    return '(#100) Param recipient_type must be one of {INDIVIDUAL, GROUP}';
  }
  if (typeof body.to !== 'string' || body.to.length === 0) return '(#100) The parameter to is required.';
  const type = body.type ?? 'text';
  if (typeof type !== 'string' || !TYPES.has(type)) return `(#100) Param type must be one of {${[...TYPES]}}`;
  const content = body[type];
  if (!content || typeof content !== 'object') return `(#100) The parameter ${type} is required.`;
  const c = content as Record<string, unknown>;
  if (type === 'text' && (typeof c.body !== 'string' || c.body.length === 0)) {
    return "(#100) The parameter text['body'] is required.";
  }
  if (type === 'text' && String(c.body).length > 4096)
    return "(#100) Param text['body'] must be at most 4096 characters long.";
  if (type === 'template') {
    if (typeof c.name !== 'string') return "(#100) The parameter template['name'] is required.";
    const language = c.language as { code?: unknown } | undefined;
    if (typeof language?.code !== 'string')
      return "(#100) The parameter template['language']['code'] is required.";
  }
  if (MEDIA_TYPES.has(type) && (c.link === undefined) === (c.id === undefined)) {
    return `(#100) Param ${type} must contain exactly one of 'link' or 'id'`;
  }
  const opaque = body.biz_opaque_callback_data;
  if (opaque !== undefined && (typeof opaque !== 'string' || opaque.length > 512)) {
    return '(#100) Param biz_opaque_callback_data must be a string of at most 512 characters';
  }
  return undefined;
}

function invalidParameter(res: ServerResponse, message: string): void {
  graphError(res, 400, { code: 100, type: 'OAuthException', message });
}

function sendFailure(res: ServerResponse, failure: WhatsAppFailure): void {
  if (failure.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(failure.retryAfterSeconds));
  graphError(res, failure.status, {
    code: failure.code,
    type: failure.type ?? 'OAuthException',
    message: failure.message ?? KNOWN_ERRORS[failure.code] ?? `Error ${failure.code}`,
    ...(failure.subcode === undefined ? {} : { subcode: failure.subcode }),
  });
}

function graphError(
  res: ServerResponse,
  status: number,
  e: { code: number; type: string; message: string; subcode?: number },
): void {
  sendJson(res, status, {
    error: {
      message: e.message,
      type: e.type,
      code: e.code,
      ...(e.subcode === undefined ? {} : { error_subcode: e.subcode }),
      error_data: { messaging_product: 'whatsapp', details: e.message },
      fbtrace_id: `A${randomBytes(12).toString('base64').replace(/[+/=]/g, '')}`,
    },
  });
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}
