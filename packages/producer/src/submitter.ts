import {
  type ChannelConfig,
  canonicalJson,
  type EmailSubmittedData,
  type EventEnvelope,
  extensionFor,
  keySegment,
  messageKey,
  newEvent,
  newEventId,
  type OutboundChannel,
  type RecordDocument,
  type RetentionPolicy,
  recordKey,
  sha256Hex,
  ValidationError,
  zodIssues,
} from '@holdfast/core';
import { z } from 'zod';
import { composeEmail, type EmailInput, validateEmail } from './email.ts';
import { MAX_DOCUMENT_BYTES, MAX_EVENT_BYTES, mebibytes } from './event-size.ts';
import type { EventWriter } from './event-writer.ts';
import { type SmsInput, validateSms, validateWhatsApp, type WhatsAppInput } from './messages.ts';

/** What a successful call returns: the event id and where the archive will hold it. */
export interface Accepted {
  id: string;
  archiveKey: string;
}

const recordInput = z.strictObject({
  category: keySegment,
  /** What happened, e.g. `transaction.posted`, `audit.admin-login`, `relationship.ended`. */
  type: z.string().regex(/^[a-z]+(\.[a-z-]+)+$/, 'must look like "transaction.posted"'),
  /** The business subject (account, customer, contract) the record is about. */
  subject: z.string().min(1).max(256),
  /** The record's own date; retention counts from it. @defaultValue now */
  occurredAt: z.union([z.date(), z.iso.datetime({ offset: true })]).optional(),
  data: z.record(z.string(), z.unknown()).default({}),
  /** A binary document (a signed contract PDF): archived as its own blob with a sidecar. */
  document: z
    .strictObject({
      content: z
        .instanceof(Uint8Array)
        .refine(
          (b) => b.byteLength <= MAX_DOCUMENT_BYTES,
          `is larger than ${MAX_DOCUMENT_BYTES} bytes (${mebibytes(MAX_DOCUMENT_BYTES)}), the most that fits ` +
            `base64-encoded in one event (${mebibytes(MAX_EVENT_BYTES)})`,
        ),
      contentType: z.string().regex(/^[\w.+-]+\/[\w.+-]+$/, 'must be a MIME type like application/pdf'),
      filename: z.string().min(1).max(255).optional(),
    })
    .optional(),
});
export type RecordInput = z.input<typeof recordInput>;

/**
 * Validation, composition and submission for any project: the SDK binds one project, the ingest
 * API binds the project of the caller's API key. Bad input throws ValidationError before
 * anything is written.
 */
export interface Submitter {
  sendEmail(project: string, input: EmailInput): Promise<Accepted>;
  sendSms(project: string, input: SmsInput): Promise<Accepted>;
  sendWhatsApp(project: string, input: WhatsAppInput): Promise<Accepted>;
  record(project: string, input: RecordInput): Promise<Accepted>;
}

export function createSubmitter(
  writer: EventWriter,
  policy: RetentionPolicy,
  channels: Readonly<Record<OutboundChannel, Readonly<ChannelConfig>>>,
): Submitter {
  const requireCategory = (category: string, path: string): void => {
    if (!policy.has(category)) {
      throw new ValidationError('input', [
        {
          path,
          message: `selects retention category "${category}", which the policy (${policy.source}) does not define`,
        },
      ]);
    }
  };

  /**
   * A record is locked until its category's retention, counted from its own date, ends. One whose
   * retention has ended already could never be archived (the WORM store refuses a retain-until in
   * the past) and would sit in the spool for good: it is refused before anything is written.
   */
  const requireRetentionAhead = (category: string, occurredAt: Date): void => {
    const until = policy.retainUntil(category, occurredAt);
    if (until.getTime() > Date.now()) return;
    const retention = `category "${category}" is retained for ${policy.duration(category).text} from the record's own date`;
    throw new ValidationError('record', [
      {
        path: 'occurredAt',
        message: Number.isNaN(until.getTime())
          ? `${occurredAt.toISOString()} is too far ahead: ${retention}, which ends past the last date there is`
          : `${occurredAt.toISOString()} is too long ago to archive: ${retention}, and that retention ended on ${until.toISOString()}`,
      },
    ]);
  };

  /** SMS and WhatsApp messages are archived as their event's canonical JSON. */
  const submitMessage = async (
    project: string,
    channel: 'sms' | 'whatsapp',
    data: { kind: string },
  ): Promise<Accepted> => {
    const id = newEventId();
    const event = newEvent({
      id,
      type: 'message.submitted',
      occurredAt: new Date(),
      project,
      channel,
      direction: 'outbound',
      subject: id,
      category: `${channel}-${data.kind}`,
      data,
    });
    await writer.submit(event, 'send');
    return {
      id,
      archiveKey: messageKey({
        channel,
        project,
        direction: 'outbound',
        occurredAt: new Date(event.occurredAt),
        sha256: sha256Hex(canonicalJson(event)),
        ext: 'json',
      }),
    };
  };

  return Object.freeze({
    async sendEmail(project: string, input: EmailInput): Promise<Accepted> {
      const email = validateEmail(input);
      const category = `email-${email.kind}`;
      requireCategory(category, 'kind');
      const id = newEventId();
      const now = new Date();
      const composed = await composeEmail(email, id, now);
      const data: EmailSubmittedData = {
        ...composed,
        headers: {
          from: email.from[0]!,
          to: email.to,
          cc: email.cc ?? [],
          bcc: email.bcc ?? [],
          subject: email.subject,
        },
        kind: email.kind,
        failMode: channels.email.failMode,
        delivery: channels.email.delivery,
        metadata: email.metadata,
      };
      const event = newEvent({
        id,
        type: 'message.submitted',
        occurredAt: now,
        project,
        channel: 'email',
        direction: 'outbound',
        subject: id,
        category,
        data,
      });
      await writer.submit(event, 'send');
      return {
        id,
        archiveKey: messageKey({
          channel: 'email',
          project,
          direction: 'outbound',
          occurredAt: now,
          sha256: composed.sha256,
          ext: 'eml',
        }),
      };
    },

    async sendSms(project: string, input: SmsInput): Promise<Accepted> {
      const data = validateSms(input, channels.sms);
      requireCategory(`sms-${data.kind}`, 'kind');
      return submitMessage(project, 'sms', data);
    },

    async sendWhatsApp(project: string, input: WhatsAppInput): Promise<Accepted> {
      const data = validateWhatsApp(input, channels.whatsapp);
      requireCategory(`whatsapp-${data.kind}`, 'kind');
      return submitMessage(project, 'whatsapp', data);
    },

    async record(project: string, input: RecordInput): Promise<Accepted> {
      const parsed = recordInput.safeParse(input);
      if (!parsed.success) throw new ValidationError('record', zodIssues(parsed.error));
      const r = parsed.data;
      requireCategory(r.category, 'category');
      const occurredAt = r.occurredAt === undefined ? new Date() : new Date(r.occurredAt);
      requireRetentionAhead(r.category, occurredAt);
      // Normalise to plain JSON now, so the archived bytes are exactly what was hashed here;
      // values JSON cannot carry exactly (NaN, BigInt, cycles) are refused before anything is written.
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(canonicalJson(r.data));
      } catch (error) {
        throw new ValidationError('record', [{ path: 'data', message: (error as Error).message }]);
      }
      let document: RecordDocument | undefined;
      if (r.document) {
        const bytes = Buffer.from(r.document.content);
        document = {
          contentType: r.document.contentType,
          ...(r.document.filename ? { filename: r.document.filename } : {}),
          sha256: sha256Hex(bytes),
          size: bytes.byteLength,
          base64: bytes.toString('base64'),
        };
      }
      const event: EventEnvelope = newEvent({
        type: r.type,
        occurredAt,
        project,
        channel: 'record',
        direction: 'internal',
        subject: r.subject,
        category: r.category,
        data: document ? { ...data, document } : data,
      });
      await writer.submit(event, 'archive');
      const archiveKey = document
        ? recordKey({
            category: r.category,
            occurredAt,
            sha256: document.sha256,
            ext: extensionFor(document.contentType),
          })
        : recordKey({
            category: r.category,
            occurredAt,
            sha256: sha256Hex(canonicalJson(event)),
            ext: 'json',
          });
      return { id: event.id, archiveKey };
    },
  });
}
