import { z } from 'zod';
import { ValidationError } from './errors.ts';
import { newEventId } from './ids.ts';
import { keySegment } from './naming.ts';
import { zodIssues } from './zod-issues.ts';

export const SCHEMA_VERSION = 1;

export const channels = ['email', 'sms', 'whatsapp', 'record'] as const;
export type Channel = (typeof channels)[number];

/** `internal` is for records, which are neither sent nor received. */
export const directions = ['outbound', 'inbound', 'internal'] as const;
export type Direction = (typeof directions)[number];

const isoInstant = z.iso.datetime({ offset: true, precision: -1 }).or(z.iso.datetime());

/**
 * The envelope every event shares. `subject` groups events into a timeline: for message events
 * it is the id of the message's first event (the submission or the receipt); for records, the
 * business subject (customer, contract, account). `category` selects the retention rule.
 */
export const eventEnvelope = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  id: z.uuid({ version: 'v7' }),
  type: z.string().regex(/^[a-z]+(\.[a-z-]+)+$/, 'must look like "message.sent"'),
  occurredAt: isoInstant,
  recordedAt: isoInstant,
  project: keySegment,
  channel: z.enum(channels),
  direction: z.enum(directions),
  subject: z.string().min(1).max(256),
  category: keySegment,
  data: z.record(z.string(), z.unknown()),
});
export type EventEnvelope = z.infer<typeof eventEnvelope>;

const address = z.string().min(3).max(320);

/** An outbound email accepted for sending: the exact MIME that will be archived and sent. */
export const emailSubmittedData = z.object({
  /** RFC 5322 message as produced by the composer (7-bit safe text). */
  mime: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  messageId: z.string().min(1),
  envelope: z.object({ from: address, to: z.array(address).min(1) }),
  headers: z.object({
    from: z.string(),
    to: z.array(z.string()),
    cc: z.array(z.string()),
    bcc: z.array(z.string()),
    subject: z.string(),
  }),
  kind: keySegment,
  failMode: z.enum(['closed', 'open']),
  /** What a retry does when an earlier attempt's outcome is unknown. Absent in older events: at-least-once. */
  delivery: z.enum(['at-least-once', 'at-most-once']).optional(),
  metadata: z.record(z.string(), z.string()),
});
export type EmailSubmittedData = z.infer<typeof emailSubmittedData>;

/** E.164: `+` and 8 to 15 digits. */
export const e164 = z.string().regex(/^\+[1-9]\d{7,14}$/, 'must be an E.164 number like +14155550100');

/** An outbound SMS/MMS accepted for sending. */
export const smsSubmittedData = z.object({
  /** E.164 number or a Twilio Messaging Service SID (MG…). */
  from: z.union([e164, z.string().regex(/^MG[0-9a-fA-F]{32}$/, 'must be E.164 or a Messaging Service SID')]),
  to: e164,
  body: z.string().min(1).max(1600),
  /** MMS: public https URLs the provider fetches. */
  mediaUrls: z.array(z.url({ protocol: /^https$/ })).max(10),
  kind: keySegment,
  failMode: z.enum(['closed', 'open']),
  delivery: z.enum(['at-least-once', 'at-most-once']),
  metadata: z.record(z.string(), z.string()),
});
export type SmsSubmittedData = z.infer<typeof smsSubmittedData>;

const whatsappMediaKinds = ['image', 'document', 'audio', 'video', 'sticker'] as const;

/** The message object of the WhatsApp Cloud API, restricted to what Holdfast sends. */
export const whatsappContent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('text'),
    text: z.string().min(1).max(4096),
    previewUrl: z.boolean().optional(),
  }),
  z.object({
    type: z.literal('template'),
    template: z.object({
      name: z.string().regex(/^[a-z0-9_]{1,512}$/, 'must be a template name (lowercase, digits, _)'),
      language: z.string().regex(/^[a-z]{2,3}(_[A-Z]{2})?$/, 'must be a language code like en_US'),
      components: z.array(z.record(z.string(), z.unknown())).max(20).default([]),
    }),
  }),
  z.object({
    type: z.enum(whatsappMediaKinds),
    media: z
      .object({
        link: z.url({ protocol: /^https$/ }).optional(),
        id: z.string().regex(/^\d+$/).optional(),
        caption: z.string().max(1024).optional(),
        filename: z.string().max(255).optional(),
      })
      .refine((m) => (m.link === undefined) !== (m.id === undefined), 'needs exactly one of link or id'),
  }),
]);
export type WhatsAppContent = z.infer<typeof whatsappContent>;

/** An outbound WhatsApp message accepted for sending. */
export const whatsappSubmittedData = z.object({
  to: e164,
  content: whatsappContent,
  kind: keySegment,
  failMode: z.enum(['closed', 'open']),
  delivery: z.enum(['at-least-once', 'at-most-once']),
  metadata: z.record(z.string(), z.string()),
});
export type WhatsAppSubmittedData = z.infer<typeof whatsappSubmittedData>;

/** The submitted data of any outbound channel, by channel. */
export const submittedDataSchemas = {
  email: emailSubmittedData,
  sms: smsSubmittedData,
  whatsapp: whatsappSubmittedData,
} as const;

/**
 * The message left for the recipient. Recorded by the sender (transport, attempt) or reported by
 * the provider (provider, providerEventId); `providerMessageId` links the two.
 */
export const messageSentData = z.looseObject({
  providerMessageId: z.string().min(1),
  transport: z.string().optional(),
  attempt: z.number().int().positive().optional(),
});
export type MessageSentData = z.infer<typeof messageSentData>;

/** Recorded before every provider call, so a crash after it leaves a trace of the attempt. */
export const sendAttemptedData = z.looseObject({
  transport: z.string().min(1),
  attempt: z.number().int().positive(),
});

/**
 * A retry found an earlier attempt whose outcome it could not learn (the provider offers no
 * lookup): the message may or may not have gone out. `resolution` says what was done about it.
 */
export const sendUncertainData = z.looseObject({
  transport: z.string().min(1),
  attempt: z.number().int().positive(),
  policy: z.enum(['at-least-once', 'at-most-once']),
  resolution: z.enum(['resent', 'not-resent']),
});

/** The provider refused the message for good (invalid number, unsubscribed recipient). */
export const sendFailedData = z.looseObject({
  transport: z.string().min(1),
  attempt: z.number().int().positive(),
  reason: z.string(),
});

/** Inbound media downloaded and archived beside its message. */
export const mediaCapturedData = z.looseObject({
  messageEventId: z.string().min(1),
  messageKey: z.string().min(1),
  key: z.string().min(1),
  /** The version of `key`, and of its sidecar, that the fetcher wrote (absent on older events). */
  versionId: z.string().min(1).optional(),
  sidecarKey: z.string().min(1).optional(),
  sidecarVersionId: z.string().min(1).optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  contentType: z.string(),
});

export type MediaCapturedData = z.infer<typeof mediaCapturedData>;

export const eventDataSchemas = {
  'message.sent': messageSentData,
  'message.send-attempted': sendAttemptedData,
  'message.send-uncertain': sendUncertainData,
  'message.send-failed': sendFailedData,
  'media.captured': mediaCapturedData,
} as const;

/**
 * Validate an event that crosses a process boundary (a queue payload, a spool record).
 * Known types get their data checked too; unknown types are accepted on the envelope alone so
 * that nothing a provider or newer producer sent is dropped.
 */
export function parseEvent(value: unknown): EventEnvelope {
  const envelope = eventEnvelope.safeParse(value);
  if (!envelope.success) throw new ValidationError('event', zodIssues(envelope.error));
  const { type, channel, direction } = envelope.data;
  const schema =
    type === 'message.submitted' && direction === 'outbound' && channel !== 'record'
      ? submittedDataSchemas[channel]
      : (eventDataSchemas as Record<string, z.ZodType | undefined>)[type];
  if (schema) {
    const data = schema.safeParse(envelope.data.data);
    if (!data.success) {
      throw new ValidationError(`${envelope.data.type} event`, zodIssues(data.error, 'data'));
    }
  }
  return envelope.data;
}

export interface NewEvent {
  /** @defaultValue a new UUIDv7 */
  id?: string;
  type: string;
  occurredAt: Date;
  project: string;
  channel: Channel;
  direction: Direction;
  subject: string;
  category: string;
  data: object;
}

/** Build and validate an event; `recordedAt` is now. */
export function newEvent(e: NewEvent): EventEnvelope {
  return parseEvent({
    schemaVersion: SCHEMA_VERSION,
    id: e.id ?? newEventId(),
    type: e.type,
    occurredAt: e.occurredAt.toISOString(),
    recordedAt: new Date().toISOString(),
    project: e.project,
    channel: e.channel,
    direction: e.direction,
    subject: e.subject,
    category: e.category,
    data: e.data,
  });
}

/**
 * A binary document carried by a record (a signed contract PDF, a statement): archived as its
 * own blob with a `.meta.json` sidecar, under the record key schema.
 */
export const recordDocument = z.object({
  contentType: z.string().regex(/^[\w.+-]+\/[\w.+-]+$/),
  filename: z.string().max(255).optional(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  base64: z.string(),
});
export type RecordDocument = z.infer<typeof recordDocument>;
