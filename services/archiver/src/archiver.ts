import {
  type ArchiveJobData,
  type ArchiveJobResult,
  createLogger,
  type HoldfastConfig,
  type Logger,
  parseEvent,
  QUEUES,
  RetentionPolicy,
} from '@holdfast/core';
import { startQueueWorker } from '@holdfast/producer';
import { type ObjectStore, openObjectStore } from '@holdfast/worm-store';
import { type Job, UnrecoverableError, type Worker } from 'bullmq';
import { archiveEvent } from './archive-event.ts';

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
}

export interface ArchiverHandle {
  readonly worker: Worker<ArchiveJobData, ArchiveJobResult>;
  close(): Promise<void>;
}

/** Errors that retrying cannot fix: they fail the job at once (and fail the send that waits on it). */
const PERMANENT = new Set([
  'HOLDFAST_ERR_VALIDATION',
  'HOLDFAST_ERR_RETENTION_POLICY',
  'HOLDFAST_ERR_ARCHIVE_CONFLICT',
  'HOLDFAST_ERR_PAYLOAD_HASH_MISMATCH',
  'HOLDFAST_ERR_CHECKSUM_MISMATCH',
]);

/** Start the archiver: consume archive jobs and write each event under WORM retention. */
export async function start(
  config: Readonly<HoldfastConfig>,
  options: ArchiverOptions = {},
): Promise<ArchiverHandle> {
  if (!config.redisUrl) throw new Error('the archiver needs REDIS_URL');
  const log = options.logger ?? createLogger({ name: 'holdfast-archiver', level: config.logLevel });
  const policy =
    options.policy ??
    (config.retentionPolicyPath
      ? await RetentionPolicy.load(config.retentionPolicyPath)
      : RetentionPolicy.defaults());
  const ownsStore = !options.store;
  const store =
    options.store ??
    (await openObjectStore(config.store, { s3Endpoint: config.s3Endpoint, region: config.region }));

  const process = async (job: Job<ArchiveJobData, ArchiveJobResult>): Promise<ArchiveJobResult> => {
    try {
      const event = parseEvent(job.data.event);
      const result = await archiveEvent(store, policy, event);
      log.info(
        { jobId: job.id, eventId: event.id, type: event.type, key: result.key, created: result.created },
        'archived',
      );
      return result;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code && PERMANENT.has(code)) {
        log.error({ jobId: job.id, code, err: (error as Error).message }, 'archive failed permanently');
        throw new UnrecoverableError(`${code}: ${(error as Error).message}`);
      }
      log.warn(
        { jobId: job.id, code, attempt: job.attemptsMade + 1, err: (error as Error).message },
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
  });
  log.info({ store: store.description, policy: policy.source }, 'archiver started');

  let closed = false;
  return {
    worker,
    async close() {
      if (closed) return;
      closed = true;
      await worker.close();
      if (ownsStore) await store.close();
    },
  };
}
