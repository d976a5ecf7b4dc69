import {
  type ArchiveJobData,
  type ArchiveJobResult,
  backoffDelay,
  createLogger,
  type EventEnvelope,
  type HoldfastConfig,
  type Logger,
  type MediaJobData,
  parseEvent,
  QUEUE_PREFIX,
  QUEUES,
  RetentionPolicy,
} from '@holdfast/core';
import {
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
import { archiveEvent, archiveKeyOf } from './archive-event.ts';
import { factsFromEvent, type Matter, matches, matterCache, recordHeld } from './holds.ts';
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
  readonly worker: Worker<ArchiveJobData, ArchiveJobResult>;
  /** The circuit breaker every store call goes through. */
  readonly breakers: { readonly store: Breaker };
  close(): Promise<void>;
}

/** Providers retry webhooks for up to a few days (Meta: 7); duplicates later than this are archived again. */
const SEEN_MARKER_TTL_SECONDS = 8 * 24 * 3600;
/**
 * A claim outlives any archive job (a retry of the same job takes its own claim back at once);
 * it expires only so that a provider duplicate whose first job died for good is archived after all.
 */
const CLAIM_TTL_SECONDS = 3600;
/** Delete the claim only while it is still this job's. */
const RELEASE_CLAIM = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Record the result unless another job's result or claim took the key after ours lapsed. */
const SETTLE_CLAIM = `local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) end
return 0`;
/** A claim in progress: `pending:<job id>`, so a retry of the same job can tell its own claim. */
const PENDING = 'pending:';

/** What makes two deliveries "the same": the provider's event identity, else our event id. */
function dedupeIdentity(event: EventEnvelope): string {
  const { provider, providerEventId } = event.data as { provider?: unknown; providerEventId?: unknown };
  return typeof provider === 'string' && typeof providerEventId === 'string'
    ? `${provider}:${providerEventId}`
    : event.id;
}

/** Errors that retrying cannot fix: they fail the job at once (and fail the send that waits on it). */
const PERMANENT = new Set([
  'HOLDFAST_ERR_VALIDATION',
  'HOLDFAST_ERR_RETENTION_POLICY',
  'HOLDFAST_ERR_OBJECT_CONFLICT',
  'HOLDFAST_ERR_PAYLOAD_HASH_MISMATCH',
  'HOLDFAST_ERR_CHECKSUM_MISMATCH',
]);

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
  if (!config.redisUrl) throw new Error('the archiver needs REDIS_URL');
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

  const redis = createRedisConnection(config.redisUrl, 'worker', 'holdfast-archiver-model', log);
  // The policy in force is on record before any job is archived under it.
  await recordPolicyChange({ redis, store, policy, log }).catch(async (error: unknown) => {
    redis.disconnect();
    if (ownsStore) await store.close();
    storeBreaker.shutdown();
    throw error;
  });
  const matters = matterCache(redis);
  const reputation = { redis, store, policy, log, thresholds: config.reputation };
  // A pause whose audit event a crash left unwritten is recorded before new work.
  await completePendingPauses(reputation);
  const mediaQueue = openQueue<MediaJobData>(QUEUES.media, redis, log);

  const process = async (job: Job<ArchiveJobData, ArchiveJobResult>): Promise<ArchiveJobResult> => {
    try {
      const event = parseEvent(job.data.event);
      // A provider's duplicate delivery carries a later receipt time (and, where the provider
      // gives no timestamp, a different event id), so it would hash to a new key. Claiming the
      // provider's own event identity first makes every duplicate a no-op, even concurrent ones
      // and ones that arrive long after the first job was removed.
      const seenKey = `${QUEUE_PREFIX}:archived:${dedupeIdentity(event)}`;
      const claim = `${PENDING}${job.id}`;
      const claimed = await redis.set(seenKey, claim, 'EX', CLAIM_TTL_SECONDS, 'NX');
      if (claimed !== 'OK') {
        const seen = await redis.get(seenKey);
        if (seen && !seen.startsWith(PENDING))
          return { ...(JSON.parse(seen) as ArchiveJobResult), created: false };
        // Its own claim, left by an earlier run of this job whose archiver died: BullMQ gives a
        // job to one worker at a time, so that run is over, and the writes are idempotent.
        // Another job's claim is a provider duplicate in flight: wait for its outcome.
        if (seen !== claim) throw new Error(`a duplicate of event ${event.id} is being archived; retrying`);
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
        await recordInTimeline(redis, event, result.key);
        await trackReputation(reputation, event);
        await applyRetentionTriggers({ redis, store, policy, log }, event, result);
        await enqueueMedia(mediaQueue, event, result);
      } catch (error) {
        // Only our own claim: if it lapsed and another job claimed (or finished) meanwhile, theirs stays.
        await redis.eval(RELEASE_CLAIM, 1, seenKey, claim).catch(() => {});
        throw error;
      }
      await redis.eval(SETTLE_CLAIM, 1, seenKey, claim, JSON.stringify(result), SEEN_MARKER_TTL_SECONDS);
      // Debug, not info: the archive itself is the record of every write, and a log line per event
      // cost ~6% of the archiver's CPU in the benchmark profile.
      log.debug(
        { jobId: job.id, eventId: event.id, type: event.type, key: result.key, created: result.created },
        'archived',
      );
      return result;
    } catch (error) {
      // The store was not called; the queue worker puts the job back, no attempt spent.
      if (breakerOpenErrorOf(error)) throw error;
      const code = (error as { code?: string }).code;
      if (code && PERMANENT.has(code)) {
        log.error(
          { jobId: job.id, eventId: job.data.event?.id, code, err: (error as Error).message },
          'archive failed permanently',
        );
        throw new UnrecoverableError(`${code}: ${(error as Error).message}`);
      }
      log.warn(
        {
          jobId: job.id,
          eventId: job.data.event?.id,
          code,
          attempt: job.attemptsMade + 1,
          err: (error as Error).message,
        },
        'archive failed; will retry',
      );
      throw error;
    }
  };

  const worker = await startQueueWorker<ArchiveJobData, ArchiveJobResult>({
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
  const archiveQueue = openQueue(QUEUES.archive, redis, log);
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
