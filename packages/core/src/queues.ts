import type { EventEnvelope } from './events.ts';

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

/** Payload of an `archive` job: one event to write under lock. */
export interface ArchiveJobData {
  event: EventEnvelope;
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
export interface SendJobData {
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
  media: { mediaId?: string; url?: string; contentType?: string; index: number };
}
