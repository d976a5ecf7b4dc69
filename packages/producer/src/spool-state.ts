import { hostname } from 'node:os';
import { type Logger, QUEUE_PREFIX } from '@holdfast/core';
import type { Redis } from 'ioredis';
import type { EventWriter } from './event-writer.ts';

/**
 * Redis hash of every running process's spool state, field `<service>/<host>:<pid>`. A spool is a
 * local file of its process; this is how `holdfast status` sees all of them from anywhere.
 */
export const SPOOL_STATE_KEY = `${QUEUE_PREFIX}:spools`;

/** One process's spool as it last published it (the hash field's JSON value). */
export interface PublishedSpoolState {
  service: string;
  host: string;
  pid: number;
  /** Accepted events not yet acknowledged downstream. */
  backlog: number;
  /** The backlog at which the spool refuses new events (absent from processes older than it). */
  maxBacklog?: number;
  /** Append time of the oldest of them; null when there is none. */
  oldestUnackedAt: string | null;
  updatedAt: string;
}

export interface SpoolStateOptions {
  /** The service whose spool this is, e.g. `ingest`. */
  service: string;
  writer: Pick<EventWriter, 'stats'>;
  /** The caller keeps ownership; it must still be open when `close()` runs. */
  redis: Redis;
  log: Logger;
  /** How often the state is published. @defaultValue 15000 */
  intervalMs?: number;
  /** Fields of processes that stopped publishing this long ago are removed. @defaultValue 1 hour */
  pruneAfterMs?: number;
}

export interface SpoolStatePublisher {
  /** This process's field in `holdfast:spools`. */
  readonly field: string;
  /** Publish now (also done every `intervalMs`). */
  publish(): Promise<void>;
  /** Stop publishing and remove this process's field (a clean stop leaves nothing behind). */
  close(): Promise<void>;
}

/** How long `close()` waits for Redis to take the field away; a crash leaves it to go stale anyway. */
const CLOSE_TIMEOUT_MS = 1000;

/**
 * Publish `writer`'s spool backlog and oldest unacknowledged age to `holdfast:spools` now and
 * every `intervalMs` until closed. Readers treat an entry not updated for a minute as gone.
 */
export function publishSpoolState(options: SpoolStateOptions): SpoolStatePublisher {
  const intervalMs = options.intervalMs ?? 15_000;
  const pruneAfterMs = options.pruneAfterMs ?? 3_600_000;
  const host = hostname();
  const field = `${options.service}/${host}:${process.pid}`;
  const { redis, log } = options;
  let inflight: Promise<void> | undefined;
  let closed = false;

  const publishOnce = async (): Promise<void> => {
    // A worker connection queues commands while Redis is away: publishing then would pile up.
    if (redis.status !== 'ready') return;
    const stats = options.writer.stats();
    const now = new Date();
    const state: PublishedSpoolState = {
      service: options.service,
      host,
      pid: process.pid,
      backlog: stats.backlog,
      maxBacklog: stats.maxBacklog,
      oldestUnackedAt: stats.spool.oldestUnackedAt?.toISOString() ?? null,
      updatedAt: now.toISOString(),
    };
    await redis.hset(SPOOL_STATE_KEY, field, JSON.stringify(state));
    // Pods come and go with new names: the fields of those long gone are dropped.
    const gone = Object.entries(await redis.hgetall(SPOOL_STATE_KEY))
      .filter(([, value]) => {
        const updatedAt = Date.parse(parseState(value)?.updatedAt ?? '');
        return !(now.getTime() - updatedAt <= pruneAfterMs);
      })
      .map(([name]) => name);
    if (gone.length > 0) await redis.hdel(SPOOL_STATE_KEY, ...gone);
  };

  const publish = (): Promise<void> => {
    if (closed) return Promise.resolve();
    inflight ??= publishOnce()
      .catch((error: Error) => log.debug({ err: error.message }, 'spool state not published'))
      .finally(() => {
        inflight = undefined;
      });
    return inflight;
  };

  const timer = setInterval(() => void publish(), intervalMs);
  timer.unref();
  void publish();

  return {
    field,
    publish,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await inflight;
      if (redis.status !== 'ready') return;
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        redis.hdel(SPOOL_STATE_KEY, field).catch(() => {}),
        new Promise<void>((resolve) => {
          timeout = setTimeout(resolve, CLOSE_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timeout);
    },
  };
}

/** What `holdfast:spools` holds now: entries updated within `maxAgeMs`, and the stale rest. */
export async function readSpoolStates(
  redis: Redis,
  options: { maxAgeMs?: number; now?: Date } = {},
): Promise<{ live: PublishedSpoolState[]; stale: PublishedSpoolState[] }> {
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const now = (options.now ?? new Date()).getTime();
  const live: PublishedSpoolState[] = [];
  const stale: PublishedSpoolState[] = [];
  for (const value of Object.values(await redis.hgetall(SPOOL_STATE_KEY))) {
    const state = parseState(value);
    if (!state) continue;
    (now - Date.parse(state.updatedAt) <= maxAgeMs ? live : stale).push(state);
  }
  const order = (a: PublishedSpoolState, b: PublishedSpoolState) =>
    a.service.localeCompare(b.service) || a.host.localeCompare(b.host) || a.pid - b.pid;
  return { live: live.sort(order), stale: stale.sort(order) };
}

function parseState(value: string): PublishedSpoolState | undefined {
  try {
    const parsed = JSON.parse(value) as Partial<PublishedSpoolState>;
    if (
      typeof parsed.service !== 'string' ||
      typeof parsed.host !== 'string' ||
      typeof parsed.pid !== 'number' ||
      typeof parsed.backlog !== 'number' ||
      typeof parsed.updatedAt !== 'string' ||
      Number.isNaN(Date.parse(parsed.updatedAt)) ||
      (parsed.oldestUnackedAt !== null && typeof parsed.oldestUnackedAt !== 'string')
    )
      return undefined;
    return parsed as PublishedSpoolState;
  } catch {
    return undefined;
  }
}
