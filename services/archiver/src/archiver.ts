import {
  ARCHIVE_BATCH_JOB,
  ARCHIVE_CLAIM_PREFIX,
  ARCHIVED_MARKER_TTL_SECONDS,
  type ArchiveBatchJobData,
  type ArchiveBatchJobResult,
  type ArchiveJobData,
  type ArchiveJobResult,
  archivedMarkerKey,
  backoffDelay,
  ConfigError,
  createLogger,
  type EventEnvelope,
  type HoldfastConfig,
  isArchivedMarker,
  type Logger,
  type MediaCapturedData,
  type MediaJobData,
  parseEvent,
  QUEUES,
  RetentionPolicy,
} from '@holdfast/core';
import {
  archiveJobOptions,
  type Breaker,
  type BreakerSettings,
  breakerOpenErrorOf,
  breakerSettingsFrom,
  closeQueueWorker,
  createBreaker,
  createRedisConnection,
  holdfastMetrics,
  observeArchiveJobs,
  openQueue,
  publishBreakerStates,
  RedisScript,
  registerBreakerMetrics,
  startOpsServer,
  startQueueWorker,
} from '@holdfast/producer';
import {
  guardObjectStore,
  isStoreOutage,
  type ObjectStore,
  openObjectStore,
  preflightStore,
} from '@holdfast/worm-store';
import { type Job, type Queue, UnrecoverableError, type Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import pLimit from 'p-limit';
import { archiveEvent, archiveKeyOf } from './archive-event.ts';
import { DuplicateInFlightError } from './errors.ts';
import {
  ensureMatterRegistry,
  factsFromEvent,
  holdMediaWithMessage,
  type Matter,
  matches,
  matterCache,
  recordHeld,
} from './holds.ts';
import { completePendingPauses, trackReputation } from './reputation.ts';
import { applyRetentionTriggers, recordPolicyChange } from './retention-triggers.ts';
import { recordInTimeline } from './timeline.ts';

export interface ArchiverOptions {
  /** Use this store instead of opening `config.store`. The caller keeps ownership. */
  store?: ObjectStore;
  policy?: RetentionPolicy;
  logger?: Logger;
  /** Archive jobs processed at once by this replica. @defaultValue 16 */
  concurrency?: number;
  /** First retry delay after a transient failure (store down). @defaultValue 1000 */
  retryBaseMs?: number;
  /** Longest retry delay. @defaultValue 60000 */
  retryCapMs?: number;
  /**
   * The circuit breaker around the store (`archiver/store`; `BREAKER_DEFAULTS`: open when at
   * least 50% of at least 10 calls within 10 s found it unavailable, probe after 30 s). While it
   * is open the archive worker takes no jobs. @defaultValue BREAKER_DEFAULTS
   */
  breaker?: BreakerSettings;
}

export interface ArchiverHandle {
  /** Where /healthz, /readyz and /metrics answer. */
  readonly opsUrl: string;
  readonly worker: Worker<ArchiveJobs, ArchiveJobResult | ArchiveBatchJobResult>;
  /** The circuit breaker every store call goes through. */
  readonly breakers: { readonly store: Breaker };
  close(): Promise<void>;
}

/** What the archive queue carries: one event, or a batch of them (`ARCHIVE_BATCH_JOB`). */
type ArchiveJobs = ArchiveJobData | ArchiveBatchJobData;

/**
 * A claim outlives any archive job (a retry of the same job takes its own claim back at once);
 * it expires only so that a provider duplicate whose first job died for good is archived after all.
 */
const CLAIM_TTL_SECONDS = 3600;
/** Delete the claim only while it is still this job's. */
const RELEASE_CLAIM = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);
/** Record the result unless another job's result or claim took the key after ours lapsed. */
const SETTLE_CLAIM = new RedisScript(`local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 0`);

/**
 * Events of batch jobs archived at once by one replica, across all its running batches: above
 * what a busy replica runs (16 batches of ~16 events in the benchmark, where a bound of 64 was
 * slower), below 16 full batches of 100, which could hold 1,600 files open (a host's default
 * limit is often 1,024).
 */
const MAX_BATCH_EVENTS_IN_FLIGHT = 512;

/** Errors that retrying cannot fix: they fail the job at once (and fail the send that waits on it). */
const PERMANENT = new Set([
  'HOLDFAST_ERR_VALIDATION',
  'HOLDFAST_ERR_RETENTION_POLICY',
  'HOLDFAST_ERR_OBJECT_CONFLICT',
  'HOLDFAST_ERR_PAYLOAD_HASH_MISMATCH',
  'HOLDFAST_ERR_CHECKSUM_MISMATCH',
  // The store refused what it was given (a key, a date, metadata): the same input fails again.
  'HOLDFAST_ERR_INVALID_OBJECT_INPUT',
]);

/** True for errors that retrying cannot fix. */
function isPermanent(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code !== undefined && PERMANENT.has(code);
}

/**
 * A store that cannot be reached yet (an outage, a restart of both at once) is waited for, with
 * capped backoff, instead of exiting into a crash loop; a store that answers and fails the
 * preflight still stops the start at once.
 */
async function untilReachable<T>(attempt: () => Promise<T>, log: Logger): Promise<T> {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if ((error as { code?: string }).code !== 'HOLDFAST_ERR_STORE_UNAVAILABLE') throw error;
      const waitMs = backoffDelay(tries, 500, 15_000);
      log.warn(
        { err: (error as Error).message, tries, waitMs },
        'store unreachable at start; waiting for it',
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}

/** Start the archiver: consume archive jobs and write each event under WORM retention. */
export async function start(
  config: Readonly<HoldfastConfig>,
  options: ArchiverOptions = {},
): Promise<ArchiverHandle> {
  if (!config.redisUrl)
    throw new ConfigError('REDIS_URL', 'the archiver needs it: the Redis that carries its queues');
  const log = options.logger ?? createLogger({ name: 'holdfast-archiver', level: config.logLevel });
  const policy = options.policy ?? (await RetentionPolicy.fromConfig(config));
  const ownsStore = !options.store;
  // Fail closed: refuse a store that fails the preflight (an injected store is its owner's to check).
  const { s3Endpoint, region } = config;
  const minimumRetentionDays = policy.minimumDays();
  if (ownsStore)
    await untilReachable(
      () => preflightStore(config.store, { s3Endpoint, region, minimumRetentionDays, log }),
      log,
    );
  // Every store call below, start-up writes included, goes through the breaker.
  const storeBreaker = createBreaker({
    ...breakerSettingsFrom(config),
    ...options.breaker,
    name: 'store',
    service: 'archiver',
    isFailure: isStoreOutage,
  });
  const innerStore =
    options.store ??
    (await openObjectStore(config.store, { s3Endpoint: config.s3Endpoint, region: config.region }));
  const store = guardObjectStore(innerStore, storeBreaker);

  // The events of a batch run side by side: their claims and settlements share writes to Redis.
  const redis = createRedisConnection(config.redisUrl, 'worker', 'holdfast-archiver-model', log, {
    autoPipelining: true,
  });
  // The policy in force is on record before any job is archived under it.
  await recordPolicyChange({ redis, store, policy, log }).catch(async (error: unknown) => {
    redis.disconnect();
    if (ownsStore) await store.close();
    storeBreaker.shutdown();
    throw error;
  });
  // A Redis that lost its data has lost the matter registry too: it is restored from the archive
  // before anything is archived against it (one archiver restores, the others wait).
  const ensureMatters = () =>
    ensureMatterRegistry(store, redis, policy, ({ open, released }) => {
      const found = { open: open.map((m) => m.matter), released: released.length };
      // Nothing on record: a new deployment. Matters on record: Redis lost them, and now has them back.
      if (open.length + released.length === 0) log.info(found, 'legal-hold matter registry: none on record');
      else log.warn(found, 'legal-hold matter registry was missing from Redis; restored from the archive');
    });
  const matters = matterCache(redis, ensureMatters);
  const reputation = { redis, store, policy, log, thresholds: config.reputation };
  // A pause whose audit event a crash left unwritten is recorded before new work.
  await completePendingPauses(reputation);
  // BullMQ defines its ~60 scripts on a queue's connection, and an auto-pipelined connection
  // copies every defined script onto each pipeline it builds (one per turn of the event loop):
  // the queues get a connection of their own so the claims' pipelines stay cheap.
  const queueRedis = createRedisConnection(config.redisUrl, 'worker', 'holdfast-archiver-queues', log);
  const mediaQueue = openQueue<MediaJobData>(QUEUES.media, queueRedis, log);

  const archiveQueue = openQueue<ArchiveJobData>(QUEUES.archive, queueRedis, log);
  const batchSlot = pLimit(MAX_BATCH_EVENTS_IN_FLIGHT);

  /**
   * Archive one event; `owner` (the job's id, with the event's in a batch) names the claim, so a
   * later run of the same job takes its own claim back.
   */
  const archiveOne = async (event: EventEnvelope, owner: string): Promise<ArchiveJobResult> => {
    // A provider's duplicate delivery carries a later receipt time (and, where the provider
    // gives no timestamp, a different event id), so it would hash to a new key. Claiming the
    // provider's own event identity first makes every duplicate a no-op, even concurrent ones
    // and ones that arrive long after the first job was removed.
    const seenKey = archivedMarkerKey(event);
    const claim = `${ARCHIVE_CLAIM_PREFIX}${owner}`;
    const claimed = await redis.set(seenKey, claim, 'EX', CLAIM_TTL_SECONDS, 'NX');
    if (claimed !== 'OK') {
      const seen = await redis.get(seenKey);
      if (isArchivedMarker(seen)) return { ...(JSON.parse(seen) as ArchiveJobResult), created: false };
      // Its own claim, left by an earlier run of this job whose archiver died: BullMQ gives a
      // job to one worker at a time, so that run is over, and the writes are idempotent.
      // Another job's claim is a provider duplicate in flight: wait for its outcome.
      if (seen !== claim) throw new DuplicateInFlightError(event.id);
    }
    let result: ArchiveJobResult;
    try {
      // Written under hold when an open matter selects it; matters opened while this write
      // was in flight are caught by the check after it (the place command scans after opening).
      const open = await matters();
      const holding =
        open.length === 0
          ? []
          : open.filter((m) => matches(m.selection, factsFromEvent(event, archiveKeyOf(event))));
      result = await archiveEvent(store, policy, event, { legalHold: holding.length > 0 });
      await applyLateHolds(store, redis, matters, event, result, holding);
      if (event.type === 'media.captured')
        await holdMediaWithMessage(store, redis, matters, event.data as MediaCapturedData);
      await recordInTimeline(redis, event, result.key);
      await trackReputation(reputation, event);
      await applyRetentionTriggers({ redis, store, policy, log }, event, result);
      await enqueueMedia(mediaQueue, event, result);
    } catch (error) {
      // Only our own claim: if it lapsed and another job claimed (or finished) meanwhile, theirs stays.
      await RELEASE_CLAIM.run(redis, [seenKey], [claim]).catch(() => {});
      throw error;
    }
    await SETTLE_CLAIM.run(redis, [seenKey], [claim, JSON.stringify(result), ARCHIVED_MARKER_TTL_SECONDS]);
    // Debug, not info: the archive itself is the record of every write, and a log line per event
    // cost ~6% of the archiver's CPU in the benchmark profile.
    log.debug(
      { jobId: owner, eventId: event.id, type: event.type, key: result.key, created: result.created },
      'archived',
    );
    return result;
  };

  /** A failed run: put back (breaker open), failed for good (permanent), or retried. */
  const failed = (job: Job<ArchiveJobs>, eventId: string | undefined, error: unknown): never => {
    // The store was not called; the queue worker puts the job back, no attempt spent.
    if (breakerOpenErrorOf(error)) throw error;
    const code = (error as { code?: string }).code;
    if (isPermanent(error)) {
      log.error(
        { jobId: job.id, eventId, code, err: (error as Error).message },
        'archive failed permanently',
      );
      throw new UnrecoverableError(`${code}: ${(error as Error).message}`);
    }
    log.warn(
      { jobId: job.id, eventId, code, attempt: job.attemptsMade + 1, err: (error as Error).message },
      'archive failed; will retry',
    );
    throw error;
  };

  /**
   * The events of a batch are archived side by side, each as if it were its own job. One that
   * fails for good is moved to a plain job of its own (its dead letter names it alone); any
   * other failure retries the batch, whose written events are then found archived already.
   */
  const processBatch = async (job: Job<ArchiveJobs>, events: unknown[]): Promise<ArchiveBatchJobResult> => {
    // A claim per event of the batch: two deliveries of one provider event in the same batch must
    // not both pass as "our own claim".
    const outcomes = await Promise.allSettled(
      events.map((raw) =>
        batchSlot(async () => {
          const event = parseEvent(raw);
          return archiveOne(event, `${job.id}:${event.id}`);
        }),
      ),
    );
    const result: ArchiveBatchJobResult = { created: 0, existing: 0, split: [] };
    const moved: ArchiveJobData[] = [];
    let retry: unknown;
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status === 'fulfilled') {
        if (outcome.value.created) result.created++;
        else result.existing++;
      } else if (breakerOpenErrorOf(outcome.reason)) {
        return failed(job, undefined, outcome.reason);
      } else if (isPermanent(outcome.reason)) {
        moved.push({ event: events[i] as EventEnvelope });
      } else retry ??= outcome.reason;
    }
    if (retry !== undefined) return failed(job, undefined, retry);
    if (moved.length > 0) {
      // Added before the batch completes: a crash in between runs the batch again, and the
      // adds are idempotent (job id = event id).
      // Addressed to the batch's writer, which waits for these jobs now (the batch's ack names them).
      const { ackTo } = job.data as Partial<ArchiveBatchJobData>;
      await archiveQueue.addBulk(
        moved.map(({ event }) => ({
          name: 'archive',
          data: { event, ackTo },
          opts: archiveJobOptions(event),
        })),
      );
      result.split = moved.map(({ event }) => event.id);
      log.warn(
        { jobId: job.id, split: result.split },
        'events failed in a batch; each moved to a job of its own',
      );
    }
    return result;
  };

  const process = async (
    job: Job<ArchiveJobs, ArchiveJobResult | ArchiveBatchJobResult>,
  ): Promise<ArchiveJobResult | ArchiveBatchJobResult> => {
    const data = job.data as Partial<ArchiveJobData & ArchiveBatchJobData>;
    if (job.name === ARCHIVE_BATCH_JOB) {
      if (!Array.isArray(data.events))
        throw new UnrecoverableError(`HOLDFAST_ERR_VALIDATION: batch ${job.id} carries no events`);
      return processBatch(job, data.events);
    }
    try {
      return await archiveOne(parseEvent(data.event), job.id!);
    } catch (error) {
      return failed(job, data.event?.id, error);
    }
  };

  const worker = await startQueueWorker<ArchiveJobs, ArchiveJobResult | ArchiveBatchJobResult>({
    queue: QUEUES.archive,
    name: 'holdfast-archiver',
    redisUrl: config.redisUrl,
    process,
    log,
    concurrency: options.concurrency ?? 16,
    retryBaseMs: options.retryBaseMs,
    retryCapMs: options.retryCapMs,
    stalledJobMs: config.stalledJobMs,
    breakers: [storeBreaker],
  });
  const metrics = holdfastMetrics();
  observeArchiveJobs(metrics, worker, QUEUES.archive);
  const ops = await startOpsServer({
    port: config.metricsPort,
    queues: [archiveQueue, mediaQueue],
    checks: { redis: async () => (await redis.ping()) && 'ok' },
    registry: metrics.registry,
    log,
  });
  const stopBreakerMetrics = registerBreakerMetrics(ops.registry, [storeBreaker]);
  const breakerStates = publishBreakerStates({ redis, breakers: [storeBreaker], log });
  log.info({ store: store.description, policy: policy.source }, 'archiver started');

  let closed = false;
  return {
    worker,
    breakers: { store: storeBreaker },
    opsUrl: ops.url,
    async close() {
      if (closed) return;
      closed = true;
      await closeQueueWorker(worker);
      await breakerStates.close();
      stopBreakerMetrics();
      await ops.close();
      await archiveQueue.close();
      await mediaQueue.close();
      queueRedis.disconnect();
      redis.disconnect();
      if (ownsStore) await store.close();
      storeBreaker.shutdown();
    },
  };
}

/**
 * Inbound media becomes media jobs once its message is archived (the media-fetcher downloads it
 * before the provider's URL expires). Job ids derive from the event, so a retry adds nothing.
 */
async function enqueueMedia(
  queue: Queue<MediaJobData>,
  event: EventEnvelope,
  archived: ArchiveJobResult,
): Promise<void> {
  const media = event.data.media;
  if (
    event.type !== 'message.received' ||
    !Array.isArray(media) ||
    (event.channel !== 'sms' && event.channel !== 'whatsapp')
  )
    return;
  await queue.addBulk(
    (media as MediaJobData['media'][]).map((m) => ({
      name: 'fetch',
      data: {
        eventId: event.id,
        project: event.project,
        channel: event.channel as 'sms' | 'whatsapp',
        provider: String(event.data.provider ?? 'unknown'),
        messageKey: archived.key,
        retainUntil: archived.retainUntil,
        subject: event.subject,
        category: event.category,
        media: m,
      },
      // The fetcher's capped, jittered backoff (1 s doubling to 60 s: about ten minutes over 20
      // attempts) rides out a provider blip; permanent failures skip it. Failed jobs are kept.
      opts: {
        jobId: `${event.id}-${m.index}`,
        attempts: 20,
        backoff: { type: 'holdfast' },
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: false,
      },
    })),
  );
}

/**
 * Record the versions the matters held at write time, and hold them for any matter opened
 * since the write began.
 */
async function applyLateHolds(
  store: ObjectStore,
  redis: Redis,
  matters: () => Promise<Matter[]>,
  event: EventEnvelope,
  result: ArchiveJobResult,
  heldAtWrite: readonly Matter[],
): Promise<void> {
  const open = await matters();
  if (open.length === 0) return;
  const objects = result.objects ?? [{ key: result.key, versionId: result.versionId, sha256: result.sha256 }];
  const now = open.filter((m) => matches(m.selection, factsFromEvent(event, result.key)));
  const late = now.filter((m) => !heldAtWrite.some((h) => h.matter === m.matter));
  if (late.length > 0 && heldAtWrite.length === 0) {
    for (const o of objects) await store.setLegalHold(o.key, o.versionId, true);
  }
  await recordHeld(redis, [...heldAtWrite, ...late], objects);
}
