import type { EventEnvelope } from './events.ts';
import { sha256Hex } from './hashing.ts';

/** BullMQ key prefix for every Holdfast queue (keys look like `holdfast:archive:<jobId>`). */
export const QUEUE_PREFIX = 'holdfast';

/** Queue names. Jobs are keyed by event id, so adding the same event twice is a no-op. */
export const QUEUES = Object.freeze({
  archive: 'archive',
  sendEmail: 'send-email',
  sendSms: 'send-sms',
  sendWhatsApp: 'send-whatsapp',
  media: 'media',
});

/** The send queue of each outbound channel. */
export const SEND_QUEUES = Object.freeze({
  email: QUEUES.sendEmail,
  sms: QUEUES.sendSms,
  whatsapp: QUEUES.sendWhatsApp,
} as const);
export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

/**
 * Key namespace of a queue's dead letters (`holdfast:dlq:<queue>`): its jobs that failed for good.
 * BullMQ has no dead-letter queue; @holdfast/producer's dead-letters keeps one per queue here.
 */
export function deadLetterQueueOf(queue: QueueName): string {
  return `${QUEUE_PREFIX}:dlq:${queue}`;
}

/**
 * While this key exists, the project's outbound email is paused (reputation pause, or by hand):
 * the archiver sets it, `holdfast pause` clears it, the sender checks it before each send.
 */
export function emailPauseKey(project: string): string {
  return `${QUEUE_PREFIX}:pause:email:${project}`;
}

/**
 * Sends whose outcome stayed unknown and that the at-most-once policy did not resend: a sorted
 * set (score: epoch ms, member `<channel>/<event id>`) `holdfast status` counts, so a person
 * decides whether to send them again. Entries older than 30 days are pruned.
 */
export const UNCERTAIN_SENDS_KEY = `${QUEUE_PREFIX}:send-uncertain`;

/**
 * Left by `holdfast dlq discard` when it removes a job: a spool that still holds the event (its
 * producer was away) must treat the job as finished, not as lost and to be enqueued again.
 */
export function discardedKeyOf(queue: QueueName, jobId: string): string {
  return `${QUEUE_PREFIX}:discarded:${queue}:${jobId}`;
}

/** How long a discard tombstone is kept: longer than any spool waits to be drained. */
export const DISCARDED_TTL_SECONDS = 30 * 24 * 3600;

/**
 * Where a worker reports a finished job to the producer that is waiting for it: an ack stream
 * per event writer (`holdfast:acks:<writer id>`), so a writer reads its own completions rather
 * than every completion of every queue. A job carries the address in `ackTo`; the writer's
 * drainer still covers an ack that never came (a worker crash, a writer restarted since).
 */
export function ackStreamKeyOf(writerId: string): string {
  return `${QUEUE_PREFIX}:acks:${writerId}`;
}

/** The most entries an ack stream keeps (approximately): a writer this far behind drains instead. */
export const ACK_STREAM_MAX_LEN = 10_000;

/** An ack stream outlives its writer by this much, then Redis drops it. */
export const ACK_STREAM_TTL_SECONDS = 24 * 3600;

/** The ack address an event writer puts on the jobs it waits for (absent on jobs added otherwise). */
export interface AddressedJobData {
  /** The id of the event writer to tell when the job has finished; see `ackStreamKeyOf`. */
  ackTo?: string;
}

/** Payload of an `archive` job: one event to write under lock. */
export interface ArchiveJobData extends AddressedJobData {
  event: EventEnvelope;
}

/**
 * Events that only need archiving (records, provider reports, the sender's outcomes) travel in
 * batches: one `archive-batch` job per group of events a producer spooled together, so a busy
 * stream pays Redis and the queue once per batch, not once per event. A batch of one is a plain
 * `archive` job.
 */
export const ARCHIVE_BATCH_JOB = 'archive-batch';

/**
 * The job id of a batch of these events: `batch-<first event id>-<hash of every id>`. The same
 * events in the same order make the same job (adding it again is a no-op); any other grouping
 * makes another, so a job id never stands for events its job does not carry.
 */
export function archiveBatchJobId(eventIds: readonly string[]): string {
  return `batch-${eventIds[0]}-${sha256Hex(eventIds.join('\n')).slice(0, 16)}`;
}

/** Payload of an `archive-batch` job: events to write under lock, each as its own object(s). */
export interface ArchiveBatchJobData extends AddressedJobData {
  events: EventEnvelope[];
}

/** What the archiver returns for a batch. */
export interface ArchiveBatchJobResult {
  /** Events written by this run, and events found already archived by an earlier delivery. */
  created: number;
  existing: number;
  /**
   * Events that failed permanently: each was moved to a plain `archive` job of its own (job id
   * = event id), so it fails, is kept as a dead letter and is replayed alone. Their producers
   * acknowledge them when that job finishes, not with the batch.
   */
  split: string[];
}

/** What the archiver returns; a send job reads it from its archive child. */
export interface ArchiveJobResult {
  key: string;
  versionId: string;
  sha256: string;
  retainUntil: string;
  /** False when the object was already archived by an earlier delivery of the same job. */
  created: boolean;
  /** Every object version written for the event (a blob and its sidecar, or one JSON object). */
  objects?: { key: string; versionId: string; sha256: string }[];
}

/** Payload of a `send-*` job: the submitted message event. Its archive child must complete first. */
export interface SendJobData extends AddressedJobData {
  event: EventEnvelope;
}

/**
 * Payload of a `media` job: one attachment of an archived inbound message, to download before the
 * provider's URL expires and archive beside its message with the message's retention.
 */
export interface MediaJobData {
  /** The archived message event the media belongs to. */
  eventId: string;
  project: string;
  channel: 'sms' | 'whatsapp';
  provider: string;
  /** Archive key of the parent message event. */
  messageKey: string;
  retainUntil: string;
  /** The parent message's subject, so `media.captured` joins its timeline (absent on older jobs). */
  subject?: string;
  /** The parent message's retention category (absent on older jobs). */
  category?: string;
  media: { mediaId?: string; url?: string; contentType?: string; index: number };
}
