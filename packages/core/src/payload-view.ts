/**
 * What an operator surface (`holdfast dlq show`, the queue board) shows of a job's payload: what
 * it is, never what it says. An event's `data` holds message bodies, addresses and record
 * contents, and a dashboard or a terminal is not where those may be read; the archive is, under
 * its own access rules. The event's envelope, a batch's event ids, or a media job's references,
 * and the payload's size, are enough to tell what a job is and to find it in the archive.
 */
export interface PayloadView {
  /** Size of the payload as JSON, in bytes. */
  bytes: number;
  /** The envelope of the event a job carries, without its data. */
  event?: Record<string, unknown>;
  /** The ids of an archive batch's events. */
  events?: string[];
  /** A media job's references (which message, which attachment), without the provider's URL. */
  media?: Record<string, unknown>;
}

const ENVELOPE_FIELDS = [
  'id',
  'type',
  'channel',
  'direction',
  'project',
  'subject',
  'category',
  'occurredAt',
] as const;
const MEDIA_FIELDS = ['eventId', 'project', 'channel', 'provider', 'messageKey', 'retainUntil'] as const;

function pick(from: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(fields.filter((k) => from[k] !== undefined).map((k) => [k, from[k]]));
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Describes any job payload; a shape it does not know shows as its size alone. */
export function payloadView(data: unknown): PayloadView {
  const view: PayloadView = { bytes: Buffer.byteLength(JSON.stringify(data ?? null)) };
  if (!isObject(data)) return view;
  if (isObject(data.event)) view.event = pick(data.event, ENVELOPE_FIELDS);
  if (Array.isArray(data.events)) {
    view.events = data.events
      .map((e) => (isObject(e) ? e.id : undefined))
      .filter((id): id is string => typeof id === 'string');
  }
  if (typeof data.messageKey === 'string' && isObject(data.media)) {
    view.media = {
      ...pick(data, MEDIA_FIELDS),
      attachment: pick(data.media, ['index', 'mediaId', 'contentType']),
    };
  }
  return view;
}
