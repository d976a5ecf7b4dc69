/**
 * Twilio's Messages API on loopback, answering as Twilio documents, for the part Holdfast uses:
 * `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form-encoded, HTTP basic auth with the
 * account SID and auth token) answers 201 with the Message resource, status `queued` (`accepted`
 * through a Messaging Service), `date_sent: null`; `GET …/Messages.json` lists messages with the
 * `To`, `From`, `DateSent`, `DateSent<`, `DateSent>` filters (whole GMT days, as on Twilio; a
 * message not yet sent has no `date_sent` and never matches them) and Twilio's paging fields.
 * Errors are Twilio's JSON `{ code, message, more_info, status }`.
 *
 * Tests can make the next calls fail (`failNext`), reset the connection, and hold responses: a held
 * create is accepted and recorded but its answer waits until `release()` (or a delay), which
 * stands in for a timeout, or for a crash between the provider call and the recorded outcome.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeldAnswers, type HoldOptions } from './held-answers.ts';

export type TwilioMessageStatus =
  | 'accepted'
  | 'scheduled'
  | 'queued'
  | 'sending'
  | 'sent'
  | 'delivered'
  | 'undelivered'
  | 'failed';

/** A message the server holds, accepted through the API or seeded with `addMessage`. */
export interface TwilioMessageRecord {
  /** `SM` + 32 hex digits. */
  sid: string;
  to: string;
  /** Null until sent when only a Messaging Service was given, as on Twilio. */
  from: string | null;
  messagingServiceSid: string | null;
  body: string;
  mediaUrls: string[];
  statusCallback: string | undefined;
  status: TwilioMessageStatus;
  direction: 'outbound-api' | 'inbound';
  dateCreated: Date;
  dateSent: Date | null;
  /** The form fields as received (empty for seeded messages). */
  params: Record<string, string[]>;
  headers: IncomingHttpHeaders;
}

/** An error answer: `{ code, message, more_info, status }` with this HTTP status. */
export interface TwilioFailure {
  status: number;
  /** Twilio error code, e.g. 21211, 21610, 20429. */
  code: number;
  /** @defaultValue Twilio's text for well-known codes, else a generic one */
  message?: string;
  /** Sent as `Retry-After`. */
  retryAfterSeconds?: number;
  /** Which calls it applies to. @defaultValue `'create'` */
  on?: 'create' | 'list';
}

/** No answer at all: the connection is destroyed after the request was read. */
export interface TwilioReset {
  reset: true;
  /**
   * Accept and record the message before resetting (it went out; the caller cannot know).
   * @defaultValue false
   */
  accept?: boolean;
  /** @defaultValue `'create'` */
  on?: 'create' | 'list';
}

/** Which of the next accepted requests to hold, and for how long. */
export type TwilioHoldOptions = HoldOptions;

/** One API request as received, for asserting what the client asked for. */
export interface TwilioRequestRecord {
  method: string;
  path: string;
  query: URLSearchParams;
}

export interface TwilioServerOptions {
  /** @defaultValue a random `AC…` SID */
  accountSid?: string;
  /** @defaultValue a random 32-hex-digit token */
  authToken?: string;
}

export interface TestTwilioServer {
  /** The API base URL (instead of `https://api.twilio.com`). */
  url: string;
  accountSid: string;
  authToken: string;
  /** Every message the server holds, oldest first: accepted creates and seeded ones. */
  messages: TwilioMessageRecord[];
  /** Every authenticated API request, in order. */
  requests: TwilioRequestRecord[];
  /** Answer the next `times` matching calls with this error, or reset their connection. */
  failNext(times: number, failure: TwilioFailure | TwilioReset): void;
  /** The recipient replied STOP: every send to it answers 400 with code 21610, as Twilio does. */
  unsubscribe(to: string): void;
  /** Accept and record the next creates, but withhold their answers. */
  hold(options?: TwilioHoldOptions): void;
  /** Send every withheld answer now; returns how many there were. */
  release(): number;
  /** Resolves once at least `count` answers are being withheld. */
  whenHeld(count?: number): Promise<void>;
  /**
   * Twilio handed the message to the carrier: status `sent`, `date_sent` set, and a message sent
   * through a Messaging Service gets a sender (`+15005550006`) as if picked from its pool.
   */
  markSent(sid: string, at?: Date): void;
  /** Put a message into the account's history (e.g. an older one to the same recipient). */
  addMessage(message: Partial<TwilioMessageRecord> & { to: string; body: string }): TwilioMessageRecord;
  close(): Promise<void>;
}

const KNOWN_ERRORS: Record<number, string> = {
  20003: 'Authenticate',
  20404: 'The requested resource was not found',
  20429: 'Too Many Requests',
  20500: 'An internal server error has occurred',
  21211: "Invalid 'To' Phone Number",
  21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
  21602: 'Message body is required.',
  21603: "A 'From' phone number is required.",
  21604: "A 'To' phone number is required.",
  21606:
    "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination.",
  21609: 'Invalid StatusCallback url',
  21610: 'Attempt to send to unsubscribed recipient',
  21611: "This 'From' number has exceeded the maximum number of queued messages",
  21614: "'To' number is not a valid mobile number",
  21617: 'The concatenated message body exceeds the 1600 character limit.',
  21623: 'Number of media files exceeds allowed limit',
  21659: 'Source number is not a Twilio phone number or Messaging Service',
};

const API_VERSION = '2010-04-01';
const MESSAGES_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/;

export async function startTwilioServer(options: TwilioServerOptions = {}): Promise<TestTwilioServer> {
  const accountSid = options.accountSid ?? `AC${randomBytes(16).toString('hex')}`;
  const authToken = options.authToken ?? randomBytes(16).toString('hex');
  const messages: TwilioMessageRecord[] = [];
  const requests: TwilioRequestRecord[] = [];
  const failures: (TwilioFailure | TwilioReset)[] = [];
  const unsubscribed = new Set<string>();
  const held = new HeldAnswers();

  const takeFailure = (on: 'create' | 'list') => {
    const index = failures.findIndex((f) => (f.on ?? 'create') === on);
    return index === -1 ? undefined : failures.splice(index, 1)[0];
  };

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://twilio.invalid');
    const match = MESSAGES_PATH.exec(url.pathname);
    if (!match || (req.method !== 'POST' && req.method !== 'GET')) {
      return sendError(res, 404, 20404, `The requested resource ${url.pathname} was not found`);
    }
    if (!authorized(req.headers.authorization, accountSid, authToken)) {
      res.setHeader('WWW-Authenticate', 'Basic realm="Twilio API"');
      return sendError(res, 401, 20003, KNOWN_ERRORS[20003]!);
    }
    if (match[1] !== accountSid) {
      return sendError(res, 404, 20404, `The requested resource ${url.pathname} was not found`);
    }
    requests.push({ method: req.method, path: url.pathname, query: url.searchParams });

    if (req.method === 'GET') {
      const failure = takeFailure('list');
      if (failure && 'reset' in failure) return req.socket.destroy();
      if (failure) return sendFailure(res, failure);
      return listMessages(res, url, accountSid, messages);
    }

    const form = parseForm(Buffer.concat(chunks).toString('utf8'));
    const first = (name: string) => form[name]?.[0];
    const to = first('To');
    const from = first('From');
    const service = first('MessagingServiceSid');
    const body = first('Body') ?? '';
    const mediaUrls = form.MediaUrl ?? [];
    const statusCallback = first('StatusCallback');
    if (!to) return sendError(res, 400, 21604, KNOWN_ERRORS[21604]!);
    if (!from && !service) return sendError(res, 400, 21603, KNOWN_ERRORS[21603]!);
    if (service && !/^MG[0-9a-fA-F]{32}$/.test(service)) {
      return sendError(res, 400, 21659, KNOWN_ERRORS[21659]!);
    }
    if (!body && mediaUrls.length === 0) return sendError(res, 400, 21602, KNOWN_ERRORS[21602]!);
    if (!/^\+[1-9]\d{7,14}$/.test(to)) {
      return sendError(res, 400, 21211, `The 'To' number ${to} is not a valid phone number.`);
    }
    if (body.length > 1600) return sendError(res, 400, 21617, KNOWN_ERRORS[21617]!);
    if (mediaUrls.length > 10) return sendError(res, 400, 21623, KNOWN_ERRORS[21623]!);
    if (statusCallback !== undefined && !isHttpUrl(statusCallback)) {
      return sendError(res, 400, 21609, KNOWN_ERRORS[21609]!);
    }

    if (unsubscribed.has(to)) return sendError(res, 400, 21610, KNOWN_ERRORS[21610]!);
    const failure = takeFailure('create');
    if (failure && !('reset' in failure)) return sendFailure(res, failure);
    if (failure && !failure.accept) return req.socket.destroy();
    const now = new Date();
    const record: TwilioMessageRecord = {
      sid: `SM${randomBytes(16).toString('hex')}`,
      to,
      from: from ?? null,
      messagingServiceSid: service ?? null,
      body,
      mediaUrls,
      statusCallback,
      status: from ? 'queued' : 'accepted',
      direction: 'outbound-api',
      dateCreated: now,
      dateSent: null,
      params: form,
      headers: req.headers,
    };
    messages.push(record);
    if (failure) return req.socket.destroy();

    const answer = () => sendJson(res, 201, messageResource(record, accountSid));
    held.answerOrHold(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    accountSid,
    authToken,
    messages,
    requests,
    unsubscribe(to) {
      unsubscribed.add(to);
    },
    failNext(times, failure) {
      for (let i = 0; i < times; i++) failures.push(failure);
    },
    hold: (holdOptions) => held.hold(holdOptions),
    release: () => held.release(),
    whenHeld: (count) => held.whenHeld(count),
    markSent(sid, at = new Date()) {
      const record = messages.find((m) => m.sid === sid);
      if (!record) throw new Error(`no message ${sid}`);
      record.status = 'sent';
      record.dateSent = at;
      record.from ??= '+15005550006';
    },
    addMessage(message) {
      const record: TwilioMessageRecord = {
        sid: `SM${randomBytes(16).toString('hex')}`,
        from: null,
        messagingServiceSid: null,
        mediaUrls: [],
        statusCallback: undefined,
        status: 'delivered',
        direction: 'outbound-api',
        dateCreated: new Date(),
        dateSent: null,
        params: {},
        headers: {},
        ...message,
      };
      messages.push(record);
      return record;
    },
    close: () =>
      new Promise<void>((resolve) => {
        held.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function authorized(header: string | undefined, accountSid: string, authToken: string): boolean {
  const match = /^Basic (.+)$/.exec(header ?? '');
  if (!match) return false;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  return decoded === `${accountSid}:${authToken}`;
}

function parseForm(text: string): Record<string, string[]> {
  const form: Record<string, string[]> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    form[key] ??= [];
    form[key].push(value);
  }
  return form;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && !url.hostname.includes('_');
  } catch {
    return false;
  }
}

/** Twilio's timestamps: RFC 2822 in GMT, e.g. `Thu, 24 Aug 2023 05:01:45 +0000`. */
function rfc2822(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

function segments(body: string): number {
  // GSM-7 text: 160 characters in one part, 153 per part when concatenated; UCS-2: 70 / 67.
  const gsm = /^[\x20-\x7e\n\r]*$/.test(body);
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  return body.length <= single ? 1 : Math.ceil(body.length / multi);
}

function messageResource(m: TwilioMessageRecord, accountSid: string): Record<string, unknown> {
  const uri = `/${API_VERSION}/Accounts/${accountSid}/Messages/${m.sid}`;
  return {
    account_sid: accountSid,
    api_version: API_VERSION,
    body: m.body,
    date_created: rfc2822(m.dateCreated),
    date_sent: m.dateSent ? rfc2822(m.dateSent) : null,
    date_updated: rfc2822(m.dateSent ?? m.dateCreated),
    direction: m.direction,
    error_code: null,
    error_message: null,
    from: m.from,
    messaging_service_sid: m.messagingServiceSid,
    num_media: String(m.mediaUrls.length),
    num_segments: String(segments(m.body)),
    price: null,
    price_unit: 'USD',
    sid: m.sid,
    status: m.status,
    subresource_uris: { media: `${uri}/Media.json` },
    to: m.to,
    uri: `${uri}.json`,
  };
}

/** `DateSent` compares whole GMT days; a full timestamp is cut to its date, as Twilio does. */
function dayOf(value: string): string | undefined {
  const match = /^(\d{4}-\d{2}-\d{2})/.exec(value);
  return match?.[1];
}

function listMessages(res: ServerResponse, url: URL, accountSid: string, all: TwilioMessageRecord[]): void {
  const q = url.searchParams;
  const pageSize = Number(q.get('PageSize') ?? 50);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
    sendError(res, 400, 20001, 'PageSize must be between 1 and 1000');
    return;
  }
  const filters: { name: string; test: (day: string, bound: string) => boolean }[] = [
    { name: 'DateSent', test: (day, bound) => day === bound },
    { name: 'DateSent>', test: (day, bound) => day >= bound },
    { name: 'DateSent<', test: (day, bound) => day <= bound },
  ];
  const bounds: { test: (day: string, bound: string) => boolean; bound: string }[] = [];
  for (const filter of filters) {
    const value = q.get(filter.name);
    if (value === null) continue;
    const bound = dayOf(value);
    if (!bound) {
      sendError(res, 400, 20001, `Invalid date value for ${filter.name}`);
      return;
    }
    bounds.push({ test: filter.test, bound });
  }
  const to = q.get('To');
  const from = q.get('From');
  const matching = all
    .map((m, index) => ({ m, index }))
    .filter(({ m }) => (to === null || m.to === to) && (from === null || m.from === from))
    .filter(({ m }) => {
      if (bounds.length === 0) return true;
      if (!m.dateSent) return false;
      const day = m.dateSent.toISOString().slice(0, 10);
      return bounds.every(({ test, bound }) => test(day, bound));
    })
    // Newest first by date_sent. Twilio does not document where unsent messages go; here first.
    .sort((a, b) => {
      const sa = a.m.dateSent?.getTime() ?? Number.POSITIVE_INFINITY;
      const sb = b.m.dateSent?.getTime() ?? Number.POSITIVE_INFINITY;
      if (sa !== sb) return sb - sa;
      return b.m.dateCreated.getTime() - a.m.dateCreated.getTime() || b.index - a.index;
    })
    .map(({ m }) => m);

  // PageToken is a cursor: `PA` + the SID of the last message on the previous page.
  const token = q.get('PageToken');
  const page = Number(q.get('Page') ?? 0);
  let start = Number.isInteger(page) && page > 0 ? page * pageSize : 0;
  if (token) {
    const after = matching.findIndex((m) => `PA${m.sid}` === token);
    if (after === -1) {
      sendError(res, 400, 20001, 'Invalid PageToken');
      return;
    }
    start = after + 1;
  }
  const slice = matching.slice(start, start + pageSize);
  const base = `/${API_VERSION}/Accounts/${accountSid}/Messages.json`;
  const keep = new URLSearchParams();
  for (const name of ['To', 'From', 'DateSent', 'DateSent>', 'DateSent<']) {
    const value = q.get(name);
    if (value !== null) keep.set(name, value);
  }
  const uriFor = (pageNumber: number, pageToken?: string) => {
    const params = new URLSearchParams(keep);
    params.set('PageSize', String(pageSize));
    params.set('Page', String(pageNumber));
    if (pageToken) params.set('PageToken', pageToken);
    return `${base}?${params}`;
  };
  const pageNumber = Math.floor(start / pageSize);
  const last = slice.at(-1);
  const hasMore = start + pageSize < matching.length;
  sendJson(res, 200, {
    end: start + Math.max(slice.length - 1, 0),
    first_page_uri: uriFor(0),
    messages: slice.map((m) => messageResource(m, accountSid)),
    next_page_uri: hasMore && last ? uriFor(pageNumber + 1, `PA${last.sid}`) : null,
    page: pageNumber,
    page_size: pageSize,
    previous_page_uri: pageNumber > 0 ? uriFor(pageNumber - 1) : null,
    start,
    uri: token ? uriFor(pageNumber, token) : uriFor(pageNumber),
  });
}

function sendFailure(res: ServerResponse, failure: TwilioFailure): void {
  if (failure.retryAfterSeconds !== undefined)
    res.setHeader('Retry-After', String(failure.retryAfterSeconds));
  sendError(
    res,
    failure.status,
    failure.code,
    failure.message ?? KNOWN_ERRORS[failure.code] ?? `Error ${failure.code}`,
  );
}

function sendError(res: ServerResponse, status: number, code: number, message: string): void {
  sendJson(res, status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });
}

function sendJson(res: ServerResponse, status: number, body: object): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}
