import { join } from 'node:path';
import {
  type ArchiveJobResult,
  createLogger,
  type EmailSubmittedData,
  type EventEnvelope,
  type HoldfastConfig,
  type Logger,
  newEvent,
  parseEvent,
  QUEUE_PREFIX,
  QUEUES,
  type SendJobData,
  sha256Hex,
} from '@holdfast/core';
import {
  closeQueueWorker,
  createRedisConnection,
  EventWriter,
  startOpsServer,
  startQueueWorker,
} from '@holdfast/producer';
import { type Job, Queue, UnrecoverableError, type Worker } from 'bullmq';
import { NotArchivedError } from './errors.ts';
import { type EmailTransport, emailTransportFromConfig } from './transports/index.ts';

export interface SenderOptions {
  /** Use this transport instead of the one `HOLDFAST_EMAIL_TRANSPORT` names. The sender closes it. */
  emailTransport?: EmailTransport;
  logger?: Logger;
  /** Send jobs processed at once by this replica. @defaultValue 8 */
  concurrency?: number;
  /** @defaultValue 1000 */
  retryBaseMs?: number;
  /** @defaultValue 60000 */
  retryCapMs?: number;
  /** Passed to the sender's own event writer (for `message.sent`). @defaultValue 15000 */
  redeliverAfterMs?: number;
}

export interface SendJobResult {
  providerMessageId: string;
  sentEventId: string;
  /** False when an earlier delivery of this job already sent it (nothing was sent again). */
  sentNow: boolean;
}

export interface SenderHandle {
  /** Where /healthz, /readyz and /metrics answer. */
  readonly opsUrl: string;
  readonly worker: Worker<SendJobData, SendJobResult>;
  close(): Promise<void>;
}

/** How long a "this message was sent" marker is kept to stop a re-delivered job from sending twice. */
const SENT_MARKER_TTL_SECONDS = 30 * 24 * 3600;

/**
 * Start the sender: consume send jobs (each the parent of its archive job, so it only runs after
 * the archive write completed), hand the archived bytes to the transport, and record
 * `message.sent` through the same spool -> archive path.
 */
export async function start(
  config: Readonly<HoldfastConfig>,
  options: SenderOptions = {},
): Promise<SenderHandle> {
  if (!config.redisUrl) throw new Error('the sender needs REDIS_URL');
  const log = options.logger ?? createLogger({ name: 'holdfast-sender', level: config.logLevel });
  const transport = options.emailTransport ?? emailTransportFromConfig(config);
  const writer = await EventWriter.open({
    spoolDir: join(config.spoolDir, 'sender'),
    redisUrl: config.redisUrl,
    logger: log,
    redeliverAfterMs: options.redeliverAfterMs,
  });
  const redis = createRedisConnection(config.redisUrl, 'worker', 'holdfast-sender-markers', log);

  const process = async (job: Job<SendJobData, SendJobResult>): Promise<SendJobResult> => {
    const event = parseEvent(job.data.event);
    if (event.type !== 'message.submitted' || event.channel !== 'email') {
      throw new UnrecoverableError(`send-email job ${job.id} carries a ${event.channel} ${event.type} event`);
    }
    const data = event.data as EmailSubmittedData;
    await requireArchived(job, event, data);

    // A re-delivered job (stalled worker, crash after the send) finds the marker and does not send again.
    const markerKey = `${QUEUE_PREFIX}:sent:${event.id}`;
    const earlier = await redis.get(markerKey);
    if (earlier) {
      const sent = parseEvent(JSON.parse(earlier));
      await writer.submit(sent, 'archive');
      return { providerMessageId: String(sent.data.providerMessageId), sentEventId: sent.id, sentNow: false };
    }

    let providerMessageId: string;
    try {
      ({ providerMessageId } = await transport.send({
        eventId: event.id,
        project: event.project,
        raw: Buffer.from(data.mime, 'utf8'),
        from: data.envelope.from,
        to: data.envelope.to,
      }));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'HOLDFAST_ERR_SEND_REJECTED') {
        log.error(
          { jobId: job.id, eventId: event.id, code, err: (error as Error).message },
          'send rejected permanently',
        );
        throw new UnrecoverableError((error as Error).message);
      }
      log.warn(
        { jobId: job.id, eventId: event.id, attempt: job.attemptsMade + 1, err: (error as Error).message },
        'send failed; will retry',
      );
      throw error;
    }

    const sent = newEvent({
      type: 'message.sent',
      occurredAt: new Date(),
      project: event.project,
      channel: 'email',
      direction: 'outbound',
      subject: event.subject,
      category: event.category,
      data: { transport: transport.name, providerMessageId, attempt: job.attemptsMade + 1 },
    });
    // The marker holds the whole event so a retry records the very same event (same id, same key).
    await redis.set(markerKey, JSON.stringify(sent), 'EX', SENT_MARKER_TTL_SECONDS);
    await writer.submit(sent, 'archive');
    log.info({ jobId: job.id, eventId: event.id, providerMessageId, transport: transport.name }, 'sent');
    return { providerMessageId, sentEventId: sent.id, sentNow: true };
  };

  const worker = await startQueueWorker<SendJobData, SendJobResult>({
    queue: QUEUES.sendEmail,
    name: 'holdfast-sender',
    redisUrl: config.redisUrl,
    process,
    log,
    concurrency: options.concurrency ?? 8,
    retryBaseMs: options.retryBaseMs,
    retryCapMs: options.retryCapMs,
  });
  log.info({ transport: transport.name }, 'sender started');

  let closed = false;
  const sendQueue = new Queue(QUEUES.sendEmail, { connection: redis, prefix: QUEUE_PREFIX });
  const ops = await startOpsServer({
    port: config.metricsPort,
    queues: [sendQueue],
    checks: {
      redis: async () => (await redis.ping()) && 'ok',
      spool: async () =>
        writer.stats().spool.failed ? 'failed: a write or fsync failed; restart to reopen' : 'ok',
    },
    log,
  });

  return {
    worker,
    opsUrl: ops.url,
    async close() {
      if (closed) return;
      closed = true;
      await closeQueueWorker(worker);
      await ops.close();
      await sendQueue.close();
      await writer.close();
      await transport.close();
      redis.disconnect();
    },
  };
}

/**
 * Defence in depth for fail-closed: the flow already keeps this job waiting for its archive
 * child, but the send also checks that the child archived exactly these bytes.
 */
async function requireArchived(job: Job, event: EventEnvelope, data: EmailSubmittedData): Promise<void> {
  const children = Object.values(await job.getChildrenValues<ArchiveJobResult>());
  if (children.length !== 1)
    throw new UnrecoverableError(
      new NotArchivedError(event.id, `${children.length} archive results`).message,
    );
  const archived = children[0]!;
  if (archived.sha256 !== data.sha256 || sha256Hex(data.mime) !== data.sha256) {
    throw new UnrecoverableError(
      new NotArchivedError(event.id, 'archived hash differs from the message').message,
    );
  }
}
