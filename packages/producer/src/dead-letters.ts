import {
  DISCARDED_TTL_SECONDS,
  deadLetterQueueOf,
  discardedKeyOf,
  type Logger,
  QUEUE_PREFIX,
  QUEUES,
  type QueueName,
  ValidationError,
} from '@holdfast/core';
import { type FlowJob, FlowProducer, type Job, type JobsOptions, Queue, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { DeadLetterNotFoundError } from './errors.ts';
import { createRedisConnection } from './redis-connection.ts';
import { RedisScript } from './redis-script.ts';

/*
 * Dead letters: the jobs of each queue that failed for good (an UnrecoverableError, or every
 * attempt used up), kept until a person replays or discards them.
 *
 * Storage: plain Redis structures under `holdfast:dlq:<queue>` (see `deadLetterQueueOf`), not a
 * BullMQ queue that nothing consumes. A dead letter changes state (dead -> replayed -> dead again),
 * must be claimed atomically so two operators cannot replay it twice, is filtered by the time it
 * died, and carries an attempt history that grows while the job is still retrying: a hash per
 * entry, a sorted set by time of death per queue and a list per job do each of those in one
 * command or one small script. A job in an unconsumed queue would only hold the payload, could be
 * picked up by any worker started on that name, and answers none of those questions.
 *
 *   <ns>:dead              sorted set: job id -> when it died (ms); what `list` and `count` read
 *   <ns>:entry:<jobId>     hash: the entry (payload, options, reason, classification, times)
 *   <ns>:history:<jobId>   list: the attempt history, one JSON record per run of equal errors
 *
 * Dead entries have no TTL. A job's history is written from its first failure on (BullMQ keeps a
 * stack per attempt but no times) and expires `retainMs` after its last failure unless the job
 * dies; a replayed entry is kept `retainMs` after the replay (the operator event in the archive is
 * the permanent record) so that a second replay is reported as one.
 */

/** Why a job is dead: `permanent` (failed for good before its attempts ran out: an UnrecoverableError with the provider's reason, a failed child, too many stalls) or `exhausted` (every attempt failed). */
export type DeadLetterClass = 'permanent' | 'exhausted';

/** A run of consecutive attempts that failed with the same error. */
export interface DeadLetterAttempt {
  /** 1 for the job's first run, one more for each replay. */
  run: number;
  firstAttempt: number;
  lastAttempt: number;
  /** Attempts in this record. Gaps in attempt numbers are attempts not kept (see `MAX_HISTORY_RECORDS`). */
  count: number;
  /** When the first and the last of them failed; null when unknown (rebuilt from BullMQ's stack traces, which carry no times). */
  firstAt: string | null;
  lastAt: string | null;
  /** `Name: message` of the error, cut to 1,000 characters. */
  error: string;
}

/** A child job of a dead flow parent, kept so that a parent whose job is gone can be re-added as the same flow. */
export interface DeadLetterChild {
  queue: QueueName;
  jobId: string;
  name?: string;
  opts?: JobsOptions;
  /** Absent when it equals the parent's data (a send's archive child carries the same event). */
  data?: unknown;
}

export interface DeadLetterSummary {
  queue: QueueName;
  jobId: string;
  name: string;
  /** The event the job is about (`data.event.id`, or `data.eventId` for media jobs). */
  eventId?: string;
  /** `replayed` entries are no longer dead letters; they are kept for a while to report a second replay. */
  status: 'dead' | 'replayed';
  classification: DeadLetterClass;
  /** The final error (BullMQ's failedReason): for permanent failures, the provider's reason. */
  reason: string;
  /** Attempts made in the run that died, of `attempts` allowed. */
  attemptsMade: number;
  attempts: number;
  firstFailedAt: string;
  deadAt: string;
  replays: number;
  replayedAt?: string;
  replayedBy?: string;
}

export interface DeadLetter extends DeadLetterSummary {
  /** The job's payload: enough to run it again even when the failed job is gone. */
  data: unknown;
  /** The job options it is re-added with if the failed job is gone. */
  opts: JobsOptions;
  parent?: { queue: string; jobId: string };
  children: DeadLetterChild[];
  history: DeadLetterAttempt[];
}

export interface DeadLetterFilter {
  queue?: QueueName;
  /** A case-insensitive substring of the reason. */
  reason?: string;
  /** Only entries that died at or before this instant (`--older-than`). */
  deadBefore?: Date;
  /** Only entries that died at or after this instant (`--newer-than`). */
  deadAfter?: Date;
  /** At most this many, oldest first. */
  limit?: number;
}

export interface DeadLetterRef {
  queue: string;
  jobId: string;
}

/** Named entries (each must exist), or every dead entry a filter selects. */
export type DeadLetterSelection = { refs: readonly DeadLetterRef[] } | { filter: DeadLetterFilter };

export interface DeadLetterActionItem {
  queue: QueueName;
  jobId: string;
  name: string;
  eventId?: string;
  classification: DeadLetterClass;
  reason: string;
  deadAt: string;
  /** `retry`: the kept failed job runs again; `re-add`: the job is gone and is added again from the entry; `discard`: the entry (and the failed job) go. */
  action: 'retry' | 're-add' | 'discard' | 'none';
  /** `planned` in a dry run (and in what `beforeChange` receives). */
  status: 'planned' | 'done' | 'no-op' | 'error';
  detail: string;
}

export interface DeadLetterActionReport {
  operation: 'replay' | 'discard';
  dryRun: boolean;
  items: DeadLetterActionItem[];
}

export interface DeadLetterActionOptions {
  /** Report what would happen and change nothing. @defaultValue false */
  dryRun?: boolean;
  /** Who does it; recorded on replayed entries. @defaultValue 'unknown' */
  actor?: string;
  /**
   * Called once, before anything changes, with the items that will change (e.g. to archive the
   * operator event first). If it throws, nothing changes. Not called in a dry run or when there is
   * nothing to change.
   */
  beforeChange?: (items: readonly DeadLetterActionItem[]) => Promise<void>;
}

export interface DeadLettersOptions {
  /** The Redis to use; the caller keeps ownership. Either this or `redisUrl`. */
  redis?: Redis;
  /** Open a fail-fast connection of its own (closed by `close()`). */
  redisUrl?: string;
  log?: Logger;
  /** How long a retrying job's history is kept after its last failure, and a replayed entry after its replay. @defaultValue 30 days */
  retainMs?: number;
  /** A replay claimed this long ago whose job is still failed was interrupted (process died): the sweep makes it dead again. @defaultValue 5 minutes */
  claimGraceMs?: number;
}

export interface SweepReport {
  queue: QueueName;
  /** Jobs in the queue's failed set that were looked at. */
  checked: number;
  /** Dead entries written (jobs that died without one). */
  recorded: number;
  /** Interrupted replays made dead again. */
  reverted: number;
}

const ALL_QUEUES: readonly QueueName[] = Object.freeze(Object.values(QUEUES));
const DAY_MS = 24 * 3600 * 1000;
/**
 * At most this many history records per job: the first `KEEP_FIRST` and the latest. Equal errors
 * in a row are already one record, but an archive job retries for a week and an error that names
 * a request id differs every time: without a bound, a long outage would fill Redis.
 */
const MAX_HISTORY_RECORDS = 500;
const KEEP_FIRST = 50;
const ERROR_CHARS = 1000;
const SWEEP_PAGE = 500;

/** KEYS: history, entry. ARGV: attempt, at, error, retainMs, max records, keep first. */
const RECORD_ATTEMPT = new RedisScript(`
local attempt = tonumber(ARGV[1])
local run = (tonumber(redis.call('HGET', KEYS[2], 'replays')) or 0) + 1
local last = redis.call('LINDEX', KEYS[1], -1)
local r = last and cjson.decode(last)
if r and r.run == run and attempt <= r.lastAttempt then
  -- already recorded (the failed event and the sweep both saw this attempt)
elseif r and r.run == run and attempt == r.lastAttempt + 1 and r.error == ARGV[3] then
  r.lastAttempt = attempt
  r.count = r.count + 1
  r.lastAt = ARGV[2]
  redis.call('LSET', KEYS[1], -1, cjson.encode(r))
else
  redis.call('RPUSH', KEYS[1], cjson.encode({run = run, firstAttempt = attempt, lastAttempt = attempt,
    count = 1, firstAt = ARGV[2], lastAt = ARGV[2], error = ARGV[3]}))
  if redis.call('LLEN', KEYS[1]) > tonumber(ARGV[5]) then
    redis.call('LSET', KEYS[1], tonumber(ARGV[6]), '__elided__')
    redis.call('LREM', KEYS[1], 1, '__elided__')
  end
end
local status = redis.call('HGET', KEYS[2], 'status')
if status == 'dead' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  if status then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
end
return 1
`);

/** KEYS: entry, history, index. ARGV: jobId, deadAtMs, deadAt, then field/value pairs. */
const RECORD_DEATH = new RedisScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'dead' and redis.call('HGET', KEYS[1], 'deadAtMs') == ARGV[2] then return 0 end
if status == 'replayed' and (tonumber(redis.call('HGET', KEYS[1], 'replayedAtMs')) or 0) >= tonumber(ARGV[2]) then
  return 0 -- a death from before the replay, seen late
end
if redis.call('HEXISTS', KEYS[1], 'firstFailedAt') == 0 then
  local at = ARGV[3]
  local first = redis.call('LINDEX', KEYS[2], 0)
  if first then
    local r = cjson.decode(first)
    if type(r.firstAt) == 'string' then at = r.firstAt end
  end
  redis.call('HSET', KEYS[1], 'firstFailedAt', at)
end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'status', 'dead', 'deadAt', ARGV[3], 'deadAtMs', ARGV[2])
redis.call('HSETNX', KEYS[1], 'replays', '0')
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
return 1
`);

/**
 * KEYS: entry, history, index, replaying. ARGV: jobId, atMs, at, actor, retainMs. The claim that
 * makes a replay happen once. The claim stays in `replaying` until its job is known to be there:
 * a process that dies before adding a job that was gone leaves no failed job for the sweep to find.
 */
const CLAIM_REPLAY = new RedisScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'dead' then return status or 'missing' end
redis.call('HSET', KEYS[1], 'status', 'replayed', 'replayedAtMs', ARGV[2], 'replayedAt', ARGV[3], 'replayedBy', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'replays', 1)
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 'ok'
`);

/** KEYS: entry, history, index, replaying. ARGV: jobId, the claim's atMs. Undo a claim whose replay did not happen. */
const UNCLAIM_REPLAY = new RedisScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'replayed' or redis.call('HGET', KEYS[1], 'replayedAtMs') ~= ARGV[2] then
  redis.call('ZREM', KEYS[4], ARGV[1])
  return 0
end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'dead')
redis.call('HINCRBY', KEYS[1], 'replays', -1)
redis.call('HDEL', KEYS[1], 'replayedAt', 'replayedAtMs', 'replayedBy')
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[1], 'deadAtMs'), ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
return 1
`);

/**
 * KEYS: entry, history, index, the queue's BullMQ failed set. ARGV: jobId. Taking the job out of
 * the failed set in the same script means no replay can retry it and no sweep can record it again
 * between the entry going and the job going.
 */
const DISCARD = new RedisScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'dead' then return status or 'missing' end
local taken = redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if taken == 1 then return 'taken' end
return 'left'
`);

/** KEYS: entry, history. A job that completed needs no history, unless it is a replayed entry's. */
const FORGET_HISTORY = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('DEL', KEYS[2]) end
return 0
`);

/** KEYS: history, entry. ARGV: expected length, retainMs, records... Rewrite unless it changed meanwhile. */
const REPLACE_HISTORY = new RedisScript(`
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1])
if #ARGV > 2 then redis.call('RPUSH', KEYS[1], unpack(ARGV, 3)) end
if redis.call('HGET', KEYS[2], 'status') ~= 'dead' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`);

function keysOf(queue: QueueName, jobId: string) {
  const ns = deadLetterQueueOf(queue);
  return {
    entry: `${ns}:entry:${jobId}`,
    history: `${ns}:history:${jobId}`,
    index: `${ns}:dead`,
    replaying: `${ns}:replaying`,
  };
}

export function isQueueName(name: string): name is QueueName {
  return (ALL_QUEUES as readonly string[]).includes(name);
}

function checkQueue(name: string, path = 'queue'): QueueName {
  if (!isQueueName(name))
    throw new ValidationError('dead-letter selection', [
      { path, message: `unknown queue "${name}"; one of: ${ALL_QUEUES.join(', ')}` },
    ]);
  return name;
}

function cut(text: string): string {
  return text.length > ERROR_CHARS ? `${text.slice(0, ERROR_CHARS - 1)}…` : text;
}

function errorText(error: Error): string {
  return cut(`${error.name || 'Error'}: ${error.message}`);
}

/** The `Name: message` head of a stack trace (the message may span lines; frames start with "    at "). */
function stackHead(stack: string): string {
  const frame = stack.search(/\n\s+at /);
  return cut(frame === -1 ? stack : stack.slice(0, frame));
}

function allowedAttempts(job: Job): number {
  return Math.max(1, Number(job.opts.attempts ?? 1) || 1);
}

function eventIdOf(data: unknown): string | undefined {
  const d = data as { event?: { id?: unknown }; eventId?: unknown } | null;
  const id = d?.event?.id ?? d?.eventId;
  return typeof id === 'string' ? id : undefined;
}

/** The options a job is added again with: how it retries and is kept; never a delay, parent or schedule. */
const REPLAY_OPTIONS = [
  'attempts',
  'backoff',
  'lifo',
  'priority',
  'removeOnComplete',
  'removeOnFail',
  'keepLogs',
  'stackTraceLimit',
  'sizeLimit',
  'failParentOnFailure',
  'continueParentOnFailure',
  'ignoreDependencyOnFailure',
  'removeDependencyOnFailure',
] as const;

function replayOptions(opts: JobsOptions): JobsOptions {
  const out: Record<string, unknown> = {};
  for (const k of REPLAY_OPTIONS) if (opts[k] !== undefined) out[k] = opts[k];
  return out as JobsOptions;
}

/** `holdfast:archive:<id>` -> queue and id. */
function parseJobKey(key: string): { queue: string; jobId: string } | undefined {
  const rest = key.startsWith(`${QUEUE_PREFIX}:`) ? key.slice(QUEUE_PREFIX.length + 1) : undefined;
  const colon = rest?.indexOf(':') ?? -1;
  if (!rest || colon <= 0) return undefined;
  return { queue: rest.slice(0, colon), jobId: rest.slice(colon + 1) };
}

function parseHistory(raw: readonly string[]): DeadLetterAttempt[] {
  const out: DeadLetterAttempt[] = [];
  for (const line of raw) {
    try {
      const r = JSON.parse(line) as Partial<DeadLetterAttempt>;
      out.push({
        run: Number(r.run) || 1,
        firstAttempt: Number(r.firstAttempt) || 0,
        lastAttempt: Number(r.lastAttempt) || 0,
        count: Number(r.count) || 1,
        firstAt: typeof r.firstAt === 'string' ? r.firstAt : null,
        lastAt: typeof r.lastAt === 'string' ? r.lastAt : null,
        error: String(r.error ?? ''),
      });
    } catch {}
  }
  return out;
}

function parseJson<T>(text: string | undefined, fallback: T): T {
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

function parseEntry(hash: Record<string, string>, history: readonly string[] = []): DeadLetter | undefined {
  if (!hash.status || !hash.queue || !isQueueName(hash.queue) || !hash.jobId) return undefined;
  const data = parseJson<unknown>(hash.data, null);
  const entry: DeadLetter = {
    queue: hash.queue,
    jobId: hash.jobId,
    name: hash.name ?? '',
    status: hash.status === 'replayed' ? 'replayed' : 'dead',
    classification: hash.classification === 'exhausted' ? 'exhausted' : 'permanent',
    reason: hash.reason ?? '',
    attemptsMade: Number(hash.attemptsMade) || 0,
    attempts: Number(hash.attempts) || 1,
    firstFailedAt: hash.firstFailedAt ?? hash.deadAt ?? '',
    deadAt: hash.deadAt ?? '',
    replays: Number(hash.replays) || 0,
    data,
    opts: parseJson<JobsOptions>(hash.opts, {}),
    children: parseJson<DeadLetterChild[]>(hash.children, []),
    history: parseHistory(history),
  };
  const eventId = eventIdOf(data);
  if (eventId) entry.eventId = eventId;
  if (hash.replayedAt) entry.replayedAt = hash.replayedAt;
  if (hash.replayedBy) entry.replayedBy = hash.replayedBy;
  const parent = parseJson<DeadLetter['parent'] | null>(hash.parent, null);
  if (parent) entry.parent = parent;
  return entry;
}

export function summaryOf(e: DeadLetter): DeadLetterSummary {
  const { data: _data, opts: _opts, children: _children, history: _history, parent: _parent, ...summary } = e;
  return summary;
}

/** Consecutive records of one run with the same error and adjacent attempts become one; then the cap. */
function compactHistory(records: DeadLetterAttempt[]): DeadLetterAttempt[] {
  const out: DeadLetterAttempt[] = [];
  for (const r of records) {
    const last = out.at(-1);
    if (last && last.run === r.run && last.error === r.error && r.firstAttempt === last.lastAttempt + 1) {
      last.lastAttempt = r.lastAttempt;
      last.count += r.count;
      last.lastAt = r.lastAt ?? last.lastAt;
      last.firstAt = last.firstAt ?? r.firstAt;
    } else out.push({ ...r });
  }
  if (out.length <= MAX_HISTORY_RECORDS) return out;
  return [...out.slice(0, KEEP_FIRST), ...out.slice(out.length - (MAX_HISTORY_RECORDS - KEEP_FIRST))];
}

/**
 * The dead-letter queues of every Holdfast queue: recorded by each worker (see
 * `watchDeadLetters`, attached by `startQueueWorker`), read and acted on by `holdfast dlq` and
 * `holdfast status`.
 */
export class DeadLetters {
  readonly #redis: Redis;
  readonly #ownsRedis: boolean;
  readonly #log: Logger | undefined;
  readonly #retainMs: number;
  readonly #claimGraceMs: number;
  readonly #queues = new Map<QueueName, Queue>();
  #flows: FlowProducer | undefined;
  #connectionError: string | undefined;

  constructor(options: DeadLettersOptions) {
    if (!options.redis && !options.redisUrl)
      throw new ValidationError('dead-letter options', [
        { path: 'redis', message: 'give redis or redisUrl' },
      ]);
    this.#ownsRedis = !options.redis;
    this.#redis =
      options.redis ??
      new Redis(options.redisUrl!, { maxRetriesPerRequest: 2, connectionName: 'holdfast-dead-letters' });
    // Commands fail with their own error while Redis is away; this keeps why, for the message.
    if (this.#ownsRedis)
      this.#redis.on('error', (error: Error) => {
        this.#connectionError = error.message;
      });
    this.#log = options.log;
    this.#retainMs = options.retainMs ?? 30 * DAY_MS;
    this.#claimGraceMs = options.claimGraceMs ?? 5 * 60_000;
  }

  /** The last error of its own connection (e.g. `connect ECONNREFUSED …`), if any. */
  get connectionError(): string | undefined {
    return this.#connectionError;
  }

  #queue(name: QueueName): Queue {
    let queue = this.#queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.#redis, prefix: QUEUE_PREFIX });
      // Failures surface on each command; without a listener BullMQ would also print them.
      queue.on('error', () => {});
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Record one failed attempt of `job`; when it was the last (the job is failed for good), the dead entry too. */
  async recordFailure(queue: QueueName, job: Job, error: Error): Promise<void> {
    const jobId = String(job.id);
    const keys = keysOf(queue, jobId);
    const unrecoverable = error.name === 'UnrecoverableError';
    // moveToFailed sets finishedOn only when the job left for the failed set (BullMQ clears it on retry).
    const final =
      typeof job.finishedOn === 'number' || unrecoverable || job.attemptsMade >= allowedAttempts(job);
    // The last failure's time is BullMQ's own (the sweep reads the same); earlier ones have none.
    const at = new Date(final && typeof job.finishedOn === 'number' ? job.finishedOn : Date.now());
    await RECORD_ATTEMPT.run(
      this.#redis,
      [keys.history, keys.entry],
      [job.attemptsMade, at.toISOString(), errorText(error), this.#retainMs, MAX_HISTORY_RECORDS, KEEP_FIRST],
    );
    if (final) await this.#recordDeath(queue, job, unrecoverable, at.getTime());
  }

  /** A job completed: its attempt history is not needed (unless a replayed entry owns it). */
  async recordCompletion(queue: QueueName, job: Job): Promise<void> {
    // Only jobs that failed before have a history; skipping the rest keeps completions free.
    if (!job.failedReason && !job.stacktrace?.length) return;
    const keys = keysOf(queue, String(job.id));
    await FORGET_HISTORY.run(this.#redis, [keys.entry, keys.history], []);
  }

  async #recordDeath(queue: QueueName, job: Job, unrecoverable: boolean, deadAtMs: number): Promise<boolean> {
    const jobId = String(job.id);
    const keys = keysOf(queue, jobId);
    const attempts = allowedAttempts(job);
    const classification: DeadLetterClass =
      unrecoverable || job.attemptsMade < attempts ? 'permanent' : 'exhausted';
    const parentQueue = job.parent?.queueKey.startsWith(`${QUEUE_PREFIX}:`)
      ? job.parent.queueKey.slice(QUEUE_PREFIX.length + 1)
      : job.parent?.queueKey;
    const fields: Record<string, string> = {
      queue,
      jobId,
      name: job.name,
      classification,
      reason: job.failedReason ?? '',
      attemptsMade: String(job.attemptsMade),
      attempts: String(attempts),
      data: JSON.stringify(job.data ?? null),
      opts: JSON.stringify(replayOptions(job.opts)),
      parent: job.parent ? JSON.stringify({ queue: parentQueue, jobId: job.parent.id }) : '',
      children: JSON.stringify(await this.#childrenOf(job)),
    };
    const written = await RECORD_DEATH.run(
      this.#redis,
      [keys.entry, keys.history, keys.index],
      [jobId, deadAtMs, new Date(deadAtMs).toISOString(), ...Object.entries(fields).flat()],
    );
    if (written === 1)
      this.#log?.warn(
        { queue, jobId, classification, attemptsMade: job.attemptsMade, reason: fields.reason },
        'job failed for good: recorded as a dead letter',
      );
    return written === 1;
  }

  async #childrenOf(job: Job): Promise<DeadLetterChild[]> {
    const deps = await job.getDependencies().catch(() => undefined);
    if (!deps) return [];
    const keys = [
      ...Object.keys(deps.processed ?? {}),
      ...(deps.unprocessed ?? []),
      ...(deps.failed ?? []),
      ...Object.keys(deps.ignored ?? {}),
    ];
    const out: DeadLetterChild[] = [];
    const parentData = JSON.stringify(job.data ?? null);
    for (const key of new Set(keys)) {
      const ref = parseJobKey(key);
      if (!ref || !isQueueName(ref.queue)) continue;
      const child = await this.#queue(ref.queue).getJob(ref.jobId);
      const entry: DeadLetterChild = { queue: ref.queue, jobId: ref.jobId };
      if (child) {
        entry.name = child.name;
        entry.opts = replayOptions(child.opts);
        if (JSON.stringify(child.data ?? null) !== parentData) entry.data = child.data;
      }
      out.push(entry);
    }
    return out;
  }

  /**
   * Reconcile a queue's failed set with its dead entries: a job that failed for good while no
   * entry could be written (the process died between the two) gets one, its history rebuilt
   * from what was recorded and BullMQ's stack traces; a replay claimed but never carried out
   * (the process died between the two) is made dead again. Idempotent; safe to run anywhere.
   */
  async sweep(queue: QueueName): Promise<SweepReport> {
    const report: SweepReport = { queue, checked: 0, recorded: 0, reverted: 0 };
    const q = this.#queue(checkQueue(queue));
    for (let start = 0; ; start += SWEEP_PAGE) {
      const ids = await q.getRanges(['failed'], start, start + SWEEP_PAGE - 1, true);
      if (ids.length === 0) break;
      report.checked += ids.length;
      const pipeline = this.#redis.pipeline();
      for (const id of ids) pipeline.hmget(keysOf(queue, id).entry, 'status', 'replayedAtMs');
      const states = (await pipeline.exec()) ?? [];
      for (const [i, id] of ids.entries()) {
        const [status, replayedAtMs] = (states[i]?.[1] as (string | null)[] | undefined) ?? [];
        if (status === 'dead') continue;
        const job = await q.getJob(id);
        if (!job || typeof job.finishedOn !== 'number') continue;
        if (status === 'replayed') {
          const claimedAt = Number(replayedAtMs);
          if (job.finishedOn > claimedAt) {
            if (await this.#recordFromSweep(queue, job)) report.recorded++;
          } else if (Date.now() - claimedAt > this.#claimGraceMs) {
            const k = keysOf(queue, id);
            const undone = await UNCLAIM_REPLAY.run(
              this.#redis,
              [k.entry, k.history, k.index, k.replaying],
              [id, claimedAt],
            );
            if (undone === 1) {
              report.reverted++;
              this.#log?.warn({ queue, jobId: id }, 'a replay was claimed but never carried out: dead again');
            }
          }
        } else if (await this.#recordFromSweep(queue, job)) report.recorded++;
      }
      if (ids.length < SWEEP_PAGE) break;
    }
    report.reverted += await this.#sweepClaims(queue, q);
    return report;
  }

  /**
   * Replays claimed longer ago than the grace period: one whose job is there was carried out (it
   * is the failed set's business from now on); one whose job is not was never added (its process
   * died first) and is made dead again. Returns how many were.
   */
  async #sweepClaims(queue: QueueName, q: Queue): Promise<number> {
    const { replaying } = keysOf(queue, '');
    const claims = await this.#redis.zrangebyscore(
      replaying,
      '-inf',
      Date.now() - this.#claimGraceMs,
      'WITHSCORES',
    );
    let reverted = 0;
    for (let i = 0; i < claims.length; i += 2) {
      const [id, claimedAt] = [claims[i]!, claims[i + 1]!];
      if (await q.getJob(id)) {
        await this.#redis.zrem(replaying, id);
        continue;
      }
      const k = keysOf(queue, id);
      if (
        (await UNCLAIM_REPLAY.run(
          this.#redis,
          [k.entry, k.history, k.index, k.replaying],
          [id, claimedAt],
        )) === 1
      ) {
        reverted++;
        this.#log?.warn({ queue, jobId: id }, 'a replay was claimed but its job never added: dead again');
      }
    }
    return reverted;
  }

  async #recordFromSweep(queue: QueueName, job: Job): Promise<boolean> {
    const keys = keysOf(queue, String(job.id));
    const [replays, raw] = await Promise.all([
      this.#redis.hget(keys.entry, 'replays'),
      this.#redis.lrange(keys.history, 0, -1),
    ]);
    const run = (Number(replays) || 0) + 1;
    const history = parseHistory(raw);
    const covered = new Set<number>();
    for (const r of history)
      if (r.run === run) for (let a = r.firstAttempt; a <= r.lastAttempt; a++) covered.add(a);
    // Without `stackTraceLimit` BullMQ keeps one stack per failed attempt, across replays: the
    // last `attemptsMade` are this run's.
    const stacks = job.stacktrace ?? [];
    const offset = stacks.length - job.attemptsMade;
    const finishedAt = new Date(job.finishedOn!).toISOString();
    const missing: DeadLetterAttempt[] = [];
    for (let a = 1; a <= job.attemptsMade; a++) {
      if (covered.has(a)) continue;
      const stack = offset >= 0 ? stacks[offset + a - 1] : undefined;
      const last = a === job.attemptsMade;
      const error = stack ? stackHead(stack) : last ? cut(job.failedReason ?? '') : 'unknown (not recorded)';
      const at = last ? finishedAt : null;
      missing.push({ run, firstAttempt: a, lastAttempt: a, count: 1, firstAt: at, lastAt: at, error });
    }
    if (missing.length > 0) {
      const merged = compactHistory(
        [...history, ...missing].sort((x, y) => x.run - y.run || x.firstAttempt - y.firstAttempt),
      );
      await REPLACE_HISTORY.run(
        this.#redis,
        [keys.history, keys.entry],
        [raw.length, this.#retainMs, ...merged.map((r) => JSON.stringify(r))],
      );
    }
    const lastStack = offset >= 0 ? stacks.at(-1) : undefined;
    const unrecoverable = lastStack?.startsWith('UnrecoverableError') ?? false;
    return this.#recordDeath(queue, job, unrecoverable, job.finishedOn!);
  }

  async #entries(
    queue: QueueName,
    ids: readonly string[],
    withHistory: boolean,
  ): Promise<(DeadLetter | undefined)[]> {
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) {
      const k = keysOf(queue, id);
      pipeline.hgetall(k.entry);
      if (withHistory) pipeline.lrange(k.history, 0, -1);
    }
    const replies = (await pipeline.exec()) ?? [];
    const step = withHistory ? 2 : 1;
    return ids.map((_, i) => {
      const [error, hash] = replies[i * step] ?? [];
      if (error) throw error;
      const history = withHistory ? ((replies[i * step + 1]?.[1] as string[] | undefined) ?? []) : [];
      return parseEntry((hash ?? {}) as Record<string, string>, history);
    });
  }

  async #select(filter: DeadLetterFilter): Promise<DeadLetter[]> {
    if (filter.limit !== undefined && !(Number.isInteger(filter.limit) && filter.limit > 0))
      throw new ValidationError('dead-letter filter', [
        { path: 'limit', message: 'must be a positive integer' },
      ]);
    const queues = filter.queue ? [checkQueue(filter.queue)] : ALL_QUEUES;
    const min = filter.deadAfter ? filter.deadAfter.getTime() : '-inf';
    const max = filter.deadBefore ? filter.deadBefore.getTime() : '+inf';
    const needle = filter.reason?.toLowerCase();
    const out: DeadLetter[] = [];
    for (const queue of queues) {
      const ids = await this.#redis.zrangebyscore(keysOf(queue, '').index, min, max);
      for (const e of await this.#entries(queue, ids, false))
        if (e && e.status === 'dead' && (!needle || e.reason.toLowerCase().includes(needle))) out.push(e);
    }
    out.sort(
      (a, b) =>
        Date.parse(a.deadAt) - Date.parse(b.deadAt) ||
        ALL_QUEUES.indexOf(a.queue) - ALL_QUEUES.indexOf(b.queue) ||
        (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0),
    );
    return filter.limit ? out.slice(0, filter.limit) : out;
  }

  /** Dead entries (not replayed ones), oldest first. */
  async list(filter: DeadLetterFilter = {}): Promise<DeadLetterSummary[]> {
    return (await this.#select(filter)).map(summaryOf);
  }

  /** One entry, dead or replayed, with its payload and history and what became of its job; undefined if there is none. */
  async show(queue: string, jobId: string): Promise<(DeadLetter & { jobState: string }) | undefined> {
    const name = checkQueue(queue);
    const [entry] = await this.#entries(name, [jobId], true);
    if (!entry) return undefined;
    return { ...entry, jobState: await this.#queue(name).getJobState(jobId) };
  }

  /** Dead entries per queue (every queue, zeros included). */
  async counts(): Promise<Record<QueueName, number>> {
    const pipeline = this.#redis.pipeline();
    for (const q of ALL_QUEUES) pipeline.zcard(keysOf(q, '').index);
    const replies = (await pipeline.exec()) ?? [];
    return Object.fromEntries(ALL_QUEUES.map((q, i) => [q, Number(replies[i]?.[1]) || 0])) as Record<
      QueueName,
      number
    >;
  }

  async #resolve(selection: DeadLetterSelection): Promise<DeadLetter[]> {
    if ('filter' in selection) return this.#select(selection.filter);
    if (selection.refs.length === 0)
      throw new ValidationError('dead-letter selection', [
        { path: 'jobId', message: 'name at least one job' },
      ]);
    const out: DeadLetter[] = [];
    const missing: DeadLetterRef[] = [];
    const seen = new Set<string>();
    for (const ref of selection.refs) {
      const queue = checkQueue(ref.queue);
      if (seen.has(`${queue}\u0000${ref.jobId}`)) continue;
      seen.add(`${queue}\u0000${ref.jobId}`);
      const [entry] = await this.#entries(queue, [ref.jobId], false);
      if (entry) out.push(entry);
      else missing.push({ queue, jobId: ref.jobId });
    }
    if (missing.length > 0) throw new DeadLetterNotFoundError(missing);
    return out;
  }

  /**
   * Run dead jobs again with the same job id (their idempotency key). A kept failed job is retried
   * in place (`job.retry`, with a fresh attempt budget), which keeps its flow relations: a send
   * parent sees its completed archive child. A job that is gone is added again from the entry (a
   * flow parent with its children, so a completed child counts as done). Entries already replayed,
   * whose job is no longer failed, or whose children have not completed are left alone and
   * reported as no-ops; each replay is claimed atomically, so it happens once.
   */
  async replay(
    selection: DeadLetterSelection,
    options: DeadLetterActionOptions = {},
  ): Promise<DeadLetterActionReport> {
    const entries = await this.#resolve(selection);
    // Children before parents: in a failed flow the child is the one to run first.
    const ordered = [...entries.filter((e) => e.parent), ...entries.filter((e) => !e.parent)];
    const planned = await Promise.all(ordered.map(async (e) => [e, await this.#planReplay(e)] as const));
    return this.#act('replay', planned, options, (e, item) =>
      this.#applyReplay(e, item, options.actor ?? 'unknown'),
    );
  }

  /**
   * Remove dead entries. The failed job goes with its entry: kept, it would be found again by the
   * sweep (or retried by hand from a BullMQ console) and come back; the operator event archived
   * before the discard is the record of what was dropped. A job that is no longer failed (retried
   * outside Holdfast) is left alone and only its stale entry goes. Replayed entries are no-ops.
   */
  async discard(
    selection: DeadLetterSelection,
    options: DeadLetterActionOptions = {},
  ): Promise<DeadLetterActionReport> {
    const entries = await this.#resolve(selection);
    const planned = await Promise.all(
      entries.map(async (e): Promise<readonly [DeadLetter, DeadLetterActionItem]> => {
        if (e.status !== 'dead') return [e, this.#item(e, 'none', 'no-op', alreadyReplayed(e))];
        const state = await this.#queue(e.queue).getJobState(e.jobId);
        const detail =
          state === 'failed'
            ? 'the entry and its failed job are removed'
            : state === 'unknown'
              ? 'the entry is removed (its job is already gone)'
              : `the entry is removed; its job is ${state} and is left alone`;
        return [e, this.#item(e, 'discard', 'planned', detail)];
      }),
    );
    return this.#act('discard', planned, options, (e, item) => this.#applyDiscard(e, item));
  }

  async #act(
    operation: 'replay' | 'discard',
    planned: readonly (readonly [DeadLetter, DeadLetterActionItem])[],
    options: DeadLetterActionOptions,
    apply: (e: DeadLetter, item: DeadLetterActionItem) => Promise<DeadLetterActionItem>,
  ): Promise<DeadLetterActionReport> {
    const dryRun = options.dryRun ?? false;
    const items = planned.map(([, item]) => item);
    const changing = items.filter((i) => i.action !== 'none');
    if (dryRun || changing.length === 0) return { operation, dryRun, items };
    await options.beforeChange?.(changing);
    const done: DeadLetterActionItem[] = [];
    for (const [entry, item] of planned) done.push(item.action === 'none' ? item : await apply(entry, item));
    return { operation, dryRun, items: done };
  }

  #item(
    e: DeadLetter,
    action: DeadLetterActionItem['action'],
    status: DeadLetterActionItem['status'],
    detail: string,
  ): DeadLetterActionItem {
    return {
      queue: e.queue,
      jobId: e.jobId,
      name: e.name,
      ...(e.eventId ? { eventId: e.eventId } : {}),
      classification: e.classification,
      reason: e.reason,
      deadAt: e.deadAt,
      action,
      status,
      detail,
    };
  }

  async #planReplay(e: DeadLetter): Promise<DeadLetterActionItem> {
    if (e.status !== 'dead') return this.#item(e, 'none', 'no-op', alreadyReplayed(e));
    const queue = this.#queue(e.queue);
    const state = await queue.getJobState(e.jobId);
    if (state === 'unknown')
      return this.#item(
        e,
        're-add',
        'planned',
        'the failed job is gone: added again from the entry, same job id',
      );
    if (state !== 'failed') return this.#item(e, 'none', 'no-op', `its job is ${state}: not dead any more`);
    const job = await queue.getJob(e.jobId);
    const deps = job ? await job.getDependenciesCount({ unprocessed: true, failed: true }) : {};
    if (deps.failed)
      return this.#item(
        e,
        'none',
        'no-op',
        `${deps.failed} child job(s) failed: replay them first, then this one once they completed`,
      );
    if (deps.unprocessed)
      return this.#item(
        e,
        'none',
        'no-op',
        `waiting for ${deps.unprocessed} child job(s) to complete: replay it again once they have`,
      );
    return this.#item(e, 'retry', 'planned', 'the kept failed job runs again');
  }

  async #applyReplay(
    e: DeadLetter,
    item: DeadLetterActionItem,
    actor: string,
  ): Promise<DeadLetterActionItem> {
    const keys = keysOf(e.queue, e.jobId);
    const at = new Date();
    const claim = await CLAIM_REPLAY.run(
      this.#redis,
      [keys.entry, keys.history, keys.index, keys.replaying],
      [e.jobId, at.getTime(), at.toISOString(), actor, this.#retainMs],
    );
    if (claim !== 'ok')
      return {
        ...item,
        status: 'no-op',
        detail: claim === 'replayed' ? 'replayed meanwhile by someone else' : 'no longer a dead letter',
      };
    const queue = this.#queue(e.queue);
    try {
      const job = item.action === 'retry' ? await queue.getJob(e.jobId) : undefined;
      let done: DeadLetterActionItem;
      if (job) {
        // A fresh attempt budget: the operator replays because the cause was fixed.
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        done = { ...item, status: 'done', detail: 'the kept failed job runs again' };
      } else {
        await this.#reAdd(e);
        done = {
          ...item,
          action: 're-add',
          status: 'done',
          detail: 'added again from the entry, same job id',
        };
      }
      // Its job is there: the claim needs no more watching (the sweep would find that too).
      await this.#redis.zrem(keys.replaying, e.jobId).catch(() => {});
      return done;
    } catch (error) {
      await UNCLAIM_REPLAY.run(
        this.#redis,
        [keys.entry, keys.history, keys.index, keys.replaying],
        [e.jobId, at.getTime()],
      );
      const code = (error as { code?: unknown }).code;
      if (code === -3 || code === -1) {
        const state = await queue.getJobState(e.jobId);
        return { ...item, status: 'no-op', detail: `its job is ${state}: not dead any more` };
      }
      return { ...item, status: 'error', detail: (error as Error).message };
    }
  }

  async #reAdd(e: DeadLetter): Promise<void> {
    const opts: JobsOptions = { ...e.opts, jobId: e.jobId };
    const children = e.children.filter((c) => c.name !== undefined);
    if (children.length === 0) {
      await this.#queue(e.queue).add(e.name, e.data, opts);
      return;
    }
    // Re-adding the whole flow with the same child ids: BullMQ counts a child that is still there
    // and completed as done for the new parent, and runs again one that is gone (idempotent).
    const flow: FlowJob = {
      name: e.name,
      queueName: e.queue,
      prefix: QUEUE_PREFIX,
      data: e.data,
      opts,
      children: children.map((c) => ({
        name: c.name!,
        queueName: c.queue,
        prefix: QUEUE_PREFIX,
        data: 'data' in c ? c.data : e.data,
        opts: { ...c.opts, jobId: c.jobId },
      })),
    };
    this.#flows ??= new FlowProducer({ connection: this.#redis, prefix: QUEUE_PREFIX });
    await this.#flows.add(flow);
  }

  async #applyDiscard(e: DeadLetter, item: DeadLetterActionItem): Promise<DeadLetterActionItem> {
    const keys = keysOf(e.queue, e.jobId);
    const queue = this.#queue(e.queue);
    const outcome = await DISCARD.run(
      this.#redis,
      [keys.entry, keys.history, keys.index, queue.keys.failed!],
      [e.jobId],
    );
    if (outcome === 'taken') {
      // A spool that still holds the event must not bring the discarded job back.
      await this.#redis.set(
        discardedKeyOf(e.queue, e.jobId),
        new Date().toISOString(),
        'EX',
        DISCARDED_TTL_SECONDS,
      );
      // Out of the failed set already; this drops the job's data. Its children stay (a completed
      // archive child is the archive's business; a failed one has its own entry).
      await queue.remove(e.jobId, { removeChildren: false }).catch((error: unknown) => {
        this.#log?.warn(
          { queue: e.queue, jobId: e.jobId, err: (error as Error).message },
          'discarded job not removed',
        );
      });
      return { ...item, status: 'done', detail: 'the entry and its failed job were removed' };
    }
    if (outcome === 'left') return { ...item, status: 'done', detail: 'the entry was removed' };
    return {
      ...item,
      action: 'discard',
      status: 'no-op',
      detail: outcome === 'replayed' ? 'replayed meanwhile by someone else' : 'no longer a dead letter',
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    await this.#flows?.close();
    if (this.#ownsRedis) this.#redis.disconnect();
  }
}

function alreadyReplayed(e: DeadLetter): string {
  return `already replayed${e.replayedAt ? ` at ${e.replayedAt}` : ''}${e.replayedBy ? ` by ${e.replayedBy}` : ''}`;
}

export interface DeadLetterWatchOptions {
  queue: QueueName;
  redisUrl: string;
  /** Names the Redis connection and log lines, e.g. `holdfast-archiver`. */
  name: string;
  log: Logger;
  /** How often the queue's failed set is reconciled with its dead entries (also once at start). @defaultValue 300000 */
  sweepIntervalMs?: number;
}

export interface DeadLetterWatch {
  readonly deadLetters: DeadLetters;
  /** Reconcile now (see `DeadLetters.sweep`). */
  sweep(): Promise<SweepReport>;
  /** Stop sweeping and wait (at most `graceMs`) for writes in flight. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Record a worker's dead letters: every failed attempt into the job's history, and the entry when
 * the job fails for good (from the worker's `failed` event, which BullMQ emits for every attempt
 * once the failure is in Redis). What a crash between the two loses, the sweep (at start, then
 * every `sweepIntervalMs`) repairs.
 */
export function watchDeadLetters(worker: Worker, options: DeadLetterWatchOptions): DeadLetterWatch {
  const { queue, log } = options;
  const redis = createRedisConnection(options.redisUrl, 'worker', `${options.name}-dead-letters`, log);
  const deadLetters = new DeadLetters({ redis, log });
  const pending = new Set<Promise<unknown>>();
  let closed = false;
  const track = <T>(work: Promise<T>): Promise<T> => {
    pending.add(work);
    void work.finally(() => pending.delete(work)).catch(() => {});
    return work;
  };
  worker.on('failed', (job, error) => {
    if (!job || closed) return;
    track(deadLetters.recordFailure(queue, job, error)).catch((e: unknown) =>
      log.error(
        { queue, jobId: job.id, err: (e as Error).message },
        'dead-letter record failed; the sweep will repair it',
      ),
    );
  });
  worker.on('completed', (job) => {
    if (closed) return;
    track(deadLetters.recordCompletion(queue, job)).catch(() => {});
  });
  let sweeping: Promise<SweepReport> | undefined;
  const sweep = (): Promise<SweepReport> => {
    sweeping ??= track(deadLetters.sweep(queue)).finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  };
  const sweepQuietly = () => {
    if (closed) return;
    sweep()
      .then((r) => {
        if (r.recorded || r.reverted) log.warn({ ...r }, 'dead-letter sweep repaired entries');
      })
      .catch((e: unknown) =>
        log.warn({ queue, err: (e as Error).message }, 'dead-letter sweep failed; will retry'),
      );
  };
  sweepQuietly();
  const timer = setInterval(sweepQuietly, options.sweepIntervalMs ?? 300_000);
  timer.unref();
  return {
    deadLetters,
    sweep,
    async close(graceMs = 10_000) {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...pending]),
        new Promise((resolve) => {
          timeout = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timeout);
      // Without Redis the writes above never finish: what they missed, the next sweep records.
      await Promise.race([deadLetters.close(), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
      redis.disconnect();
    },
  };
}
