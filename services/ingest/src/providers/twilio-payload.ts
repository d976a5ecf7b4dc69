import type { ValidationIssue } from '@holdfast/core';
import { PayloadInvalidError } from './errors.ts';
import type { ProviderEvent, ProviderMedia } from './provider-event.ts';
import type { TwilioParams } from './twilio-signature.ts';

/** The `MessageStatus` values Twilio documents for status callbacks; others become `provider.unknown`. */
export const twilioMessageStatuses = [
  'queued',
  'sending',
  'sent',
  'delivered',
  'undelivered',
  'failed',
  'read',
  'received',
  'accepted',
  'scheduled',
  'canceled',
] as const;
export type TwilioMessageStatus = (typeof twilioMessageStatuses)[number];

/** Twilio accepts at most 10 media per MMS. */
const MAX_MEDIA = 10;
const SID = /^[A-Za-z0-9]{2,64}$/;

/** Reads single-valued parameters, collecting every problem so one error names them all. */
class ParamReader {
  readonly issues: ValidationIssue[] = [];
  readonly #params: TwilioParams;

  constructor(params: TwilioParams) {
    this.#params = params;
  }

  optional(name: string): string | undefined {
    const value = this.#params[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      this.issues.push({ path: name, message: 'must appear once' });
      return undefined;
    }
    return value;
  }

  required(name: string, pattern?: RegExp): string {
    const value = this.optional(name);
    if (value === undefined || value === '') {
      if (!this.issues.some((i) => i.path === name)) this.issues.push({ path: name, message: 'is required' });
      return '';
    }
    if (pattern && !pattern.test(value)) this.issues.push({ path: name, message: `must match ${pattern}` });
    return value;
  }

  check(what: string): void {
    if (this.issues.length > 0) throw new PayloadInvalidError(what, this.issues);
  }
}

/** Twilio's WhatsApp sender/recipient addresses are `whatsapp:+E164`; everything else is SMS/MMS. */
function channelOf(...addresses: (string | undefined)[]): 'sms' | 'whatsapp' {
  return addresses.some((a) => a?.startsWith('whatsapp:')) ? 'whatsapp' : 'sms';
}

function rawOf(params: TwilioParams): Record<string, string | readonly string[]> {
  const raw: Record<string, string | readonly string[]> = {};
  for (const [key, value] of Object.entries(params)) if (value !== undefined) raw[key] = value;
  return raw;
}

/**
 * An incoming SMS/MMS webhook (the number's "A message comes in" URL) as one `message.received`.
 * MMS media URLs are returned in `media` for the fetcher: they stay reachable only until the
 * message's media is deleted at Twilio.
 */
export function parseTwilioInbound(params: TwilioParams, receivedAt: Date): ProviderEvent[] {
  const read = new ParamReader(params);
  const messageSid = read.required('MessageSid', SID);
  const accountSid = read.required('AccountSid', SID);
  const from = read.required('From');
  const to = read.required('To');
  const body = read.optional('Body') ?? '';
  const smsStatus = read.optional('SmsStatus');
  if (smsStatus !== undefined && smsStatus !== 'received') {
    read.issues.push({
      path: 'SmsStatus',
      message: `must be "received" on an inbound message, got "${smsStatus}"`,
    });
  }
  const numMediaText = read.optional('NumMedia') ?? '0';
  const numMedia = /^\d{1,2}$/.test(numMediaText) ? Number(numMediaText) : Number.NaN;
  if (!(numMedia <= MAX_MEDIA)) {
    read.issues.push({ path: 'NumMedia', message: `must be an integer from 0 to ${MAX_MEDIA}` });
  }
  const media: ProviderMedia[] = [];
  for (let index = 0; index < (numMedia <= MAX_MEDIA ? numMedia : 0); index++) {
    const url = read.required(`MediaUrl${index}`);
    if (url && !url.startsWith('https://')) {
      read.issues.push({ path: `MediaUrl${index}`, message: 'must be an https URL' });
    }
    const contentType = read.optional(`MediaContentType${index}`);
    media.push(contentType ? { url, contentType, index } : { url, index });
  }
  read.check('Twilio inbound message');

  const numSegments = read.optional('NumSegments');
  const messagingServiceSid = read.optional('MessagingServiceSid');
  return [
    {
      provider: 'twilio',
      channel: channelOf(from, to),
      direction: 'inbound',
      type: 'message.received',
      // Twilio's inbound webhook carries no timestamp of its own.
      occurredAt: receivedAt,
      providerEventId: `${messageSid}:inbound`,
      providerMessageId: messageSid,
      data: {
        from,
        to,
        text: body,
        numMedia,
        ...(numSegments !== undefined &&
          /^\d{1,4}$/.test(numSegments) && { numSegments: Number(numSegments) }),
        accountSid,
        ...(messagingServiceSid !== undefined && { messagingServiceSid }),
        raw: rawOf(params),
      },
      media,
    },
  ];
}

/**
 * A message status callback as one `message.<MessageStatus>` (`provider.unknown` for statuses
 * Twilio adds later, archived as-is). Each status of a message is its own event; Twilio's
 * retries of one status share the providerEventId.
 */
export function parseTwilioStatus(params: TwilioParams, receivedAt: Date): ProviderEvent[] {
  const read = new ParamReader(params);
  const messageSid = read.required('MessageSid', SID);
  const status = read.required('MessageStatus', /^[a-z_-]{1,64}$/);
  const from = read.optional('From');
  const to = read.optional('To');
  const accountSid = read.optional('AccountSid');
  const messagingServiceSid = read.optional('MessagingServiceSid');
  const errorCode = read.optional('ErrorCode');
  const errorMessage = read.optional('ErrorMessage');
  const rawDlrDoneDate = read.optional('RawDlrDoneDate');
  read.check('Twilio status callback');

  const known = (twilioMessageStatuses as readonly string[]).includes(status);
  return [
    {
      provider: 'twilio',
      channel: channelOf(from, to),
      // "received" is the status of a message sent to us; every other status is about ours.
      direction: status === 'received' ? 'inbound' : 'outbound',
      type: known ? `message.${status}` : 'provider.unknown',
      // Status callbacks carry no event time (RawDlrDoneDate is the carrier's, minute precision,
      // and only on some statuses): the time we received the callback is the best we have.
      occurredAt: receivedAt,
      providerEventId: `${messageSid}:${status}`,
      providerMessageId: messageSid,
      data: {
        status,
        ...(from !== undefined && { from }),
        ...(to !== undefined && { to }),
        ...(accountSid !== undefined && { accountSid }),
        ...(messagingServiceSid !== undefined && { messagingServiceSid }),
        ...(errorCode && {
          error: { code: errorCode, ...(errorMessage && { message: errorMessage }) },
        }),
        ...(rawDlrDoneDate && { carrierDoneDate: rawDlrDoneDate }),
        raw: rawOf(params),
      },
      media: [],
    },
  ];
}
