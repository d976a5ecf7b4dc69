import { ACK_STREAM_MAX_LEN, ACK_STREAM_TTL_SECONDS, ackStreamKeyOf, type Logger } from '@holdfast/core';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedisConnection } from './redis-connection.ts';

/** A finished job as its writer hears of it. */
export interface Ack {
  queue: string;
  jobId: string;
  /** The job failed for good (it is a dead letter now) rather than completed. */
  failed: boolean;
  /** Events the job handed on to jobs of their own (a batch's `split`): not finished by it. */
  split: string[];
}

/**
 * Tells the writer that added `job` that it has finished: completed, or failed for good. Jobs
 * added without an address (by hand, by a replay of an old dead letter) are skipped, and so is a
 * writer that is gone: its stream has expired or was deleted, and `NOMKSTREAM` does not bring
 * it back.
 */
export async function sendAck(
  client: Redis,
  queue: string,
  job: Job,
  outcome: { failed: true } | { failed: false; result: unknown },
): Promise<void> {
  const ackTo = (job.data as { ackTo?: unknown } | undefined)?.ackTo;
  if (typeof ackTo !== 'string' || job.id === undefined) return;
  const fields = ['queue', queue, 'job', job.id];
  if (outcome.failed) fields.push('failed', '1');
  else {
    const split = (outcome.result as { split?: unknown } | undefined)?.split;
    if (Array.isArray(split) && split.length > 0) fields.push('split', JSON.stringify(split));
  }
  await client.xadd(ackStreamKeyOf(ackTo), 'NOMKSTREAM', 'MAXLEN', '~', ACK_STREAM_MAX_LEN, '*', ...fields);
}

/**
 * The reading end: one writer's stream, read from its first entry on a connection of its own
 * (a blocking read). Unlike a listener on a queue's event stream, nothing that finished before
 * the first read is missed: the entries wait in the stream. The address is the spool's id, so a
 * restarted writer reads what finished while it was down; the stream is kept when the writer
 * closes and expires once no writer has kept it alive for `ACK_STREAM_TTL_SECONDS`.
 */
export class AckListener {
  readonly key: string;
  readonly #redis: Redis;
  readonly #reader: Redis;
  readonly #onAck: (ack: Ack) => void;
  readonly #log: Logger;
  #lastId = '0-0';
  #closed = false;
  readonly #loop: Promise<void>;
  /** Settles when close() is called: the read loop never waits on Redis past that. */
  readonly #stopped: Promise<'stopped'>;
  #stop!: () => void;

  /**
   * `redis` (the writer's own connection) creates the stream and keeps it alive; the listener
   * opens its reading connection itself.
   */
  constructor(options: {
    writerId: string;
    redis: Redis;
    redisUrl: string;
    log: Logger;
    onAck: (ack: Ack) => void;
  }) {
    this.key = ackStreamKeyOf(options.writerId);
    this.#redis = options.redis;
    this.#onAck = options.onAck;
    this.#log = options.log;
    this.#reader = createRedisConnection(options.redisUrl, 'worker', 'holdfast-acks', options.log);
    this.#stopped = new Promise((resolve) => {
      this.#stop = () => resolve('stopped');
    });
    // Workers only append to a stream that exists; it must exist before this writer's first job
    // (commands on one connection run in order, and jobs are added on this one once it is ready).
    // After a Redis restart that lost it, it is made again (the acks it lost: the drainer's).
    this.#redis.on('ready', () => void this.keepAlive().catch(() => {}));
    this.#loop = this.#read();
  }

  /**
   * Drops the entries already read, creates the stream if it is missing (with an entry naming no
   * job, which readers skip) and pushes its expiry out. Called on every (re)connect and drain pass.
   */
  async keepAlive(): Promise<void> {
    if (this.#closed || this.#redis.status !== 'ready') return;
    await this.#redis
      .multi()
      .xtrim(this.key, 'MINID', this.#lastId)
      .xadd(this.key, '*', 'alive', String(Date.now()))
      .expire(this.key, ACK_STREAM_TTL_SECONDS)
      .exec();
  }

  async #read(): Promise<void> {
    while (!this.#closed) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        const read = this.#reader.xread('COUNT', 1000, 'BLOCK', 5000, 'STREAMS', this.key, this.#lastId);
        // A read queued while the connection is reconnecting never settles once it is cut.
        read.catch(() => undefined);
        const settled = await Promise.race([read, this.#stopped]);
        if (settled === 'stopped') return;
        reply = settled as [string, [string, string[]][]][] | null;
      } catch (error) {
        if (this.#closed) return;
        this.#log.debug({ err: (error as Error).message }, 'ack stream read failed; retrying');
        await Promise.race([new Promise((resolve) => setTimeout(resolve, 500)), this.#stopped]);
        continue;
      }
      for (const [, entries] of reply ?? []) {
        for (const [id, fields] of entries) {
          this.#lastId = id;
          const ack = parseAck(fields);
          if (ack) this.#onAck(ack);
        }
      }
    }
  }

  /** Stops reading. The stream stays for the next run on this spool (or until it expires). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
    this.#reader.disconnect();
    await this.#loop;
  }
}

function parseAck(fields: string[]): Ack | undefined {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
  const queue = map.get('queue');
  const jobId = map.get('job');
  if (queue === undefined || jobId === undefined) return undefined;
  const raw = map.get('split');
  if (raw === undefined) return { queue, jobId, failed: map.get('failed') === '1', split: [] };
  try {
    const split = JSON.parse(raw) as unknown;
    if (Array.isArray(split) && split.every((id) => typeof id === 'string'))
      return { queue, jobId, failed: false, split };
  } catch {
    // falls through
  }
  // A malformed list must not acknowledge anything by mistake: the job is left to the drainer.
  return undefined;
}
