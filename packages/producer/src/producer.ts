import { join } from 'node:path';
import {
  canonicalJson,
  createLogger,
  type EmailSubmittedData,
  keySegment,
  type Logger,
  loadConfig,
  messageKey,
  newEvent,
  newEventId,
  RetentionPolicy,
  recordKey,
  sha256Hex,
  ValidationError,
  zodIssues,
} from '@holdfast/core';
import { z } from 'zod';
import { composeEmail, type EmailInput, validateEmail } from './email.ts';
import { EventWriter } from './event-writer.ts';

export interface ProducerOptions {
  /** Project the messages belong to; the second segment of every archive key. */
  project: string;
  /** @defaultValue `REDIS_URL` */
  redisUrl?: string;
  /** This process's spool. One process per directory. @defaultValue `$HOLDFAST_SPOOL_DIR/producer` */
  spoolDir?: string;
  /** Used to refuse unknown categories before anything is written. @defaultValue `HOLDFAST_RETENTION_POLICY` or the built-in defaults */
  retentionPolicy?: RetentionPolicy;
  logger?: Logger;
  /** See EventWriterOptions. @defaultValue 15000 */
  redeliverAfterMs?: number;
  /** See EventWriterOptions. @defaultValue 5000 */
  drainIntervalMs?: number;
}

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
  data: z.record(z.string(), z.unknown()),
});
export type RecordInput = z.input<typeof recordInput>;

export interface Producer {
  /** Compose, spool (durably) and queue an email; it is archived under lock before it is sent. */
  sendEmail(input: EmailInput): Promise<Accepted>;
  /** Spool and queue a record (transaction, audit entry, …) for archiving under its category's retention. */
  record(input: RecordInput): Promise<Accepted>;
  /** Events accepted but not yet fully handled downstream (still in the spool), and spool counters. */
  stats(): ReturnType<EventWriter['stats']>;
  close(): Promise<void>;
}

export async function createProducer(options: ProducerOptions): Promise<Producer> {
  const project = keySegment.safeParse(options.project);
  if (!project.success) throw new ValidationError('producer options', zodIssues(project.error, 'project'));
  const config = loadConfig();
  const redisUrl = options.redisUrl ?? config.redisUrl;
  if (!redisUrl)
    throw new ValidationError('producer options', [
      { path: 'redisUrl', message: 'required (or set REDIS_URL)' },
    ]);
  const policy =
    options.retentionPolicy ??
    (config.retentionPolicyPath
      ? await RetentionPolicy.load(config.retentionPolicyPath)
      : RetentionPolicy.defaults());
  const logger = options.logger ?? createLogger({ name: 'holdfast-producer', level: config.logLevel });
  const writer = await EventWriter.open({
    spoolDir: options.spoolDir ?? join(config.spoolDir, 'producer'),
    redisUrl,
    logger,
    redeliverAfterMs: options.redeliverAfterMs,
    drainIntervalMs: options.drainIntervalMs,
  });

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

  return Object.freeze({
    async sendEmail(input: EmailInput): Promise<Accepted> {
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
        failMode: 'closed',
        metadata: email.metadata,
      };
      const event = newEvent({
        id,
        type: 'message.submitted',
        occurredAt: now,
        project: project.data,
        channel: 'email',
        direction: 'outbound',
        subject: id,
        category,
        data,
      });
      await writer.submit(event, 'send-email');
      const archiveKey = messageKey({
        channel: 'email',
        project: project.data,
        direction: 'outbound',
        occurredAt: now,
        sha256: composed.sha256,
        ext: 'eml',
      });
      return { id, archiveKey };
    },

    async record(input: RecordInput): Promise<Accepted> {
      const parsed = recordInput.safeParse(input);
      if (!parsed.success) throw new ValidationError('record', zodIssues(parsed.error));
      const r = parsed.data;
      requireCategory(r.category, 'category');
      const occurredAt = r.occurredAt === undefined ? new Date() : new Date(r.occurredAt);
      // Normalise to plain JSON now, so the archived bytes are exactly what was hashed here;
      // values JSON cannot carry exactly (NaN, BigInt, cycles) are refused before anything is written.
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(canonicalJson(r.data));
      } catch (error) {
        throw new ValidationError('record', [{ path: 'data', message: (error as Error).message }]);
      }
      const event = newEvent({
        type: r.type,
        occurredAt,
        project: project.data,
        channel: 'record',
        direction: 'internal',
        subject: r.subject,
        category: r.category,
        data,
      });
      await writer.submit(event, 'archive');
      const sha256 = sha256Hex(canonicalJson(event));
      return {
        id: event.id,
        archiveKey: recordKey({ category: r.category, occurredAt, sha256, ext: 'json' }),
      };
    },

    stats: () => writer.stats(),
    close: () => writer.close(),
  });
}
