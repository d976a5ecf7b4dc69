import {
  createLogger,
  discardedKeyOf,
  type EventEnvelope,
  type Logger,
  parseEvent,
  QUEUE_PREFIX,
  type QueueName,
} from '@holdfast/core';
import { Spool } from '@holdfast/spool';
import { FlowProducer, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { NotDurableError, ProducerClosedError } from './errors.ts';
import { createRedisConnection } from './redis-connection.ts';
import {
  COMPLETION_QUEUES,
  completionQueues,
  type Enqueue,
  enqueueFor,
  type Route,
  routeOf,
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
}

/** Enqueues allowed in flight behind acknowledged submits before a submit waits for one. */
const MAX_INFLIGHT_ENQUEUES = 1024;

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
 */
export class EventWriter {
  readonly #spool: Spool;
  readonly #redis: Redis;
  readonly #queues: Map<QueueName, Queue>;
  readonly #flows: FlowProducer;
  readonly #events = new Map<QueueName, { events: QueueEvents; connection: Redis }>();
  /** Unacknowledged event id -> the queues whose jobs have yet to complete before it is acknowledged. */
  readonly #pending = new Map<string, Set<QueueName>>();
  readonly #inflight = new Set<Promise<void>>();
  readonly #log: Logger;
  readonly #redisUrl: string;
  readonly #redeliverAfterMs: number;
  #timer: NodeJS.Timeout | undefined;
  #draining: Promise<DrainReport> | undefined;
  #closed = false;

  private constructor(
    spool: Spool,
    options: Required<Omit<EventWriterOptions, 'logger'>> & { logger: Logger },
  ) {
    this.#spool = spool;
    this.#log = options.logger;
    this.#redisUrl = options.redisUrl;
    this.#redeliverAfterMs = options.redeliverAfterMs;
    this.#redis = createRedisConnection(options.redisUrl, 'producer', 'holdfast-producer', options.logger);
    // Errors surface on each command; the drainer retries. Without a listener ioredis logs to stderr.
    // Whatever was accepted while Redis was away is due as soon as it is back.
    this.#redis.on('ready', () => void this.drain(0).catch(() => {}));
    const opts = { connection: this.#redis, prefix: QUEUE_PREFIX };
    this.#queues = new Map(COMPLETION_QUEUES.map((name) => [name, new Queue(name, opts)]));
    this.#flows = new FlowProducer(opts);
    // The connection logs outages once; without listeners BullMQ would print every failed command.
    const quiet = (error: Error) => this.#log.debug({ err: error.message }, 'queue client error');
    this.#flows.on('error', quiet);
    for (const queue of this.#queues.values()) queue.on('error', quiet);
    // Listen from the start: QueueEvents reads only events after it connects, so a listener
    // created on the first submit would miss completions that beat it.
    for (const queue of COMPLETION_QUEUES) this.#listen(queue);
    this.#timer = setInterval(() => void this.drain().catch(() => {}), options.drainIntervalMs);
    this.#timer.unref();
  }

  static async open(options: EventWriterOptions): Promise<EventWriter> {
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
    });
    for await (const record of spool.unacked()) {
      const { route, event } = decode(record.payload);
      writer.#track(event, route);
    }
    if (writer.#pending.size > 0) {
      logger.info(
        { backlog: writer.#pending.size },
        'spool has unacknowledged events from an earlier run; draining',
      );
      // Everything left from the previous run is due now: its process is gone.
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
    try {
      await this.#spool.append(event.id, encode({ route, event }));
    } catch (error) {
      throw new NotDurableError(error);
    }
    this.#track(event, route);
    // Fail fast while Redis is away: the event is durable, and the drainer enqueues it on reconnect.
    if (this.#redis.status !== 'ready') return;
    // The caller's acknowledgement is the fsync; the enqueue goes on behind it. Only when too
    // many enqueues are in flight does the caller wait for one (backpressure, bounded memory).
    // Started on the next turn of the event loop, so the acknowledgements of one fsync round (an
    // HTTP 200, a resolved promise) go out before the enqueues' serialisation work.
    const enqueued: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.#enqueueAll({ route, event }, this.#pending.get(event.id) ?? []))
      .catch((error: Error) => {
        this.#log.warn(
          { eventId: event.id, err: error.message },
          'enqueue failed; the spool keeps the event and the drainer will retry',
        );
      })
      .finally(() => this.#inflight.delete(enqueued));
    this.#inflight.add(enqueued);
    if (this.#inflight.size >= MAX_INFLIGHT_ENQUEUES) await Promise.race(this.#inflight);
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

  stats(): { backlog: number; spool: ReturnType<Spool['stats']> } {
    return { backlog: this.#pending.size, spool: this.#spool.stats() };
  }

  /** The spool's group-commit fdatasync durations, in seconds (see `Spool.observeFsyncs`). */
  observeSpoolFsyncs(observer: (seconds: number) => void): () => void {
    return this.#spool.observeFsyncs(observer);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await Promise.allSettled([...this.#inflight]);
    await this.#draining?.catch(() => {});
    await Promise.allSettled([...this.#events.values()].map(({ events }) => events.close()));
    for (const { connection } of this.#events.values()) connection.disconnect();
    await Promise.allSettled([this.#flows.close(), ...[...this.#queues.values()].map((q) => q.close())]);
    this.#redis.disconnect();
    await this.#spool.close();
  }

  async #drainOnce(olderThanMs: number): Promise<DrainReport> {
    const report: DrainReport = { acked: 0, requeued: 0, waiting: 0, failed: 0 };
    if (this.#redis.status !== 'ready') return report;
    // An id without a pending entry is being submitted right now: its submit enqueues it.
    const due = this.#spool
      .unackedIds(new Date(Date.now() - olderThanMs))
      .filter(({ id }) => this.#pending.has(id));
    /** Event id -> its queues whose job Redis does not have. */
    const missing = new Map<string, QueueName[]>();
    // One pipelined HMGET per job hash: O(1) each, unlike getJobState, which scans the wait
    // list and made a large backlog quadratic.
    for (let i = 0; i < due.length && !this.#closed; i += DRAIN_BATCH) {
      const lookups = due
        .slice(i, i + DRAIN_BATCH)
        .flatMap(({ id }) => [...(this.#pending.get(id) ?? [])].map((queue) => ({ id, queue })));
      const pipeline = this.#redis.pipeline();
      for (const { id, queue } of lookups)
        pipeline.hmget(`${QUEUE_PREFIX}:${queue}:${id}`, 'timestamp', 'finishedOn', 'failedReason');
      const results = (await pipeline.exec()) ?? [];
      for (const [j, { id, queue }] of lookups.entries()) {
        const [error, fields] = results[j] ?? [];
        if (error) throw error;
        const [created, finishedOn, failedReason] = fields as (string | null)[];
        if (!created) missing.set(id, [...(missing.get(id) ?? []), queue]);
        else if (finishedOn) {
          // Failed for good is finished too: the job, its payload and its error history are now
          // kept as a dead letter (never expiring) for a person to replay or discard.
          if (failedReason) report.failed++;
          if (await this.#completed(id, queue)) report.acked++;
        } else report.waiting++;
      }
    }
    // A job a person discarded from the dead letters is finished, not lost.
    if (missing.size > 0) {
      const pipeline = this.#redis.pipeline();
      const asked = [...missing].flatMap(([id, queues]) => queues.map((queue) => ({ id, queue })));
      for (const { id, queue } of asked) pipeline.exists(discardedKeyOf(queue, id));
      const results = (await pipeline.exec()) ?? [];
      for (const [j, { id, queue }] of asked.entries()) {
        if (results[j]?.[1] !== 1) continue;
        const rest = missing.get(id)!.filter((q) => q !== queue);
        if (rest.length > 0) missing.set(id, rest);
        else missing.delete(id);
        if (await this.#completed(id, queue)) report.acked++;
      }
    }
    if (missing.size > 0) {
      for await (const record of this.#spool.unacked(new Set(missing.keys()))) {
        if (this.#closed) break;
        const spooled = decode(record.payload);
        await this.#enqueueAll(spooled, missing.get(spooled.event.id) ?? []);
        report.requeued++;
      }
    }
    if (report.requeued > 0 || report.failed > 0) this.#log.info(report, 'spool drain pass');
    return report;
  }

  /** Add the jobs of `queues` (some of the event's completion queues); each add is idempotent. */
  async #enqueueAll({ route, event }: SpooledEvent, queues: Iterable<QueueName>): Promise<void> {
    for (const queue of queues) await this.#add(enqueueFor(route, event, queue));
  }

  async #add(enqueue: Enqueue): Promise<void> {
    if (enqueue.kind === 'flow') await this.#flows.add(enqueue.flow);
    else await this.#queues.get(enqueue.queue)!.add(enqueue.name, enqueue.data, enqueue.opts);
  }

  #track(event: EventEnvelope, route: Route): void {
    this.#pending.set(event.id, new Set(completionQueues(route, event)));
  }

  /** One of the event's jobs completed; true when that was the last and the event is acknowledged. */
  async #completed(id: string, queue: QueueName): Promise<boolean> {
    const remaining = this.#pending.get(id);
    if (!remaining?.delete(queue) || remaining.size > 0) return false;
    this.#pending.delete(id);
    await this.#spool.ack(id);
    return true;
  }

  /** Completions arrive as queue events; the drainer covers any this process missed. */
  #listen(queue: QueueName): void {
    if (this.#events.has(queue)) return;
    // BullMQ does not close a connection it was handed: keep it to close it ourselves.
    const connection = createRedisConnection(this.#redisUrl, 'worker', 'holdfast-events', this.#log);
    const events = new QueueEvents(queue, { connection, prefix: QUEUE_PREFIX });
    events.on('error', (error) => this.#log.debug({ err: error.message }, 'queue events connection error'));
    const finished = ({ jobId }: { jobId: string }) => {
      this.#completed(jobId, queue).catch((error) =>
        this.#log.warn({ eventId: jobId, err: error.message }, 'spool ack failed; the drainer will retry'),
      );
    };
    events.on('completed', finished);
    // Emitted once a job failed for good (not on a retry): it is a dead letter now.
    events.on('failed', finished);
    this.#events.set(queue, { events, connection });
  }
}

function encode(value: SpooledEvent): Uint8Array {
  return Buffer.from(JSON.stringify(value));
}

function decode(payload: Uint8Array): SpooledEvent {
  const value = JSON.parse(Buffer.from(payload).toString('utf8')) as { route: unknown; event: unknown };
  const route = routeOf(value.route);
  if (!route) throw new Error(`spool record has unknown route ${String(value.route)}`);
  return { route, event: parseEvent(value.event) };
}
