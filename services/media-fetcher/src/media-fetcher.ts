import { randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ConfigError,
  createLogger,
  deterministicEventId,
  type HoldfastConfig,
  type Logger,
  type MediaJobData,
  newEvent,
  QUEUES,
} from '@holdfast/core';
import {
  type BreakerSettings,
  breakerOpenErrorOf,
  breakerSettingsFrom,
  closeQueueWorker,
  createRedisConnection,
  EventWriter,
  holdfastMetrics,
  observeMediaJobs,
  observeSpool,
  openQueue,
  publishBreakerStates,
  publishSpoolState,
  registerBreakerMetrics,
  startOpsServer,
  startQueueWorker,
} from '@holdfast/producer';
import { guardObjectStore, type ObjectStore, openObjectStore } from '@holdfast/worm-store';
import { type Job, UnrecoverableError, type Worker } from 'bullmq';
import { AddressPolicy } from './address-policy.ts';
import { archiveMedia } from './archive-media.ts';
import { MediaFetchError } from './errors.ts';
import { HostAllowlist } from './host-allowlist.ts';
import { downloadBreakerOf, type MediaBreakers, mediaBreakers } from './media-breakers.ts';
import { MediaClient } from './media-client.ts';
import { type MediaJob, parseMediaJob } from './media-job.ts';
import type { FetchContext, FetchedMedia } from './providers/fetched-media.ts';
import { fetchTwilioMedia } from './providers/twilio.ts';
import { fetchWhatsAppMedia } from './providers/whatsapp.ts';
import type { Resolve } from './safe-lookup.ts';
import { UrlPolicy } from './url-policy.ts';

export interface MediaFetcherOptions {
  /** Use this store instead of opening `config.store`. The caller keeps ownership. */
  store?: ObjectStore;
  logger?: Logger;
  /** Media jobs processed at once by this replica. @defaultValue 4 */
  concurrency?: number;
  /** First retry delay after a transient failure (provider 5xx, timeout). @defaultValue 1000 */
  retryBaseMs?: number;
  /** Longest retry delay. @defaultValue 60000 */
  retryCapMs?: number;
  /** Passed to the fetcher's own event writer (for `media.captured`). @defaultValue 15000 */
  redeliverAfterMs?: number;
  /**
   * PEM certificates trusted for downloads besides Node's default CAs. Tests only (a loopback
   * server's self-signed certificate); a deployment that needs one sets NODE_EXTRA_CA_CERTS.
   * @defaultValue none
   */
  extraCa?: readonly string[];
  /**
   * Name resolution for download hosts. Tests only; every address it returns still passes the
   * address policy.
   * @defaultValue the system resolver (`dns.lookup`)
   */
  resolve?: Resolve;
  /**
   * The circuit breakers around each provider's downloads (`media-fetcher/download-twilio`,
   * `/download-whatsapp`) and the store (`media-fetcher/store`) (`BREAKER_DEFAULTS`: open when
   * at least 50% of at least 10 calls within 10 s failed, probe after 30 s). While any is open
   * the media worker takes no jobs. @defaultValue BREAKER_DEFAULTS
   */
  breaker?: BreakerSettings;
}

/** What a completed media job returns. */
export interface MediaJobResult {
  key: string;
  versionId: string;
  sidecarKey: string;
  sha256: string;
  size: number;
  contentType: string;
  capturedEventId: string;
  /** False when an earlier attempt of the same job had already archived the media. */
  created: boolean;
}

export interface MediaFetcherHandle {
  /** Where /healthz, /readyz and /metrics answer. */
  readonly opsUrl: string;
  readonly worker: Worker<MediaJobData, MediaJobResult>;
  readonly breakers: MediaBreakers;
  close(): Promise<void>;
}

/** Errors that retrying cannot fix, besides MediaFetchError's own `permanent` ones. */
const PERMANENT = new Set([
  'HOLDFAST_ERR_OBJECT_CONFLICT',
  'HOLDFAST_ERR_VALIDATION',
  'HOLDFAST_ERR_INVALID_OBJECT_INPUT',
  'HOLDFAST_ERR_INVALID_KEY',
  'HOLDFAST_ERR_CONFIG',
]);

/**
 * Start the media fetcher: consume `media` jobs (one per attachment of an archived inbound
 * message), download each at once under the safety rules (https, allowlisted hosts, public or
 * allowed addresses only, size and time limits), stream it to a temp file while hashing, archive
 * it beside its message with the message's retention and hold, and record `media.captured`.
 */
export async function start(
  config: Readonly<HoldfastConfig>,
  options: MediaFetcherOptions = {},
): Promise<MediaFetcherHandle> {
  if (!config.redisUrl)
    throw new ConfigError('REDIS_URL', 'the media fetcher needs it: the Redis that carries its queues');
  const redisUrl = config.redisUrl;
  const log = options.logger ?? createLogger({ name: 'holdfast-media-fetcher', level: config.logLevel });
  // Config errors surface before anything is opened.
  const policy = new UrlPolicy(
    new HostAllowlist(config.media.allowedHosts),
    new AddressPolicy(config.media.allowedNetworks),
  );
  const { maxBytes, timeoutMs } = config.media;
  const breakers = mediaBreakers({ ...breakerSettingsFrom(config), ...options.breaker });

  const spoolDir = join(config.spoolDir, 'media-fetcher');
  const writer = await EventWriter.open({
    spoolDir,
    redisUrl,
    logger: log,
    redeliverAfterMs: options.redeliverAfterMs,
    maxBacklog: config.spoolMaxBacklog,
  });
  // The spool locks its directory to one process, so whatever is in tmp/ is a dead run's leftovers.
  const tmpDir = join(spoolDir, 'tmp');
  const ownsStore = !options.store;
  let store: ObjectStore;
  try {
    await rm(tmpDir, { recursive: true, force: true });
    await mkdir(tmpDir, { recursive: true, mode: 0o700 });
    // Every put, head and hold change of the archiving goes through the store's breaker.
    store = guardObjectStore(
      options.store ??
        (await openObjectStore(config.store, { s3Endpoint: config.s3Endpoint, region: config.region })),
      breakers.store,
    );
  } catch (error) {
    await writer.close();
    throw error;
  }
  const client = new MediaClient({
    policy,
    ...(options.extraCa ? { extraCa: options.extraCa } : {}),
    ...(options.resolve ? { resolve: options.resolve } : {}),
  });

  const fetchMedia = async (job: MediaJob, path: string): Promise<FetchedMedia> => {
    // One deadline for the whole download (metadata, redirects, every byte of the body), so a
    // server trickling bytes cannot hold a worker slot longer than HOLDFAST_MEDIA_TIMEOUT_MS.
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    const ctx: FetchContext = { client, config, signal: deadline.signal, timeoutMs, maxBytes, path, log };
    try {
      return job.provider === 'whatsapp'
        ? await fetchWhatsAppMedia(ctx, job)
        : await fetchTwilioMedia(ctx, job);
    } finally {
      clearTimeout(timer);
    }
  };

  const processJob = async (job: Job<MediaJobData, MediaJobResult>): Promise<MediaJobResult> => {
    const path = join(tmpDir, `${randomUUID()}.part`);
    try {
      const media = parseMediaJob(job.data);
      const download = downloadBreakerOf(breakers, media.provider);
      // Nothing is downloaded that could not be stored now.
      download.throwIfOpen();
      breakers.store.throwIfOpen();
      const fetched = await download.fire(() => fetchMedia(media, path));
      const archived = await archiveMedia(store, media, fetched);
      if (!archived.parentFound) {
        log.warn(
          { jobId: job.id, eventId: media.eventId, messageKey: media.messageKey },
          "parent message not found in the store; media archived with the job's retention and no hold",
        );
      }
      // The same job always records the same event (id and date from the stored version), so a
      // retry after the submit is absorbed by the queue's job id and the archiver's dedupe.
      const capturedAt = new Date(archived.capturedAt);
      const captured = newEvent({
        id: deterministicEventId(capturedAt, `media.captured:${media.eventId}:${media.media.index}`),
        type: 'media.captured',
        occurredAt: capturedAt,
        project: media.project,
        channel: media.channel,
        direction: 'inbound',
        // Inbound messages are their own subject; older jobs do not carry it.
        subject: media.subject ?? media.eventId,
        category: media.category ?? `${media.channel}-transactional`,
        data: {
          messageEventId: media.eventId,
          messageKey: media.messageKey,
          key: archived.key,
          versionId: archived.versionId,
          sidecarKey: archived.sidecarKey,
          sidecarVersionId: archived.sidecarVersionId,
          sha256: fetched.sha256,
          size: fetched.size,
          contentType: fetched.contentType,
          provider: media.provider,
          mediaIndex: media.media.index,
          ...(media.media.mediaId === undefined ? {} : { mediaId: media.media.mediaId }),
          retainUntil: archived.retainUntil,
          legalHold: archived.legalHold,
        },
      });
      await writer.submit(captured, 'archive');
      log.info(
        {
          jobId: job.id,
          eventId: media.eventId,
          key: archived.key,
          size: fetched.size,
          sha256: fetched.sha256,
          created: archived.created,
        },
        'media captured',
      );
      return {
        key: archived.key,
        versionId: archived.versionId,
        sidecarKey: archived.sidecarKey,
        sha256: fetched.sha256,
        size: fetched.size,
        contentType: fetched.contentType,
        capturedEventId: captured.id,
        created: archived.created,
      };
    } catch (error) {
      // Neither the provider nor the store was called; the worker puts the job back, no attempt spent.
      if (breakerOpenErrorOf(error)) throw error;
      const code = (error as { code?: string }).code;
      const message = (error as Error).message;
      const permanent =
        error instanceof MediaFetchError ? error.permanent : code !== undefined && PERMANENT.has(code);
      if (permanent) {
        log.error(
          { jobId: job.id, eventId: job.data.eventId, code, err: message },
          'media fetch failed permanently',
        );
        throw new UnrecoverableError(`${code}: ${message}`);
      }
      log.warn(
        { jobId: job.id, eventId: job.data.eventId, code, attempt: job.attemptsMade + 1, err: message },
        'media fetch failed; will retry',
      );
      // The code leads the job's failedReason too, so a job that runs out of attempts says why;
      // a provider's Retry-After stays on it for the worker's backoff.
      if (code === undefined) throw error;
      const retryAfterMs = (error as { retryAfterMs?: number }).retryAfterMs;
      throw Object.assign(
        new Error(`${code}: ${message}`, { cause: error }),
        retryAfterMs ? { retryAfterMs } : {},
      );
    } finally {
      await rm(path, { force: true });
    }
  };

  let worker: Worker<MediaJobData, MediaJobResult>;
  try {
    worker = await startQueueWorker<MediaJobData, MediaJobResult>({
      queue: QUEUES.media,
      name: 'holdfast-media-fetcher',
      redisUrl,
      process: processJob,
      log,
      concurrency: options.concurrency ?? 4,
      retryBaseMs: options.retryBaseMs,
      retryCapMs: options.retryCapMs,
      stalledJobMs: config.stalledJobMs,
      breakers: Object.values(breakers),
    });
  } catch (error) {
    await client.close();
    await writer.close();
    if (ownsStore) await store.close();
    throw error;
  }
  const redis = createRedisConnection(redisUrl, 'worker', 'holdfast-media-fetcher-ops', log);
  const mediaQueue = openQueue(QUEUES.media, redis, log);
  const metrics = holdfastMetrics();
  observeMediaJobs(metrics, worker, QUEUES.media);
  observeSpool(metrics, 'media-fetcher', writer);
  const spoolState = publishSpoolState({ service: 'media-fetcher', writer, redis, log });
  const ops = await startOpsServer({
    port: config.metricsPort,
    queues: [mediaQueue],
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
  log.info({ store: store.description, maxBytes, timeoutMs }, 'media fetcher started');

  let closed = false;
  return {
    worker,
    breakers,
    opsUrl: ops.url,
    async close() {
      if (closed) return;
      closed = true;
      await closeQueueWorker(worker);
      await breakerStates.close();
      stopBreakerMetrics();
      await ops.close();
      await mediaQueue.close();
      await spoolState.close();
      await writer.close();
      await client.close();
      redis.disconnect();
      if (ownsStore) await store.close();
      for (const b of Object.values(breakers)) b.shutdown();
    },
  };
}
