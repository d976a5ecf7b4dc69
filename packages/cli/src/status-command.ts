import { listPauses } from '@holdfast/archiver';
import { ConfigError, loadConfig, QUEUE_PREFIX, type QueueName, UNCERTAIN_SENDS_KEY } from '@holdfast/core';
import {
  DeadLetters,
  type PublishedSpoolState,
  type QueueStatus,
  readQueueStatus,
  readSpoolStates,
} from '@holdfast/producer';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { parseDuration } from './dlq-commands.ts';

/** Hash of every process's breakers (published by each service): field `<service>/<breaker>/<host>:<pid>`. */
const BREAKERS_KEY = `${QUEUE_PREFIX}:breakers`;
/** Published state not refreshed for this long belongs to a process that is gone. */
const FRESH_MS = 60_000;
/** `status` exits with this when it has warnings: scripts and probes can tell "look at me" from "failed". */
export const STATUS_WARNING_EXIT_CODE = 2;
const DEFAULT_MAX_SPOOL_AGE = '5m';

export type StatusWarningKind =
  | 'redis-eviction'
  | 'redis-persistence'
  | 'redis-aof'
  | 'redis-persistence-failing'
  | 'dead-letters'
  | 'breaker-open'
  | 'email-paused'
  | 'queue-paused'
  | 'spool-backlog'
  | 'spool-full'
  | 'spool-silent'
  | 'send-uncertain';

export interface StatusWarning {
  kind: StatusWarningKind;
  message: string;
}

export interface RedisSettings {
  /** `host:port` (never the credentials a REDIS_URL may carry). */
  address: string;
  version: string | null;
  /** null when neither CONFIG nor INFO tells (a managed Redis may hide CONFIG). */
  maxmemoryPolicy: string | null;
  appendonly: boolean | null;
  /** The `save` setting: RDB snapshot points, `""` when there are none; null when CONFIG is refused. */
  save: string | null;
  /** `aof`, `rdb`, `aof+rdb`, `off`, or `unknown`. */
  persistence: 'aof' | 'rdb' | 'aof+rdb' | 'off' | 'unknown';
  aofLastWriteStatus: string | null;
  rdbLastBgsaveStatus: string | null;
  /** Why CONFIG GET could not be used, when it could not. */
  configError?: string;
}

export interface BreakerStatus {
  service: string;
  breaker: string;
  /** `<host>:<pid>` of the process. */
  instance: string;
  state: string;
  since: string;
  updatedAt: string;
}

export interface PauseStatus {
  project: string;
  /** `''` when unknown (an unreadable record). */
  since: string;
  trigger: string;
  pausedBy: string;
  reason: string;
  /**
   * What is wrong with the pause record when the key holds something else (set by hand): the key
   * alone pauses the project's email, so it is listed all the same.
   */
  unreadable?: string;
}

export interface SpoolStatus extends PublishedSpoolState {
  /** Seconds since the oldest unacknowledged event was accepted; null when there is none. */
  oldestAgeSeconds: number | null;
}

export interface StatusReport {
  at: string;
  redis: RedisSettings;
  queues: (QueueStatus & { dead: number })[];
  spools: SpoolStatus[];
  /** Spool states no process refreshed in the last minute (crashed or stopped without closing). */
  silentSpools: SpoolStatus[];
  breakers: BreakerStatus[];
  /** Breaker entries no process refreshed in the last minute. */
  staleBreakers: BreakerStatus[];
  pauses: PauseStatus[];
  /** Sends of unknown outcome that the at-most-once policy did not resend, in the last 7 days. */
  uncertainSends: { count: number; latest: { channel: string; eventId: string; at: string }[] };
  warnings: StatusWarning[];
}

/** Everything `holdfast status` reports, read from Redis alone. */
export async function collectStatus(
  redis: Redis,
  options: { redisUrl: string; maxSpoolAgeMs: number; now?: Date },
): Promise<StatusReport> {
  const now = options.now ?? new Date();
  const dead = new DeadLetters({ redis });
  try {
    const [settings, queues, deadCounts, spoolStates, breakers, pauses, uncertainSends] = await Promise.all([
      readRedisSettings(redis, options.redisUrl),
      readQueueStatus(redis),
      dead.counts(),
      readSpoolStates(redis, { maxAgeMs: FRESH_MS, now }),
      readBreakers(redis, now),
      listPauses(redis),
      readUncertainSends(redis, now),
    ]);
    const withAge = (s: PublishedSpoolState): SpoolStatus => ({
      ...s,
      oldestAgeSeconds:
        s.oldestUnackedAt === null
          ? null
          : Math.max(0, Math.round((now.getTime() - Date.parse(s.oldestUnackedAt)) / 1000)),
    });
    const report: StatusReport = {
      at: now.toISOString(),
      redis: settings,
      queues: queues.map((q) => ({ ...q, dead: deadCounts[q.queue as QueueName] ?? 0 })),
      spools: spoolStates.live.map(withAge),
      silentSpools: spoolStates.stale.map(withAge),
      breakers: breakers.live,
      staleBreakers: breakers.stale,
      pauses: pauses.map((p) => ({
        project: p.project,
        since: p.since,
        trigger: p.trigger,
        pausedBy: p.pausedBy,
        reason: p.reason,
        ...(p.unreadable === undefined ? {} : { unreadable: p.unreadable }),
      })),
      uncertainSends,
      warnings: [],
    };
    report.warnings = warningsOf(report, options.maxSpoolAgeMs);
    return report;
  } finally {
    await dead.close();
  }
}

const UNCERTAIN_WINDOW_MS = 7 * 24 * 3600 * 1000;

async function readUncertainSends(redis: Redis, now: Date): Promise<StatusReport['uncertainSends']> {
  const since = now.getTime() - UNCERTAIN_WINDOW_MS;
  const [count, latest] = await Promise.all([
    redis.zcount(UNCERTAIN_SENDS_KEY, since, '+inf'),
    redis.zrevrangebyscore(UNCERTAIN_SENDS_KEY, '+inf', since, 'WITHSCORES', 'LIMIT', 0, 10),
  ]);
  const entries: StatusReport['uncertainSends']['latest'] = [];
  for (let i = 0; i < latest.length; i += 2) {
    const [channel = '', eventId = ''] = latest[i]!.split('/');
    entries.push({ channel, eventId, at: new Date(Number(latest[i + 1])).toISOString() });
  }
  return { count, latest: entries };
}

/** A spool this full of its backlog limit is warned about before it starts refusing. */
const SPOOL_FULL_WARNING = 0.8;

/** What on-call must look at, most dangerous first. */
export function warningsOf(report: StatusReport, maxSpoolAgeMs: number): StatusWarning[] {
  const warnings: StatusWarning[] = [];
  const warn = (kind: StatusWarningKind, message: string) => warnings.push({ kind, message });
  const { redis } = report;
  if (redis.maxmemoryPolicy !== 'noeviction') {
    warn(
      'redis-eviction',
      redis.maxmemoryPolicy === null
        ? `Redis maxmemory-policy could not be read (${redis.configError ?? 'no answer'}): Holdfast needs noeviction, check it by hand`
        : `Redis maxmemory-policy is ${redis.maxmemoryPolicy}, not noeviction: under memory pressure Redis DELETES keys, queued jobs included. Set maxmemory-policy noeviction`,
    );
  }
  if (redis.persistence === 'off') {
    warn(
      'redis-persistence',
      'Redis persistence is OFF (no AOF, no RDB save points): a Redis restart loses every queued job, dead letter, pause and marker. Set appendonly yes',
    );
  } else if (redis.persistence === 'rdb') {
    warn(
      'redis-aof',
      'Redis AOF is off (RDB snapshots only): a crash loses everything since the last snapshot. Holdfast expects appendonly yes',
    );
  } else if (redis.persistence === 'unknown') {
    warn(
      'redis-persistence',
      `Redis persistence could not be read (${redis.configError ?? 'no answer'}): Holdfast needs AOF, check it by hand`,
    );
  }
  for (const [name, status] of [
    ['AOF write', redis.aofLastWriteStatus],
    ['RDB save', redis.rdbLastBgsaveStatus],
  ] as const) {
    if (status !== null && status !== 'ok')
      warn('redis-persistence-failing', `Redis's last ${name} failed (${status}): see the Redis log`);
  }

  const dead = report.queues.filter((q) => q.dead > 0);
  if (dead.length > 0) {
    const total = dead.reduce((n, q) => n + q.dead, 0);
    warn(
      'dead-letters',
      `${total} dead letter(s) (${dead.map((q) => `${q.queue} ${q.dead}`).join(', ')}): see holdfast dlq list`,
    );
  }
  for (const b of report.breakers.filter((b) => b.state === 'open')) {
    warn(
      'breaker-open',
      `breaker ${b.breaker} of ${b.service} on ${b.instance} is OPEN since ${b.since} (${ago(b.since, report.at)})`,
    );
  }
  for (const p of report.pauses) {
    warn(
      'email-paused',
      p.unreadable === undefined
        ? `${p.project}: outbound email PAUSED since ${p.since} (${p.trigger}): see holdfast pause status`
        : `${p.project}: outbound email PAUSED by a key whose record is unreadable (${p.unreadable}): see holdfast pause status`,
    );
  }
  if (report.uncertainSends.count > 0) {
    warn(
      'send-uncertain',
      `${report.uncertainSends.count} send(s) in the last 7 days may not have gone out (the provider cannot be asked and the channel is at-most-once, so they were not resent; each has an archived message.send-uncertain event): decide whether to send them again`,
    );
  }
  for (const q of report.queues.filter((q) => q.paused)) {
    warn('queue-paused', `queue ${q.queue} is paused: nothing takes its jobs`);
  }
  for (const s of report.spools) {
    // Most dangerous first: at its limit a spool refuses what it is sent.
    if (s.maxBacklog !== undefined && s.backlog >= SPOOL_FULL_WARNING * s.maxBacklog) {
      warn(
        'spool-full',
        s.backlog >= s.maxBacklog
          ? `${s.service} on ${s.host}:${s.pid} is REFUSING new events: its spool holds ${s.backlog}, its limit (HOLDFAST_SPOOL_MAX_BACKLOG=${s.maxBacklog}); see why nothing drains it (Redis, the workers)`
          : `${s.service} on ${s.host}:${s.pid} holds ${s.backlog} of the ${s.maxBacklog} unacknowledged events its spool takes before refusing new ones (HOLDFAST_SPOOL_MAX_BACKLOG)`,
      );
    }
    // From the timestamps, not the rounded seconds shown: 1.4 s is older than --max-spool-age 1s.
    const ageMs = s.oldestUnackedAt === null ? null : Date.parse(report.at) - Date.parse(s.oldestUnackedAt);
    if (ageMs !== null && ageMs > maxSpoolAgeMs) {
      warn(
        'spool-backlog',
        `${s.service} on ${s.host}:${s.pid} has ${s.backlog} event(s) not yet archived, the oldest accepted ${ago(s.oldestUnackedAt!, report.at)}`,
      );
    }
  }
  for (const s of report.silentSpools.filter((s) => s.backlog > 0)) {
    warn(
      'spool-silent',
      `${s.service} on ${s.host}:${s.pid} stopped reporting ${ago(s.updatedAt, report.at)} with ${s.backlog} event(s) in its spool: restart it on the same spool directory so it drains`,
    );
  }
  return warnings;
}

async function readRedisSettings(redis: Redis, redisUrl: string): Promise<RedisSettings> {
  const info = parseInfo(await redis.info());
  const settings: RedisSettings = {
    address: addressOf(redisUrl),
    version: info.redis_version ?? null,
    maxmemoryPolicy: info.maxmemory_policy ?? null,
    appendonly: info.aof_enabled === undefined ? null : info.aof_enabled === '1',
    save: null,
    persistence: 'unknown',
    aofLastWriteStatus: info.aof_last_write_status ?? null,
    rdbLastBgsaveStatus: info.rdb_last_bgsave_status ?? null,
  };
  try {
    const config = async (name: string) => {
      const [, value] = (await redis.call('CONFIG', 'GET', name)) as string[];
      if (value === undefined) throw new Error(`CONFIG GET ${name} answered nothing`);
      return value;
    };
    const [policy, appendonly, save] = await Promise.all([
      config('maxmemory-policy'),
      config('appendonly'),
      config('save'),
    ]);
    settings.maxmemoryPolicy = policy;
    settings.appendonly = appendonly === 'yes';
    settings.save = save;
  } catch (error) {
    // Managed Redis services often rename or refuse CONFIG: INFO still tells the policy and AOF.
    settings.configError = (error as Error).message;
  }
  // The AOF being on is enough; without it only RDB save points keep anything (unknown if unread).
  const rdb = settings.save === null ? null : settings.save.trim() !== '';
  settings.persistence =
    settings.appendonly === true
      ? rdb
        ? 'aof+rdb'
        : 'aof'
      : settings.appendonly === false && rdb !== null
        ? rdb
          ? 'rdb'
          : 'off'
        : 'unknown';
  return settings;
}

async function readBreakers(
  redis: Redis,
  now: Date,
): Promise<{ live: BreakerStatus[]; stale: BreakerStatus[] }> {
  const live: BreakerStatus[] = [];
  const stale: BreakerStatus[] = [];
  for (const [field, value] of Object.entries(await redis.hgetall(BREAKERS_KEY))) {
    const entry = breakerOf(field, value);
    if (!entry) continue;
    (now.getTime() - Date.parse(entry.updatedAt) <= FRESH_MS ? live : stale).push(entry);
  }
  const order = (a: BreakerStatus, b: BreakerStatus) =>
    a.service.localeCompare(b.service) ||
    a.breaker.localeCompare(b.breaker) ||
    a.instance.localeCompare(b.instance);
  return { live: live.sort(order), stale: stale.sort(order) };
}

/** One `holdfast:breakers` entry, or undefined when it is not one (written by something else). */
function breakerOf(field: string, value: string): BreakerStatus | undefined {
  try {
    const parsed = JSON.parse(value) as Record<string, unknown>;
    const { service, breaker, state, since, updatedAt } = parsed;
    if (
      typeof service !== 'string' ||
      typeof breaker !== 'string' ||
      typeof state !== 'string' ||
      typeof since !== 'string' ||
      typeof updatedAt !== 'string' ||
      Number.isNaN(Date.parse(updatedAt))
    )
      return undefined;
    const prefix = `${service}/${breaker}/`;
    const instance = field.startsWith(prefix) ? field.slice(prefix.length) : field;
    return { service, breaker, instance, state, since, updatedAt };
  } catch {
    return undefined;
  }
}

function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

function addressOf(redisUrl: string): string {
  try {
    const url = new URL(redisUrl);
    return `${url.hostname}:${url.port || '6379'}`;
  } catch {
    return 'redis';
  }
}

function ago(iso: string, nowIso: string): string {
  const s = Math.max(0, Math.round((Date.parse(nowIso) - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

function age(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

function table(headers: readonly string[], rows: readonly (readonly string[])[], right = 0): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  // Columns from `right` on are numbers: aligned right.
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right > 0 && i >= right ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** The one screen on-call reads first. */
export function renderStatus(report: StatusReport): string {
  const out: string[] = [];
  const r = report.redis;
  out.push(`holdfast status at ${report.at}`, '');
  out.push(
    table(
      ['QUEUE', 'WAITING', 'CHILDREN', 'ACTIVE', 'DELAYED', 'FAILED', 'COMPLETED', 'DEAD'],
      report.queues.map((q) => [
        q.paused ? `${q.queue} (paused)` : q.queue,
        ...[q.waiting, q.waitingChildren, q.active, q.delayed, q.failed, q.completed, q.dead].map(String),
      ]),
      1,
    ),
    '',
  );
  out.push(
    report.spools.length === 0
      ? 'SPOOLS  none reporting (no service is running, or none has published yet)'
      : table(
          ['SPOOL', 'BACKLOG', 'OLDEST', 'UPDATED'],
          report.spools.map((s) => [
            `${s.service} ${s.host}:${s.pid}`,
            String(s.backlog),
            age(s.oldestAgeSeconds),
            ago(s.updatedAt, report.at),
          ]),
          1,
        ),
  );
  if (report.silentSpools.length > 0)
    out.push(`  (${report.silentSpools.length} more stopped reporting over a minute ago)`);
  out.push('');
  out.push(
    report.breakers.length === 0
      ? 'BREAKERS  none reporting'
      : table(
          ['BREAKER', 'INSTANCE', 'STATE', 'SINCE'],
          report.breakers.map((b) => [
            `${b.service}/${b.breaker}`,
            b.instance,
            b.state === 'closed' ? b.state : b.state.toUpperCase(),
            `${b.since} (${ago(b.since, report.at)})`,
          ]),
        ),
  );
  out.push('');
  out.push(
    report.pauses.length === 0
      ? 'EMAIL PAUSES  none'
      : table(
          ['PAUSED PROJECT', 'SINCE', 'BY', 'REASON'],
          report.pauses.map((p) => [
            p.project,
            p.since ? `${p.since} (${ago(p.since, report.at)})` : 'unknown',
            `${p.pausedBy} (${p.trigger})`,
            p.reason.length > 60 ? `${p.reason.slice(0, 59)}…` : p.reason,
          ]),
        ),
  );
  out.push('');
  const save = r.save === null ? '?' : r.save === '' ? 'none' : r.save;
  out.push(
    `REDIS  ${r.address}${r.version ? ` (${r.version})` : ''}  maxmemory-policy ${r.maxmemoryPolicy ?? '?'}  ` +
      `appendonly ${r.appendonly === null ? '?' : r.appendonly ? 'yes' : 'no'}  save ${save}  persistence ${r.persistence}`,
  );
  out.push('');
  if (report.warnings.length === 0) out.push('OK: no warnings');
  else for (const w of report.warnings) out.push(`WARNING: ${w.message}`);
  return out.join('\n');
}

/**
 * `holdfast status [--json]`: queues, dead letters, spools, breakers, email pauses and Redis's
 * durability settings on one screen, from REDIS_URL alone. Exits 2 when anything needs a look.
 */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description(
      'the one screen on-call reads first: queue depths and dead letters, spool backlogs, breakers, email pauses, ' +
        `and Redis's eviction and persistence settings; exits ${STATUS_WARNING_EXIT_CODE} when there are warnings`,
    )
    .option(
      '--max-spool-age <duration>',
      `warn when a spool's oldest unarchived event is older than this (30s, 5m, 1h)`,
      parseDuration,
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: { maxSpoolAge?: number; json?: boolean }) => {
      const redisUrl = loadConfig().redisUrl;
      if (!redisUrl)
        throw new ConfigError('REDIS_URL', 'required: the queues and published states live in Redis');
      let connectionError: string | undefined;
      // Fail fast: a status that hangs while Redis is away tells on-call nothing.
      const redis = new Redis(redisUrl, {
        connectionName: 'holdfast-status',
        maxRetriesPerRequest: 1,
        connectTimeout: 5000,
        retryStrategy: (times) => (times > 3 ? null : 200),
      });
      redis.on('error', (error: Error) => {
        connectionError = error.message;
      });
      let report: StatusReport;
      try {
        await redis.ping();
        report = await collectStatus(redis, {
          redisUrl,
          maxSpoolAgeMs: opts.maxSpoolAge ?? parseDuration(DEFAULT_MAX_SPOOL_AGE),
        });
      } catch (error) {
        if (connectionError)
          throw new Error(`Redis (REDIS_URL) did not answer: ${connectionError}`, { cause: error });
        throw error;
      } finally {
        redis.disconnect();
      }
      process.stdout.write(`${opts.json ? JSON.stringify(report, null, 2) : renderStatus(report)}\n`);
      if (report.warnings.length > 0) process.exitCode = STATUS_WARNING_EXIT_CODE;
    });
}
