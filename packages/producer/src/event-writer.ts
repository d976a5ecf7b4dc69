import {
  type ArchiveBatchJobResult,
  archivedMarkerKey,
  createLogger,
  DEFAULT_SPOOL_MAX_BACKLOG,
  discardedKeyOf,
  type EventEnvelope,
  isArchivedMarker,
  type Logger,
  parseEvent,
  QUEUE_PREFIX,
  QUEUES,
  type QueueName,
  ValidationError,
} from '@holdfast/core';
import { Spool } from '@holdfast/spool';
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Ack, AckListener } from './ack-stream.ts';
import { BacklogFullError, NotDurableError, ProducerClosedError } from './errors.ts';
import { MAX_EVENT_BYTES, mebibytes } from './event-size.ts';
import { createRedisConnection } from './redis-connection.ts';
import {
  archiveBatchFor,
  COMPLETION_QUEUES,
  completionQueues,
  type Enqueue,
  enqueueFor,
  type Route,
  routeOf,
  travelsInBatches,
} from './routes.ts';

export interface EventWriterOptions {
  /** Directory of this process's spool. One process per directory. */
  spoolDir: string;
  redisUrl: string;
  logger?: Logger;
  /** An unacknowledged event older than this is looked up in Redis and re-enqueued if missing. @defaultValue 15000 */
  redeliverAfterMs?: number;
  /** How often the drainer runs. @defaultValue 5000 */
  drainIntervalMs?: number;
  /**
   * `submit` refuses new events (BacklogFullError) while this many are unacknowledged: a bound on
   * the memory a long outage downstream can take (about 0.6 KB each). Events already spooled are
   * kept and delivered whatever the bound. `HOLDFAST_SPOOL_MAX_BACKLOG`.
   * @defaultValue 250000
   */
  maxBacklog?: number;
  /**
   * How long a Redis command of this writer (an enqueue, a drain pass's lookups) may go
   * unanswered before it is abandoned. The event is durable in the spool already: the drainer
   * enqueues it again later (its job id is its event id, so nothing is added twice). Bounds how
   * long a hung Redis (connected, not answering) holds a submit that waits for the in-flight
   * enqueues to go down.
   * @defaultValue 5000
   */
  enqueueTimeoutMs?: number;
  /**
   * How long `close()` waits for enqueues and a drain pass still under way before it releases
   * Redis and the spool anyway; what they had not done is in the spool for the next start.
   * @defaultValue 10000
   */
  closeTimeoutMs?: number;
}

const DEFAULT_ENQUEUE_TIMEOUT_MS = 5_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/** Events whose enqueue may be in flight behind acknowledged submits before a submit waits for one. */
const MAX_INFLIGHT_ENQUEUES = 1024;

/**
 * The most events, and spooled bytes, one `archive-batch` job carries: a batch is one value in
 * Redis and one job the archiver holds whole, and a record may carry a document of megabytes
 * (such an event goes alone, as a plain job).
 */
const MAX_BATCH_EVENTS = 100;
const MAX_BATCH_BYTES = 1024 * 1024;
/**
 * How long an open batch waits for more events before it is added (a full one goes at once).
 * Its events are durable already, so this delays only their archiving. A sender's outcome
 * events arrive a few at a time, one send after another: without the wait a batch held ~2.
 */
const BATCH_LINGER_MS = 10;

/** True once a batch of `events` holding `bytes` must not take more. */
function batchFull(events: number, bytes: number): boolean {
  return events >= MAX_BATCH_EVENTS || bytes >= MAX_BATCH_BYTES;
}

/** True when an event of `more` bytes must start a new batch rather than join this one. */
function batchOverflows(events: number, bytes: number, more: number): boolean {
  return events > 0 && bytes + more > MAX_BATCH_BYTES;
}

/** How many job hashes one drain round trip looks up. */
const DRAIN_BATCH = 500;

interface SpooledEvent {
  route: Route;
  event: EventEnvelope;
}

export interface DrainReport {
  acked: number;
  requeued: number;
  waiting: number;
  failed: number;
}

/**
 * The write path after validation: append to the spool (fsync) -> acknowledge the caller ->
 * enqueue (jobId = event id) -> forget once the top job completed. A drainer re-enqueues what
 * Redis lost or never received, so an accepted event survives a Redis outage or a crash.
 *
 * Events that only need archiving are enqueued together: those acknowledged in one turn of the
 * event loop (one group commit of the spool, typically), or re-enqueued by one drain pass, share
 * an `archive-batch` job. Its id derives from its events, so adding the same batch twice is a
 * no-op; the drainer knows each event's batch while this process lives, and a restarted process
 * enqueues what its spool holds in new batches (the archiver's writes are idempotent).
 */
export class EventWriter {
  readonly #spool: Spool;
  readonly #redis: Redis;
  readonly #queues: Map<QueueName, Queue>;
  readonly #flows: FlowProducer;
  /** Where the workers report the jobs this writer added (`ackTo` on each): its spool's id. */
  readonly #writerId: string;
  readonly #acks: AckListener;
  /** Unacknowledged event id -> the queues whose jobs have yet to complete before it is acknowledged. */
  readonly #pending = new Map<string, Set<QueueName>>();
  readonly #inflight = new Set<Promise<void>>();
  /** Events whose submit-time enqueue is still to come or in flight: the drainer leaves them be. */
  readonly #enqueuing = new Set<string>();
  /** The batch archive-only events join; added when full, or BATCH_LINGER_MS after its first. */
  #openBatch: { events: SpooledEvent[]; bytes: number; send: () => void } | undefined;
  /** Batch job id -> its events not yet acknowledged. */
  readonly #batches = new Map<string, string[]>();
  /** Event id -> the batch job that archives it, while this process knows of one. */
  readonly #batchOf = new Map<string, string>();
  readonly #log: Logger;
  readonly #redeliverAfterMs: number;
  readonly #drainIntervalMs: number;
  readonly #maxBacklog: number;
  /** Submits between the backlog check and their spool append's outcome, counted against the bound. */
  #appending = 0;
  /** Submits from their append until their enqueue is under way: close() waits for them. */
  readonly #accepting = new Set<Promise<void>>();
  /** Whether the last submit was refused for the backlog: its start and end are logged once each. */
  #refusing = false;
  readonly #closeTimeoutMs: number;
  readonly #spoolDir: string;
  /**
   * Ids of spool records that cannot be read back as events (from an older version, or a bug):
   * left in the spool, unacknowledged, for a person; each is logged once.
   */
  readonly #undecodable = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #draining: Promise<DrainReport> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(
    spool: Spool,
    options: Required<Omit<EventWriterOptions, 'logger'>> & { logger: Logger },
  ) {
    this.#spool = spool;
    this.#writerId = spool.id;
    this.#log = options.logger;
    this.#redeliverAfterMs = options.redeliverAfterMs;
    this.#drainIntervalMs = options.drainIntervalMs;
    this.#maxBacklog = options.maxBacklog;
    this.#closeTimeoutMs = options.closeTimeoutMs;
    this.#spoolDir = options.spoolDir;
    // Queues and flows never block on this connection; the ack stream's blocking read has its own.
    this.#redis = createRedisConnection(options.redisUrl, 'producer', 'holdfast-producer', options.logger, {
      commandTimeoutMs: options.enqueueTimeoutMs,
    });
    const opts = { connection: this.#redis, prefix: QUEUE_PREFIX };
    this.#queues = new Map(COMPLETION_QUEUES.map((name) => [name, new Queue(name, opts)]));
    this.#flows = new FlowProducer(opts);
    // The connection logs outages once; without listeners BullMQ would print every failed command.
    const quiet = (error: Error) => this.#log.debug({ err: error.message }, 'queue client error');
    this.#flows.on('error', quiet);
    for (const queue of this.#queues.values()) queue.on('error', quiet);
    this.#acks = new AckListener({
      writerId: this.#writerId,
      redis: this.#redis,
      redisUrl: options.redisUrl,
      log: this.#log,
      onAck: (ack) => this.#acked(ack),
    });
  }

  /**
   * Starts the drainer once the earlier run's backlog is tracked: a pass started before that
   * would see part of it, and a later `drain(0)` would join that pass instead of covering all.
   */
  #startDraining(): void {
    // Whatever was accepted while Redis was away is due as soon as it is back.
    this.#redis.on('ready', () => void this.drain(0).catch(() => {}));
    this.#timer = setInterval(() => void this.drain().catch(() => {}), this.#drainIntervalMs);
    this.#timer.unref();
  }

  static async open(options: EventWriterOptions): Promise<EventWriter> {
    const {
      maxBacklog = DEFAULT_SPOOL_MAX_BACKLOG,
      enqueueTimeoutMs = DEFAULT_ENQUEUE_TIMEOUT_MS,
      closeTimeoutMs = DEFAULT_CLOSE_TIMEOUT_MS,
    } = options;
    const issues = Object.entries({ maxBacklog, enqueueTimeoutMs, closeTimeoutMs })
      .filter(([, value]) => !Number.isSafeInteger(value) || value < 1)
      .map(([path, value]) => ({ path, message: `must be a whole number of at least 1, not ${value}` }));
    if (issues.length > 0) throw new ValidationError('event writer options', issues);
    const logger = options.logger ?? createLogger({ name: 'holdfast-producer' });
    const spool = await Spool.open({
      dir: options.spoolDir,
      onCorruption: (c) =>
        logger.error(
          { corruption: c },
          'spool corruption found and quarantined; the quarantined bytes need a person',
        ),
    });
    const writer = new EventWriter(spool, {
      spoolDir: options.spoolDir,
      redisUrl: options.redisUrl,
      logger,
      redeliverAfterMs: options.redeliverAfterMs ?? 15_000,
      drainIntervalMs: options.drainIntervalMs ?? 5_000,
      maxBacklog,
      enqueueTimeoutMs,
      closeTimeoutMs,
    });
    try {
      for await (const record of spool.unacked()) {
        // One bad record must not keep the rest from being delivered, nor the producer from starting.
        const decoded = decode(record.payload);
        if (decoded.ok) writer.#track(decoded.value.event, decoded.value.route);
        else writer.#skipUndecodable(record.id, record.payload.byteLength, decoded.reason);
      }
    } catch (error) {
      await writer.close();
      throw error;
    }
    writer.#startDraining();
    if (writer.#pending.size > 0) {
      logger.info(
        { backlog: writer.#pending.size },
        'spool has unacknowledged events from an earlier run; draining',
      );
      // Everything left from the previous run is due now: its process is gone. (Until Redis is
      // ready this pass does nothing; the 'ready' listener runs it then.)
      void writer.drain(0).catch(() => {});
    }
    return writer;
  }

  /**
   * Resolves once the event is durable in the spool: that is the acknowledgement. Enqueueing
   * is attempted right away; if Redis is unreachable the drainer enqueues it later.
   */
  async submit(event: EventEnvelope, route: Route): Promise<void> {
    if (this.#closed) throw new ProducerClosedError();
    // Refuse what cannot be routed before it is written (a record sent as a message).
    completionQueues(route, event);
    this.#checkBacklog();
    const accepted = this.#accept(event, route);
    this.#accepting.add(accepted);
    try {
      await accepted;
    } finally {
      this.#accepting.delete(accepted);
    }
    if (this.#enqueuing.size >= MAX_INFLIGHT_ENQUEUES) await Promise.race(this.#inflight);
  }

  /** Appends the event to the spool, then starts its enqueue. */
  async #accept(event: EventEnvelope, route: Route): Promise<void> {
    const payload = encode({ route, event });
    // The spool would refuse it as well, but that is the caller's input, not a write to retry.
    if (payload.byteLength > MAX_EVENT_BYTES)
      throw new ValidationError('event', [
        {
          path: '',
          message:
            `the encoded event is ${payload.byteLength} bytes, more than one event may take ` +
            `(${MAX_EVENT_BYTES} bytes, ${mebibytes(MAX_EVENT_BYTES)}, the spool's record cap); nothing was written`,
        },
      ]);
    this.#appending++;
    try {
      await this.#spool.append(event.id, payload);
    } catch (error) {
      throw new NotDurableError(error);
    } finally {
      this.#appending--;
    }
    this.#track(event, route);
    // Fail fast while Redis is away: the event is durable, and the drainer enqueues it on reconnect.
    if (this.#redis.status !== 'ready') return;
    // The caller's acknowledgement is the fsync; the enqueue goes on behind it. Only when too
    // many enqueues are in flight does the caller wait for one (backpressure, bounded memory).
    // Started on the next turn of the event loop, so the acknowledgements of one fsync round (an
    // HTTP 200, a resolved promise) go out before the enqueues' serialisation work.
    this.#enqueuing.add(event.id);
    if (travelsInBatches(route)) this.#joinBatch({ route, event }, payload.byteLength);
    else
      this.#inBackground(
        () => [event.id],
        () => this.#enqueueAll({ route, event }, this.#pending.get(event.id) ?? []),
        (error) =>
          this.#log.warn(
            { eventId: event.id, err: error.message },
            'enqueue failed; the spool keeps the event and the drainer will retry',
          ),
      );
  }

  /** Refuses a new event while the spool holds its limit of unacknowledged ones. */
  #checkBacklog(): void {
    const backlog = this.#pending.size + this.#appending;
    if (backlog < this.#maxBacklog) {
      if (this.#refusing) {
        this.#refusing = false;
        this.#log.info(
          { backlog, maxBacklog: this.#maxBacklog },
          'spool backlog below its limit; accepting again',
        );
      }
      return;
    }
    if (!this.#refusing) {
      this.#refusing = true;
      this.#log.warn(
        { backlog, maxBacklog: this.#maxBacklog },
        'spool backlog at its limit (HOLDFAST_SPOOL_MAX_BACKLOG): refusing new events until downstream catches up',
      );
    }
    throw new BacklogFullError(backlog, this.#maxBacklog);
  }

  /**
   * Run `enqueue` on the next turn of the event loop, counted against the backpressure bound;
   * `ids` names its events once it is done (a batch takes events until it is sent).
   */
  #inBackground(
    ids: () => Iterable<string>,
    enqueue: () => Promise<void>,
    onError: (error: Error) => void,
    start: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve)),
  ): Promise<void> {
    const enqueued: Promise<void> = start
      .then(enqueue)
      .catch(onError)
      .finally(() => {
        this.#inflight.delete(enqueued);
        for (const id of ids()) this.#enqueuing.delete(id);
      });
    this.#inflight.add(enqueued);
    return enqueued;
  }

  #joinBatch(spooled: SpooledEvent, bytes: number): void {
    // What would overflow the open batch starts the next one (a large event goes alone).
    const open = this.#openBatch;
    if (open && batchOverflows(open.events.length, open.bytes, bytes)) {
      this.#openBatch = undefined;
      open.send();
    }
    if (!this.#openBatch) {
      const events: SpooledEvent[] = [];
      let send!: () => void;
      const due = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, BATCH_LINGER_MS);
        send = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#inBackground(
        () => events.map(({ event }) => event.id),
        async () => {
          if (this.#openBatch?.events === events) this.#openBatch = undefined;
          await this.#enqueueBatch(events);
        },
        (error) =>
          this.#log.warn(
            { events: events.length, err: error.message },
            'batch enqueue failed; the spool keeps its events and the drainer will retry',
          ),
        due,
      );
      this.#openBatch = { events, bytes: 0, send };
    }
    const batch = this.#openBatch;
    batch.events.push(spooled);
    batch.bytes += bytes;
    // A full batch goes at once; the next submit opens another.
    if (batchFull(batch.events.length, batch.bytes)) {
      this.#openBatch = undefined;
      batch.send();
    }
  }

  /** Adds `batch` as one job (a plain job when one event is left); returns a batch job's id. */
  async #enqueueBatch(batch: readonly SpooledEvent[]): Promise<string | undefined> {
    // Acknowledged meanwhile (a drain pass found a job of its own): nothing left to add.
    const events = batch.filter(({ event }) => this.#pending.get(event.id)?.has(QUEUES.archive));
    if (events.length === 0) return undefined;
    if (events.length === 1) {
      await this.#enqueueAll(events[0]!, [QUEUES.archive]);
      return undefined;
    }
    const enqueue = archiveBatchFor(events.map(({ event }) => event));
    const jobId = enqueue.opts.jobId!;
    // Known before the add is sent: its completion can arrive before the add's reply.
    const ids = events.map(({ event }) => event.id);
    this.#batches.set(jobId, ids);
    for (const id of ids) this.#batchOf.set(id, jobId);
    await this.#add(enqueue);
    return jobId;
  }

  /**
   * One reconciliation pass over the spool: acknowledge what completed, re-enqueue what Redis
   * does not know. Concurrent calls share one pass.
   */
  drain(olderThanMs = this.#redeliverAfterMs): Promise<DrainReport> {
    this.#draining ??= this.#drainOnce(olderThanMs).finally(() => {
      this.#draining = undefined;
    });
    return this.#draining;
  }

  /**
   * `backlog`: unacknowledged events; at `maxBacklog` new ones are refused. `undecodable`: spool
   * records that cannot be read back as events, kept in the spool (and in `spool.unacked`) for a
   * person; anything above 0 needs one.
   */
  stats(): {
    backlog: number;
    maxBacklog: number;
    undecodable: number;
    spool: ReturnType<Spool['stats']>;
  } {
    return {
      backlog: this.#pending.size,
      maxBacklog: this.#maxBacklog,
      undecodable: this.#undecodable.size,
      spool: this.#spool.stats(),
    };
  }

  /** The spool's group-commit fdatasync durations, in seconds (see `Spool.observeFsyncs`). */
  observeSpoolFsyncs(observer: (seconds: number) => void): () => void {
    return this.#spool.observeFsyncs(observer);
  }

  /** Idempotent: every call resolves once the shutdown has finished. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    clearInterval(this.#timer);
    // A submit already past its closed check still gets its event enqueued before Redis goes:
    // otherwise the event would wait in the spool for this process to start again. A Redis that
    // does not answer must not hold the process, though: after closeTimeoutMs what is left of
    // those enqueues is abandoned, and the events wait in the spool for the next start after all.
    const settled = async () => {
      while (this.#accepting.size > 0 || this.#inflight.size > 0)
        await Promise.allSettled([...this.#accepting, ...this.#inflight]);
      await this.#draining?.catch(() => {});
      return true;
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.#closeTimeoutMs);
    });
    if (!(await Promise.race([settled(), timedOut])))
      this.#log.warn(
        { enqueuing: this.#enqueuing.size, closeTimeoutMs: this.#closeTimeoutMs },
        'close: Redis did not answer in time; the spool keeps the unfinished enqueues for the next start',
      );
    clearTimeout(timer);
    await this.#acks.close();
    await Promise.allSettled([this.#flows.close(), ...[...this.#queues.values()].map((q) => q.close())]);
    this.#redis.disconnect();
    await this.#spool.close();
  }

  async #drainOnce(olderThanMs: number): Promise<DrainReport> {
    const report: DrainReport = { acked: 0, requeued: 0, waiting: 0, failed: 0 };
    if (this.#redis.status !== 'ready') return report;
    await this.#acks.keepAlive();
    // An id without a pending entry, or whose enqueue is under way, is being submitted right
    // now: its submit enqueues it.
    const due = this.#spool
      .unackedIds(new Date(Date.now() - olderThanMs))
      .filter(({ id }) => this.#pending.has(id) && !this.#enqueuing.has(id));
    /** Jobs Redis does not have. */
    const absent: JobLookup[] = [];
    // One pipelined HMGET per job hash: O(1) each, unlike getJobState, which scans the wait
    // list and made a large backlog quadratic.
    for (let i = 0; i < due.length && !this.#closed; i += DRAIN_BATCH) {
      const lookups = this.#jobsOf(due.slice(i, i + DRAIN_BATCH).map(({ id }) => id));
      const pipeline = this.#redis.pipeline();
      for (const { jobId, queue } of lookups)
        pipeline.hmget(
          `${QUEUE_PREFIX}:${queue}:${jobId}`,
          'timestamp',
          'finishedOn',
          'failedReason',
          'returnvalue',
        );
      const results = (await pipeline.exec()) ?? [];
      for (const [j, lookup] of lookups.entries()) {
        const [error, fields] = results[j] ?? [];
        if (error) throw error;
        const [created, finishedOn, failedReason, returnvalue] = fields as (string | null)[];
        if (!created) absent.push(lookup);
        else if (finishedOn) {
          // Failed for good is finished too: the job, its payload and its error history are now
          // kept as a dead letter (never expiring) for a person to replay or discard.
          if (failedReason) report.failed++;
          report.acked += await this.#jobFinished(
            lookup,
            failedReason ? undefined : parseResult(returnvalue),
          );
        } else report.waiting += lookup.ids.length;
      }
    }
    /** Event id -> its queues whose job Redis does not have. */
    const missing = new Map<string, QueueName[]>();
    // A job a person discarded from the dead letters is finished, not lost.
    if (absent.length > 0) {
      const pipeline = this.#redis.pipeline();
      for (const { jobId, queue } of absent) pipeline.exists(discardedKeyOf(queue, jobId));
      const results = (await pipeline.exec()) ?? [];
      for (const [j, lookup] of absent.entries()) {
        if (results[j]?.[1] === 1) {
          report.acked += await this.#jobFinished(lookup, undefined);
          continue;
        }
        // A lost batch is forgotten; its events not yet due are found missing on a later pass.
        this.#batches.delete(lookup.jobId);
        for (const id of lookup.ids) {
          if (this.#batchOf.get(id) === lookup.jobId) this.#batchOf.delete(id);
          missing.set(id, [...(missing.get(id) ?? []), lookup.queue]);
        }
      }
    }
    if (missing.size > 0) await this.#requeue(missing, report);
    if (report.requeued > 0 || report.failed > 0) this.#log.info(report, 'spool drain pass');
    return report;
  }

  /**
   * Enqueue again what Redis has no job for, read back from the spool in chunks; archive-only
   * events go in batches. An event the archiver marked archived is finished instead, whatever job
   * archived it: a batch of a process that has since restarted, or a completed job Redis removed.
   */
  async #requeue(missing: ReadonlyMap<string, QueueName[]>, report: DrainReport): Promise<void> {
    const batch: SpooledEvent[] = [];
    let bytes = 0;
    const sendBatch = async () => {
      const jobId = await this.#enqueueBatch(batch.splice(0));
      bytes = 0;
      // The same events make the same job: one an earlier process sent may have run already, and
      // adding it again did nothing, so no completion is coming. Look, as a drain pass would.
      if (jobId === undefined) return;
      const [finishedOn, failedReason, returnvalue] = await this.#redis.hmget(
        `${QUEUE_PREFIX}:${QUEUES.archive}:${jobId}`,
        'finishedOn',
        'failedReason',
        'returnvalue',
      );
      if (!finishedOn) return;
      const lookup = { jobId, queue: QUEUES.archive, ids: this.#batches.get(jobId) ?? [] };
      report.acked += await this.#jobFinished(lookup, failedReason ? undefined : parseResult(returnvalue));
    };
    const chunk: { spooled: SpooledEvent; size: number }[] = [];
    const settle = async () => {
      const asked = chunk.filter(({ spooled }) => missing.get(spooled.event.id)?.includes(QUEUES.archive));
      const pipeline = this.#redis.pipeline();
      for (const { spooled } of asked) pipeline.get(archivedMarkerKey(spooled.event));
      const results = asked.length > 0 ? ((await pipeline.exec()) ?? []) : [];
      const archived = new Set(
        asked
          .filter((_, k) => isArchivedMarker(results[k]?.[1] as string | null | undefined))
          .map(({ spooled }) => spooled.event.id),
      );
      for (const { spooled, size } of chunk.splice(0)) {
        const id = spooled.event.id;
        let queues = missing.get(id) ?? [];
        if (archived.has(id)) {
          if (await this.#completed(id, QUEUES.archive)) report.acked++;
          queues = queues.filter((q) => q !== QUEUES.archive);
        }
        if (queues.length === 0) continue;
        report.requeued++;
        if (!travelsInBatches(spooled.route)) {
          await this.#enqueueAll(spooled, queues);
          continue;
        }
        if (batchOverflows(batch.length, bytes, size)) await sendBatch();
        batch.push(spooled);
        bytes += size;
        if (batchFull(batch.length, bytes)) await sendBatch();
      }
    };
    for await (const record of this.#spool.unacked(new Set(missing.keys()))) {
      if (this.#closed) break;
      const decoded = decode(record.payload);
      if (!decoded.ok) {
        // Skipped, not acknowledged: its submit's own job may still complete it.
        this.#skipUndecodable(record.id, record.payload.byteLength, decoded.reason);
        continue;
      }
      chunk.push({ spooled: decoded.value, size: record.payload.byteLength });
      if (chunk.length >= DRAIN_BATCH) await settle();
    }
    await settle();
    if (batch.length > 0) await sendBatch();
  }

  /** Add the jobs of `queues` (some of the event's completion queues); each add is idempotent. */
  async #enqueueAll({ route, event }: SpooledEvent, queues: Iterable<QueueName>): Promise<void> {
    for (const queue of queues) await this.#add(enqueueFor(route, event, queue));
  }

  /** Adds the job(s), the one this writer waits for addressed to it (a flow's child is not). */
  async #add(enqueue: Enqueue): Promise<void> {
    const ackTo = this.#writerId;
    if (enqueue.kind === 'flow')
      await this.#flows.add({ ...enqueue.flow, data: { ...enqueue.flow.data, ackTo } });
    else await this.#queues.get(enqueue.queue)!.add(enqueue.name, { ...enqueue.data, ackTo }, enqueue.opts);
  }

  /** The jobs that `ids` wait for: each event's own, or the batch an archive write is part of. */
  #jobsOf(ids: readonly string[]): JobLookup[] {
    const lookups: JobLookup[] = [];
    const batches = new Map<string, JobLookup>();
    for (const id of ids) {
      for (const queue of this.#pending.get(id) ?? []) {
        const batch = queue === QUEUES.archive ? this.#batchOf.get(id) : undefined;
        if (batch === undefined) {
          lookups.push({ jobId: id, queue, ids: [id] });
          continue;
        }
        let lookup = batches.get(batch);
        if (!lookup) {
          lookup = { jobId: batch, queue, ids: [] };
          batches.set(batch, lookup);
          lookups.push(lookup);
        }
        lookup.ids.push(id);
      }
    }
    return lookups;
  }

  /**
   * A job finished (completed, failed for good, or discarded). Acknowledges its events, except
   * those a batch moved to jobs of their own; returns how many events that acknowledged.
   */
  async #jobFinished(lookup: JobLookup, result: unknown): Promise<number> {
    const batch = this.#batches.get(lookup.jobId);
    if (lookup.queue !== QUEUES.archive || batch === undefined) {
      let acked = 0;
      for (const id of lookup.ids) if (await this.#completed(id, lookup.queue)) acked++;
      return acked;
    }
    this.#batches.delete(lookup.jobId);
    const split = new Set((result as Partial<ArchiveBatchJobResult> | undefined)?.split ?? []);
    let acked = 0;
    for (const id of batch) {
      // Moved to a job of its own by the drainer, or by the archiver (split): that job acknowledges it.
      if (this.#batchOf.get(id) !== lookup.jobId) continue;
      this.#batchOf.delete(id);
      if (!split.has(id) && (await this.#completed(id, QUEUES.archive))) acked++;
    }
    return acked;
  }

  #track(event: EventEnvelope, route: Route): void {
    this.#pending.set(event.id, new Set(completionQueues(route, event)));
  }

  /**
   * Leaves a record that does not decode in the spool, unacknowledged, and says so once: at error
   * level, for a person, and without its body (an archive's logs must not hold what it archives).
   */
  #skipUndecodable(id: string, bytes: number, reason: string): void {
    if (this.#undecodable.has(id)) return;
    this.#undecodable.add(id);
    this.#log.error(
      { eventId: id, bytes, reason, spoolDir: this.#spoolDir },
      'spool record cannot be read back as an event: skipped and kept in the spool, unacknowledged, for a person to inspect',
    );
  }

  /** One of the event's jobs completed; true when that was the last and the event is acknowledged. */
  async #completed(id: string, queue: QueueName): Promise<boolean> {
    const remaining = this.#pending.get(id);
    if (!remaining?.delete(queue) || remaining.size > 0) return false;
    try {
      await this.#spool.ack(id);
    } catch (error) {
      // Still unacknowledged: the drainer must go on seeing it, and the job it waits for.
      remaining.add(queue);
      throw error;
    }
    if (this.#pending.get(id) === remaining) this.#pending.delete(id);
    this.#undecodable.delete(id);
    return true;
  }

  /** A worker reported a job this writer added; the drainer covers any report that never came. */
  #acked({ queue, jobId, failed, split }: Ack): void {
    if (!(COMPLETION_QUEUES as readonly string[]).includes(queue)) return;
    // A batch of an earlier run is unknown here: its events were enqueued again at open.
    const ids = this.#batches.get(jobId) ?? [jobId];
    const result: Partial<ArchiveBatchJobResult> | undefined = failed ? undefined : { split };
    this.#jobFinished({ jobId, queue: queue as QueueName, ids }, result).catch((error) =>
      this.#log.warn({ jobId, err: error.message }, 'spool ack failed; the drainer will retry'),
    );
  }
}

/** A job the drainer looks up, with the events waiting for it. */
interface JobLookup {
  jobId: string;
  queue: QueueName;
  ids: string[];
}

function parseResult(returnvalue: string | null | undefined): unknown {
  if (!returnvalue) return undefined;
  try {
    return JSON.parse(returnvalue) as unknown;
  } catch {
    return undefined;
  }
}

function encode(value: SpooledEvent): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

/**
 * A spool record read back as the event it holds, or why it cannot be: a reason that quotes none
 * of its content (a JSON parser's message would).
 */
function decode(payload: Uint8Array): { ok: true; value: SpooledEvent } | { ok: false; reason: string } {
  let value: { route?: unknown; event?: unknown } | null;
  try {
    value = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  const route = routeOf(value?.route);
  if (!route) return { ok: false, reason: 'no known route' };
  try {
    return { ok: true, value: { route, event: parseEvent(value?.event) } };
  } catch (error) {
    // A ValidationError names the failing fields and what they should be, never their values.
    return { ok: false, reason: error instanceof ValidationError ? error.message : 'not an event' };
  }
}
