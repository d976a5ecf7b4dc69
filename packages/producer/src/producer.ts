import { join } from 'node:path';
import {
  createLogger,
  type HoldfastConfig,
  keySegment,
  type Logger,
  loadConfig,
  RetentionPolicy,
  ValidationError,
  zodIssues,
} from '@holdfast/core';
import type { EmailInput } from './email.ts';
import { EventWriter } from './event-writer.ts';
import type { SmsInput, WhatsAppInput } from './messages.ts';
import { type Accepted, createSubmitter, type RecordInput } from './submitter.ts';
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
  /** See EventWriterOptions. @defaultValue `HOLDFAST_SPOOL_MAX_BACKLOG` or 250000 */
  maxBacklog?: number;
  /** See EventWriterOptions: a Redis command left unanswered this long is left to the drainer. @defaultValue 5000 */
  enqueueTimeoutMs?: number;
  /** See EventWriterOptions: the longest `close()` waits on Redis. @defaultValue 10000 */
  closeTimeoutMs?: number;
  /** Fail mode and delivery policy per channel. @defaultValue from `HOLDFAST_<CHANNEL>_FAIL_MODE` / `_DELIVERY` */
  channels?: HoldfastConfig['channels'];
}

export interface Producer {
  /** Compose, spool (durably) and queue an email; it is archived under lock before it is sent. */
  sendEmail(input: EmailInput): Promise<Accepted>;
  /**
   * Spool and queue an SMS/MMS. Fail-open by default (`HOLDFAST_SMS_FAIL_MODE`): it goes out at
   * once, and is archived as soon as the store can take it.
   */
  sendSms(input: SmsInput): Promise<Accepted>;
  /** Spool and queue a WhatsApp text, template or media message (fail-closed by default). */
  sendWhatsApp(input: WhatsAppInput): Promise<Accepted>;
  /** Spool and queue a record (transaction, audit entry, …) for archiving under its category's retention. */
  record(input: RecordInput): Promise<Accepted>;
  /** Events accepted but not yet fully handled downstream (still in the spool), and spool counters. */
  stats(): ReturnType<EventWriter['stats']>;
  /**
   * Refuses new calls, waits for calls already under way to be durable and enqueued (for at most
   * `closeTimeoutMs`), then releases Redis and the spool. What is still unacknowledged stays in the
   * spool for the next start with the same spool directory. Every call resolves once that is done.
   */
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
  const policy = options.retentionPolicy ?? (await RetentionPolicy.fromConfig(config));
  const logger = options.logger ?? createLogger({ name: 'holdfast-producer', level: config.logLevel });
  const writer = await EventWriter.open({
    spoolDir: options.spoolDir ?? join(config.spoolDir, 'producer'),
    redisUrl,
    logger,
    redeliverAfterMs: options.redeliverAfterMs,
    drainIntervalMs: options.drainIntervalMs,
    maxBacklog: options.maxBacklog ?? config.spoolMaxBacklog,
    enqueueTimeoutMs: options.enqueueTimeoutMs,
    closeTimeoutMs: options.closeTimeoutMs,
  });

  const submitter = createSubmitter(writer, policy, options.channels ?? config.channels);
  return Object.freeze({
    sendEmail: (input: EmailInput) => submitter.sendEmail(project.data, input),
    sendSms: (input: SmsInput) => submitter.sendSms(project.data, input),
    sendWhatsApp: (input: WhatsAppInput) => submitter.sendWhatsApp(project.data, input),
    record: (input: RecordInput) => submitter.record(project.data, input),
    stats: () => writer.stats(),
    close: () => writer.close(),
  });
}
