import { join } from 'node:path';
import {
  type ArchiveJobResult,
  ConfigError,
  createLogger,
  type EventEnvelope,
  emailPauseKey,
  type HoldfastConfig,
  type Logger,
  type OutboundChannel,
  parseEvent,
  SEND_QUEUES,
  type SendJobData,
  sha256Hex,
} from '@holdfast/core';
import {
  type Breaker,
  type BreakerSettings,
  breakerOpenErrorOf,
  breakerSettingsFrom,
  closeQueueWorker,
  countSend,
  createRedisConnection,
  EventWriter,
  holdfastMetrics,
  observeJobs,
  observeSpool,
  openQueue,
  publishBreakerStates,
  publishSpoolState,
  registerBreakerMetrics,
  startOpsServer,
  startQueueWorker,
} from '@holdfast/producer';
import { DelayedError, type Job, UnrecoverableError, type Worker } from 'bullmq';
import { breakerTransport, transportBreaker } from './breaker-transport.ts';
import { NotArchivedError, SendError } from './errors.ts';
import { type Outbound, outboundOf } from './outbound.ts';
import { SendAttempts, type SendJobResult } from './send-attempts.ts';
import {
  type EmailTransport,
  emailTransportFromConfig,
  type SmsTransport,
  smsTransportFromConfig,
  type Transport,
  type WhatsAppTransport,
  whatsappTransportFromConfig,
} from './transports/index.ts';

export interface SenderOptions {
  /** Use this transport instead of the one `HOLDFAST_EMAIL_TRANSPORT` names. The sender closes it. */
  emailTransport?: EmailTransport;
  /** Use this transport instead of the one `HOLDFAST_SMS_TRANSPORT` names. The sender closes it. */
  smsTransport?: SmsTransport;
  /** Use this transport instead of the one `HOLDFAST_WHATSAPP_TRANSPORT` names. The sender closes it. */
  whatsappTransport?: WhatsAppTransport;
  logger?: Logger;
  /** Send jobs processed at once per channel by this replica. @defaultValue 8 */
  concurrency?: number;
  /** @defaultValue 1000 */
  retryBaseMs?: number;
  /** @defaultValue 60000 */
  retryCapMs?: number;
  /** Passed to the sender's own event writer (for the send outcome events). @defaultValue 15000 */
  redeliverAfterMs?: number;
  /** While a project's email is paused, its send jobs wait this long before looking again. @defaultValue 30000 */
  pauseRecheckMs?: number;
  /**
   * The circuit breaker of each channel's transport (`BREAKER_DEFAULTS`: open when at least 50%
   * of at least 10 calls within 10 s failed, probe after 30 s). While a channel's breaker is
   * open its worker takes no jobs; the other channels go on.
   * @defaultValue BREAKER_DEFAULTS
   */
  breaker?: BreakerSettings;
}

export interface SenderHandle {
  /** Where /healthz, /readyz and /metrics answer. */
  readonly opsUrl: string;
  /** One worker per channel. */
  readonly workers: Readonly<Record<OutboundChannel, Worker<SendJobData, SendJobResult>>>;
  /** One circuit breaker per channel's transport (`sender/email`, `sender/sms`, `sender/whatsapp`). */
  readonly breakers: Readonly<Record<OutboundChannel, Breaker>>;
  close(): Promise<void>;
}

/**
 * Start the sender: one worker per channel consumes its send jobs, hands the message to the
 * channel's transport, and records every attempt and outcome as events through the same spool ->
 * archive path. Fail-closed messages (their send job is the parent of the archive job) are only
 * sent once the archive write holds exactly these bytes.
 */
export async function start(
  config: Readonly<HoldfastConfig>,
  options: SenderOptions = {},
): Promise<SenderHandle> {
  if (!config.redisUrl)
    throw new ConfigError('REDIS_URL', 'the sender needs it: the Redis that carries its queues');
  const redisUrl = config.redisUrl;
  const log = options.logger ?? createLogger({ name: 'holdfast-sender', level: config.logLevel });
  const transports = {
    email: options.emailTransport ?? emailTransportFromConfig(config),
    sms: options.smsTransport ?? smsTransportFromConfig(config),
    whatsapp: options.whatsappTransport ?? whatsappTransportFromConfig(config),
  };
  const breakerSettings = { ...breakerSettingsFrom(config), ...options.breaker };
  const breakers: Record<OutboundChannel, Breaker> = {
    email: transportBreaker('email', breakerSettings),
    sms: transportBreaker('sms', breakerSettings),
    whatsapp: transportBreaker('whatsapp', breakerSettings),
  };
  // The send protocol calls the providers only through these.
  const guarded = {
    email: breakerTransport(transports.email, breakers.email),
    sms: breakerTransport(transports.sms, breakers.sms),
    whatsapp: breakerTransport(transports.whatsapp, breakers.whatsapp),
  };
  const writer = await EventWriter.open({
    spoolDir: join(config.spoolDir, 'sender'),
    redisUrl,
    logger: log,
    redeliverAfterMs: options.redeliverAfterMs,
    maxBacklog: config.spoolMaxBacklog,
  });
  // Auto-pipelined: the markers of sends running side by side share writes to Redis.
  const redis = createRedisConnection(redisUrl, 'worker', 'holdfast-sender-markers', log, {
    autoPipelining: true,
  });
  const attempts = new SendAttempts(redis, writer, log);
  const metrics = holdfastMetrics();
  observeSpool(metrics, 'sender', writer);
  const spoolState = publishSpoolState({ service: 'sender', writer, redis, log });

  const processorFor =
    <C extends OutboundChannel>(channel: C, transport: Transport<Outbound<C>['message']>) =>
    async (job: Job<SendJobData, SendJobResult>, token?: string): Promise<SendJobResult> => {
      const event = parseEvent(job.data.event);
      if (event.type !== 'message.submitted' || event.channel !== channel) {
        throw new UnrecoverableError(
          `${SEND_QUEUES[channel]} job ${job.id} carries a ${event.channel} ${event.type} event`,
        );
      }
      const outbound = outboundOf(channel, event);
      if (outbound.failMode === 'closed') await requireArchived(job, event, outbound.archivedSha256);
      // A reputation pause holds the project's email: the job waits (no attempt spent), nothing is dropped.
      if (channel === 'email' && (await redis.exists(emailPauseKey(event.project)))) {
        await job.moveToDelayed(Date.now() + (options.pauseRecheckMs ?? 30_000), token);
        throw new DelayedError();
      }
      try {
        // Before anything is recorded: a call the breaker would refuse is not an attempt.
        breakers[channel].throwIfOpen();
        const attempt = job.attemptsMade + 1;
        const result = await attempts.deliver(event, outbound.message, transport, outbound.delivery, {
          attempt,
          last: attempt >= (job.opts.attempts ?? 1),
        });
        log.info(
          { jobId: job.id, eventId: event.id, channel, outcome: result.outcome, transport: transport.name },
          'send settled',
        );
        countSend(metrics, channel, result.outcome);
        return result;
      } catch (error) {
        // The provider was not called; the queue worker puts the job back, no attempt spent.
        if (breakerOpenErrorOf(error)) throw error;
        if (error instanceof SendError && !error.retryable) {
          log.error(
            { jobId: job.id, eventId: event.id, channel, code: error.code, providerCode: error.providerCode },
            'send rejected permanently',
          );
          countSend(metrics, channel, 'rejected');
          throw new UnrecoverableError(error.message);
        }
        log.warn(
          {
            jobId: job.id,
            eventId: event.id,
            channel,
            attempt: job.attemptsMade + 1,
            err: (error as Error).message,
          },
          'send failed; will retry',
        );
        countSend(metrics, channel, 'failed');
        throw error;
      }
    };

  const workers = {} as Record<OutboundChannel, Worker<SendJobData, SendJobResult>>;
  for (const channel of ['email', 'sms', 'whatsapp'] as const) {
    workers[channel] = await startQueueWorker<SendJobData, SendJobResult>({
      queue: SEND_QUEUES[channel],
      name: `holdfast-sender-${channel}`,
      redisUrl,
      process: processorFor(channel, guarded[channel] as Transport<Outbound<typeof channel>['message']>),
      log,
      concurrency: options.concurrency ?? 8,
      retryBaseMs: options.retryBaseMs,
      retryCapMs: options.retryCapMs,
      stalledJobMs: config.stalledJobMs,
      breakers: [breakers[channel]],
    });
    observeJobs(metrics, workers[channel], SEND_QUEUES[channel]);
  }
  log.info(
    { email: transports.email.name, sms: transports.sms.name, whatsapp: transports.whatsapp.name },
    'sender started',
  );

  let closed = false;
  // Not on the markers' connection: BullMQ defines its scripts on a queue's connection, and an
  // auto-pipelined connection copies every defined script onto each pipeline it builds.
  const queueRedis = createRedisConnection(redisUrl, 'worker', 'holdfast-sender-queues', log);
  const sendQueues = Object.values(SEND_QUEUES).map((name) => openQueue(name, queueRedis, log));
  const ops = await startOpsServer({
    port: config.metricsPort,
    queues: sendQueues,
    checks: {
      redis: async () => (await redis.ping()) && 'ok',
      spool: async () =>
        writer.stats().spool.failed ? 'failed: a write or fsync failed; restart to reopen' : 'ok',
    },
    registry: metrics.registry,
    log,
  });

  const stopBreakerMetrics = registerBreakerMetrics(ops.registry, Object.values(breakers));
  const breakerStates = publishBreakerStates({ redis, breakers: Object.values(breakers), log });

  return {
    workers,
    breakers,
    opsUrl: ops.url,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(Object.values(workers).map((w) => closeQueueWorker(w)));
      await breakerStates.close();
      stopBreakerMetrics();
      await ops.close();
      await Promise.all(sendQueues.map((q) => q.close()));
      await spoolState.close();
      await writer.close();
      await Promise.all(Object.values(transports).map((t) => t.close()));
      for (const b of Object.values(breakers)) b.shutdown();
      queueRedis.disconnect();
      redis.disconnect();
    },
  };
}

/**
 * Defence in depth for fail-closed: the flow already keeps this job waiting for its archive
 * child, but the send also checks that the child archived exactly these bytes.
 */
async function requireArchived(job: Job, event: EventEnvelope, sha256: string): Promise<void> {
  const children = Object.values(await job.getChildrenValues<ArchiveJobResult>());
  if (children.length !== 1)
    throw new UnrecoverableError(
      new NotArchivedError(event.id, `${children.length} archive results`).message,
    );
  const mime = event.channel === 'email' ? String(event.data.mime) : undefined;
  if (children[0]!.sha256 !== sha256 || (mime !== undefined && sha256Hex(mime) !== sha256)) {
    throw new UnrecoverableError(
      new NotArchivedError(event.id, 'archived hash differs from the message').message,
    );
  }
}
