import type { QueueName } from '@holdfast/core';
import type { Job, Worker } from 'bullmq';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventWriter } from './event-writer.ts';

/** How one run of a job ended: `retried` failed and will run again, `failed` failed for good. */
export type JobOutcome = 'completed' | 'retried' | 'failed';
/** `existing`: an earlier delivery of the same event had already written it. */
export type ArchiveWriteOutcome = 'created' | 'existing' | 'failed';
/** The sender's outcomes (`sent`, `uncertain`, `rejected`), and `failed`: the attempt errored and is retried. */
export type SendMetricOutcome = 'sent' | 'uncertain' | 'rejected' | 'failed';
/** `existing`: an earlier attempt of the same job had already archived the media. */
export type MediaFetchOutcome = 'captured' | 'existing' | 'failed';

/**
 * Holdfast's own metrics, defined once on a service's registry. A breaker-state gauge is
 * defined beside them by the breakers' own module.
 */
export interface HoldfastMetrics {
  readonly registry: Registry;
  /** `holdfast_job_duration_seconds{queue,outcome}`: one run of a job, active to settled. */
  readonly jobDuration: Histogram<'queue' | 'outcome'>;
  /** `holdfast_spool_backlog{service}`: accepted events not yet acknowledged downstream. */
  readonly spoolBacklog: Gauge<'service'>;
  /** `holdfast_spool_backlog_limit{service}`: the backlog at which the spool refuses new events. */
  readonly spoolBacklogLimit: Gauge<'service'>;
  /**
   * `holdfast_spool_undecodable{service}`: spool records that cannot be read back as events, kept
   * in the spool for a person (above 0 needs one; their ids are in the error log).
   */
  readonly spoolUndecodable: Gauge<'service'>;
  /** `holdfast_spool_oldest_unacked_seconds{service}`: age of the oldest of them (0 when none). */
  readonly spoolOldestUnacked: Gauge<'service'>;
  /** `holdfast_spool_fsync_seconds{service}`: each group-commit fdatasync. */
  readonly spoolFsync: Histogram<'service'>;
  /** `holdfast_archive_writes_total{outcome}`. */
  readonly archiveWrites: Counter<'outcome'>;
  /** `holdfast_sends_total{channel,outcome}`. */
  readonly sends: Counter<'channel' | 'outcome'>;
  /** `holdfast_media_fetches_total{outcome}`. */
  readonly mediaFetches: Counter<'outcome'>;
}

/** What a spool gauge reads at scrape time. */
type SpoolSource = Pick<EventWriter, 'stats'>;

const defined = new WeakMap<Registry, HoldfastMetrics>();
/** The spools each registry's gauges read, by service name. */
const spoolSources = new WeakMap<Registry, Map<string, SpoolSource>>();

/** Jobs run from milliseconds (an archive write) to minutes (a slow media download). */
const JOB_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** A healthy SSD syncs in well under a millisecond; a struggling volume takes a second or more. */
const FSYNC_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/**
 * Holdfast's metrics on `registry`, defined on first use and shared after: a service calls this
 * wherever it needs them and passes the same registry to `startOpsServer`.
 */
export function holdfastMetrics(registry: Registry = new Registry()): HoldfastMetrics {
  const existing = defined.get(registry);
  if (existing) return existing;
  const sources = new Map<string, SpoolSource>();
  spoolSources.set(registry, sources);
  const registers = [registry];
  const metrics: HoldfastMetrics = {
    registry,
    jobDuration: new Histogram({
      name: 'holdfast_job_duration_seconds',
      help: 'Duration of one run of a job, from active to completed or failed',
      labelNames: ['queue', 'outcome'],
      buckets: JOB_BUCKETS,
      registers,
    }),
    spoolBacklog: new Gauge({
      name: 'holdfast_spool_backlog',
      help: 'Events accepted into the local spool and not yet acknowledged downstream',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const [service, source] of sources) this.set({ service }, source.stats().backlog);
      },
    }),
    spoolBacklogLimit: new Gauge({
      name: 'holdfast_spool_backlog_limit',
      help: 'The spool backlog at which new events are refused (HOLDFAST_SPOOL_MAX_BACKLOG)',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const [service, source] of sources) this.set({ service }, source.stats().maxBacklog);
      },
    }),
    spoolUndecodable: new Gauge({
      name: 'holdfast_spool_undecodable',
      help: 'Spool records that cannot be read back as events: kept, unacknowledged, for a person to inspect',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const [service, source] of sources) this.set({ service }, source.stats().undecodable);
      },
    }),
    spoolOldestUnacked: new Gauge({
      name: 'holdfast_spool_oldest_unacked_seconds',
      help: 'Age of the oldest unacknowledged event in the local spool (0 when there is none)',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const [service, source] of sources) {
          const oldest = source.stats().spool.oldestUnackedAt;
          this.set({ service }, oldest ? Math.max(0, (now - oldest.getTime()) / 1000) : 0);
        }
      },
    }),
    spoolFsync: new Histogram({
      name: 'holdfast_spool_fsync_seconds',
      help: 'Duration of each group-commit fdatasync of the local spool',
      labelNames: ['service'],
      buckets: FSYNC_BUCKETS,
      registers,
    }),
    archiveWrites: new Counter({
      name: 'holdfast_archive_writes_total',
      help: 'Archive job runs by outcome: created, existing (already archived), failed',
      labelNames: ['outcome'],
      registers,
    }),
    sends: new Counter({
      name: 'holdfast_sends_total',
      help: 'Send job runs by channel and outcome: sent, uncertain, rejected, failed (will retry)',
      labelNames: ['channel', 'outcome'],
      registers,
    }),
    mediaFetches: new Counter({
      name: 'holdfast_media_fetches_total',
      help: 'Media job runs by outcome: captured, existing (already captured), failed',
      labelNames: ['outcome'],
      registers,
    }),
  };
  defined.set(registry, metrics);
  return metrics;
}

/**
 * Export `writer`'s spool as `service`: backlog and oldest age (read at scrape time) and every
 * fsync's duration. Returns a function that stops it.
 */
export function observeSpool(
  metrics: HoldfastMetrics,
  service: string,
  writer: Pick<EventWriter, 'stats' | 'observeSpoolFsyncs'>,
): () => void {
  const sources = spoolSources.get(metrics.registry)!;
  sources.set(service, writer);
  const stopFsyncs = writer.observeSpoolFsyncs((seconds) => metrics.spoolFsync.observe({ service }, seconds));
  return () => {
    if (sources.get(service) === writer) sources.delete(service);
    stopFsyncs();
  };
}

/**
 * Time every run of `worker`'s jobs into `holdfast_job_duration_seconds{queue,outcome}`, and tell
 * `onSettled` how each ended (with the job's result when it completed). Listens to the worker's
 * own events, so the processor needs no code for it. Returns a function that stops it.
 */
export function observeJobs<D, R>(
  metrics: HoldfastMetrics,
  worker: Worker<D, R>,
  queue: QueueName,
  onSettled?: (outcome: JobOutcome, result: R | undefined) => void,
): () => void {
  const record = (job: Job<D, R> | undefined, outcome: JobOutcome, result?: R) => {
    // BullMQ stamps processedOn when the run started, and finishedOn only when the job settled
    // for good; a run that is retried ends now.
    const started = job?.processedOn;
    if (typeof started === 'number') {
      const ended = typeof job?.finishedOn === 'number' ? job.finishedOn : Date.now();
      metrics.jobDuration.observe({ queue, outcome }, Math.max(0, (ended - started) / 1000));
    }
    try {
      onSettled?.(outcome, result);
    } catch {
      // Counting must never disturb the worker.
    }
  };
  const completed = (job: Job<D, R>, result: R) => record(job, 'completed', result);
  const failed = (job: Job<D, R> | undefined) =>
    record(job, typeof job?.finishedOn === 'number' ? 'failed' : 'retried');
  worker.on('completed', completed);
  worker.on('failed', failed);
  return () => {
    worker.off('completed', completed);
    worker.off('failed', failed);
  };
}

/** The archiver's worker: job durations and `holdfast_archive_writes_total`. */
export function observeArchiveJobs<D, R extends { created: boolean | number; existing?: number }>(
  metrics: HoldfastMetrics,
  worker: Worker<D, R>,
  queue: QueueName,
): () => void {
  return observeJobs(metrics, worker, queue, (outcome, result) => {
    // A batch counts its events (those it moved to jobs of their own are counted there).
    if (outcome === 'completed' && typeof result?.created === 'number') {
      if (result.created > 0) metrics.archiveWrites.inc({ outcome: 'created' }, result.created);
      if (result.existing) metrics.archiveWrites.inc({ outcome: 'existing' }, result.existing);
      return;
    }
    const write: ArchiveWriteOutcome =
      outcome !== 'completed' ? 'failed' : result?.created === false ? 'existing' : 'created';
    metrics.archiveWrites.inc({ outcome: write });
  });
}

/** The media fetcher's worker: job durations and `holdfast_media_fetches_total`. */
export function observeMediaJobs<D, R extends { created: boolean }>(
  metrics: HoldfastMetrics,
  worker: Worker<D, R>,
  queue: QueueName,
): () => void {
  return observeJobs(metrics, worker, queue, (outcome, result) => {
    const fetch: MediaFetchOutcome =
      outcome !== 'completed' ? 'failed' : result?.created === false ? 'existing' : 'captured';
    metrics.mediaFetches.inc({ outcome: fetch });
  });
}

/** One send job run's outcome, from the sender's processor (which alone tells a rejection apart). */
export function countSend(metrics: HoldfastMetrics, channel: string, outcome: SendMetricOutcome): void {
  metrics.sends.inc({ channel, outcome });
}
