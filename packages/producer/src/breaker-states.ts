import { hostname } from 'node:os';
import { type Logger, QUEUE_PREFIX } from '@holdfast/core';
import type { Redis } from 'ioredis';
import type { Breaker, BreakerState } from './breaker.ts';

/**
 * Redis hash of every running process's breakers, for `holdfast status`: field
 * `<service>/<breaker>/<hostname>:<pid>`, value a JSON BreakerStateRecord.
 */
export const BREAKER_STATES_KEY = `${QUEUE_PREFIX}:breakers`;

/** A reader ignores entries not refreshed for this long (their process is gone). */
export const BREAKER_STATE_MAX_AGE_MS = 60_000;

/** Entries left by processes that died without closing are deleted once they are this old. */
const PRUNE_AFTER_MS = 10 * BREAKER_STATE_MAX_AGE_MS;
const BREAKER_STATES: readonly BreakerState[] = ['closed', 'half-open', 'open'];

/** The value of one field of `holdfast:breakers`. */
export interface BreakerStateRecord {
  service: string;
  breaker: string;
  state: BreakerState;
  /** ISO 8601: when the breaker entered this state. */
  since: string;
  /** ISO 8601: when the process last wrote it (refreshed while it lives). */
  updatedAt: string;
}

/** One breaker of one process, as `readBreakerStates` returns it. */
export interface BreakerStateEntry extends BreakerStateRecord {
  /** `<hostname>:<pid>` of the process. */
  instance: string;
}

export interface PublishBreakerStatesOptions {
  /** A worker-role connection (it waits out Redis outages; writes are best effort). */
  redis: Redis;
  breakers: readonly Breaker[];
  log: Logger;
  /** How often the entries are refreshed besides on every change. @defaultValue 15000 */
  refreshMs?: number;
  /** @defaultValue `<hostname>:<pid>` */
  instance?: string;
}

export interface BreakerStatePublisher {
  /** Resolves once the current states are written (tests; a status read right after a change). */
  flush(): Promise<void>;
  /** Stop, and delete this process's entries (bounded: a Redis that is down is not waited for). */
  close(): Promise<void>;
}

/**
 * Publish the breakers' states to `holdfast:breakers` on every change and every `refreshMs`
 * while the process lives, and remove them on close. A process that dies leaves entries whose
 * `updatedAt` stops moving: readers ignore them after a minute, and the next publisher to start
 * deletes them after ten.
 */
export function publishBreakerStates(options: PublishBreakerStatesOptions): BreakerStatePublisher {
  const { redis, breakers, log } = options;
  const instance = options.instance ?? `${hostname()}:${process.pid}`;
  const fieldOf = (b: Breaker) => `${b.service}/${b.name}/${instance}`;
  let dirty = false;
  let writing: Promise<void> | undefined;
  let closed = false;
  let failing = false;

  const write = async () => {
    while (dirty && !closed) {
      dirty = false;
      const updatedAt = new Date().toISOString();
      const fields: Record<string, string> = {};
      for (const b of breakers) {
        const record: BreakerStateRecord = {
          service: b.service,
          breaker: b.name,
          state: b.state,
          since: b.since.toISOString(),
          updatedAt,
        };
        fields[fieldOf(b)] = JSON.stringify(record);
      }
      try {
        await redis.hset(BREAKER_STATES_KEY, fields);
        failing = false;
      } catch (error) {
        // Once per run of failures: the connection already reports the outage itself.
        if (!failing) log.warn({ err: (error as Error).message }, 'could not publish breaker states');
        failing = true;
      }
    }
  };
  const flush = (): Promise<void> => {
    dirty = true;
    writing ??= write().finally(() => {
      writing = undefined;
    });
    return writing;
  };

  const unsubscribe = breakers.map((b) => b.onStateChange(() => void flush()));
  const timer = setInterval(() => void flush(), options.refreshMs ?? 15_000);
  timer.unref();
  void flush();
  void pruneDeparted(redis).catch(() => {});

  return {
    flush: async () => {
      if (!closed) await flush();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      for (const stop of unsubscribe) stop();
      const fields = breakers.map(fieldOf);
      if (fields.length === 0) return;
      await bounded(
        (async () => {
          await writing;
          await redis.hdel(BREAKER_STATES_KEY, ...fields);
        })(),
        2000,
      ).catch((error: Error) => log.warn({ err: error.message }, 'could not remove breaker states'));
    },
  };
}

/**
 * Every process's breakers as last published, oldest-looking ones (not refreshed within
 * `maxAgeMs`, their process is gone) left out; sorted by service, breaker, instance.
 */
export async function readBreakerStates(
  redis: Redis,
  options: { now?: Date; maxAgeMs?: number } = {},
): Promise<BreakerStateEntry[]> {
  const now = (options.now ?? new Date()).getTime();
  const maxAgeMs = options.maxAgeMs ?? BREAKER_STATE_MAX_AGE_MS;
  const entries: BreakerStateEntry[] = [];
  for (const [field, value] of Object.entries(await redis.hgetall(BREAKER_STATES_KEY))) {
    const record = parseRecord(value);
    if (!record || now - Date.parse(record.updatedAt) > maxAgeMs) continue;
    const instance = field.split('/').slice(2).join('/');
    entries.push({ ...record, instance });
  }
  const order = (e: BreakerStateEntry) => `${e.service}\u0000${e.breaker}\u0000${e.instance}`;
  return entries.sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

function parseRecord(value: string): BreakerStateRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  const r = parsed as Partial<BreakerStateRecord> | null;
  if (
    !r ||
    typeof r.service !== 'string' ||
    typeof r.breaker !== 'string' ||
    !BREAKER_STATES.includes(r.state as BreakerState) ||
    typeof r.since !== 'string' ||
    typeof r.updatedAt !== 'string' ||
    Number.isNaN(Date.parse(r.updatedAt))
  )
    return undefined;
  return { service: r.service, breaker: r.breaker, state: r.state!, since: r.since, updatedAt: r.updatedAt };
}

async function pruneDeparted(redis: Redis): Promise<void> {
  const now = Date.now();
  const stale = Object.entries(await redis.hgetall(BREAKER_STATES_KEY))
    .filter(([, value]) => {
      const record = parseRecord(value);
      return !record || now - Date.parse(record.updatedAt) > PRUNE_AFTER_MS;
    })
    .map(([field]) => field);
  if (stale.length > 0) await redis.hdel(BREAKER_STATES_KEY, ...stale);
}

function bounded<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
