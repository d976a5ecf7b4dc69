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
  metadata: z.record(z.string(), z.string()),
});
export type EmailSubmittedData = z.infer<typeof emailSubmittedData>;

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

export const eventDataSchemas = {
  'message.submitted': emailSubmittedData,
  'message.sent': messageSentData,
} as const;

export type EventType = keyof typeof eventDataSchemas;

export type HoldfastEvent<T extends EventType = EventType> = Omit<EventEnvelope, 'type' | 'data'> & {
  type: T;
  data: z.infer<(typeof eventDataSchemas)[T]>;
};

/**
 * Validate an event that crosses a process boundary (a queue payload, a spool record).
 * Known types get their data checked too; unknown types are accepted on the envelope alone so
 * that nothing a provider or newer producer sent is dropped.
 */
export function parseEvent(value: unknown): EventEnvelope {
  const envelope = eventEnvelope.safeParse(value);
  if (!envelope.success) throw new ValidationError('event', zodIssues(envelope.error));
  const schema = (eventDataSchemas as Record<string, z.ZodType | undefined>)[envelope.data.type];
  if (schema) {
    const data = schema.safeParse(envelope.data.data);
    if (!data.success) {
      throw new ValidationError(`${envelope.data.type} event`, zodIssues(data.error, 'data'));
    }
  }
  return envelope.data;
}

export function isEventOfType<T extends EventType>(
  event: EventEnvelope,
  type: T,
): event is HoldfastEvent<T> & EventEnvelope {
  return event.type === type;
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
