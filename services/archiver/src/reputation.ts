import { createHash } from 'node:crypto';
import {
  type EventEnvelope,
  emailPauseKey,
  type HoldfastConfig,
  HoldfastError,
  keySegment,
  type Logger,
  newEvent,
  parseEvent,
  QUEUE_PREFIX,
  type RetentionPolicy,
  ValidationError,
} from '@holdfast/core';
import { RedisScript } from '@holdfast/producer';
import type { ObjectStore } from '@holdfast/worm-store';
import type { Redis } from 'ioredis';
import { archiveEvent } from './archive-event.ts';
import { operatorCategoryOf } from './operator-event.ts';

/**
 * Sender reputation for outbound email, per project. SES puts an account under review at a 5%
 * hard-bounce or a 0.1% complaint rate and may stop it sending; one project's bad list must not
 * take every project's email down with it. So the archiver, which sees every event, counts each
 * project's sends, hard bounces and complaints over a rolling window and pauses the project's
 * outbound email when a rate crosses its threshold. A pause is a Redis record the sender reads
 * (one GET) before each send, and sends wait while it stands; every pause and every clear is an
 * archived `audit-log-admin` event, like any operator action.
 *
 * Redis keys live here: core's keys.ts is the S3 key schema, not a registry of Redis keys.
 */

/** The thresholds in force (`config.reputation`). */
export type ReputationThresholds = Readonly<HoldfastConfig['reputation']>;

export type ReputationKind = 'sends' | 'bounces' | 'complaints';
export type ReputationRate = 'bounceRate' | 'complaintRate';

const KINDS: readonly ReputationKind[] = ['sends', 'bounces', 'complaints'];
const HOUR_MS = 3_600_000;
/** The largest window config allows (30 days): a fresh-window marker outlives any window. */
const MAX_WINDOW_SECONDS = 24 * 30 * 3600;

/** The identity recorded on pauses the archiver makes because a rate crossed its threshold. */
export const REPUTATION_ACTOR = 'system:reputation';

/** `holdfast:pause:email:<project>`: the pause record the sender checks before each send. */
export const pauseKey = emailPauseKey;
const PAUSE_PREFIX = `${QUEUE_PREFIX}:pause:email:`;
const PAUSE_PATTERN = `${PAUSE_PREFIX}*`;
/** Hash of hour bucket (epoch hours) -> count, one per project and kind. */
export const reputationCountKey = (project: string, kind: ReputationKind): string =>
  `${QUEUE_PREFIX}:reputation:email:${project}:${kind}`;
/** Epoch ms of the last clear: the window starts no earlier than this, and older events are not counted. */
export const reputationSinceKey = (project: string): string =>
  `${QUEUE_PREFIX}:reputation:email:${project}:since`;
/** One marker per counted message and kind: what makes counting idempotent. */
const countedKey = (project: string, kind: ReputationKind, element: string): string =>
  `${QUEUE_PREFIX}:reputation:email:${project}:counted:${kind}:${element}`;

/** A project's figures over the current window, and how they stand against the thresholds. */
export interface ReputationReport {
  project: string;
  window: {
    hours: number;
    /** Start of the oldest hour bucket counted, or the last clear if that is later. */
    from: string;
    to: string;
    /** When a clear started a fresh window that is still shorter than `hours`; else null. */
    freshSince: string | null;
  };
  /** Distinct messages sent (the sender's own `message.sent`), one per provider message. */
  sends: number;
  /** Distinct messages that hard-bounced (SES `Permanent`; soft bounces do not count, as at SES). */
  bounces: number;
  /** Distinct messages a recipient complained about. */
  complaints: number;
  /** bounces / sends; null with no sends. */
  bounceRate: number | null;
  complaintRate: number | null;
  thresholds: { bounceRate: number; complaintRate: number; minSends: number };
  /** The rates above their threshold; always empty below `minSends` sends. */
  exceeded: ReputationRate[];
}

/** The Redis record of a paused project (JSON at `pauseKey(project)`). */
export interface EmailPause {
  project: string;
  channel: 'email';
  since: string;
  reason: string;
  /** `reputation`: the archiver crossed a threshold; `manual`: an operator paused it. */
  trigger: 'reputation' | 'manual';
  /** Who or what paused it: REPUTATION_ACTOR, or the operator. */
  pausedBy: string;
  exceeded: ReputationRate[];
  /** The figures when it was paused. */
  figures: ReputationReport;
  /** The `reputation.paused` event (the archived record of this pause). */
  eventId: string;
  /** False until that event is in the archive: the pause is in force either way. */
  archived: boolean;
  eventKey?: string;
  /** The exact event to archive while `archived` is false, so a retry writes the same object. */
  pending?: EventEnvelope;
  /** A `reputation.cleared` event being recorded: a clear that did not finish is finished with it. */
  clearing?: EventEnvelope;
  /**
   * Set when the key holds something other than a whole pause record (a value set by hand, such as
   * `paused`): what is wrong with it. The key alone pauses the project's email, so it is reported
   * as a pause all the same; fields the record lacks are placeholders (`since` is `''` when
   * unknown, `figures` all zero), `reason` says the record is unreadable, and `eventId` is
   * `unreadable:<sha1 of the value>`, which lets a clear lift exactly that value.
   */
  unreadable?: string;
}

export interface ReputationContext {
  redis: Redis;
  store: ObjectStore;
  policy: RetentionPolicy;
  thresholds: ReputationThresholds;
  log?: Logger;
  /** @defaultValue `() => new Date()` */
  now?: () => Date;
}

export class EmailNotPausedError extends HoldfastError {
  constructor(project: string) {
    super('HOLDFAST_ERR_NOT_PAUSED', `outbound email of project "${project}" is not paused`);
  }
}

export class EmailAlreadyPausedError extends HoldfastError {
  constructor(pause: EmailPause) {
    super(
      'HOLDFAST_ERR_ALREADY_PAUSED',
      `outbound email of project "${pause.project}" is already paused since ${pause.since} by ${pause.pausedBy}: ${pause.reason}`,
    );
  }
}

function checkProject(project: string): string {
  const parsed = keySegment.safeParse(project);
  if (!parsed.success)
    throw new ValidationError('project', [{ path: 'project', message: parsed.error.issues[0]!.message }]);
  return parsed.data;
}

/** Which count an event feeds, if any. */
export function reputationKindOf(event: EventEnvelope): ReputationKind | undefined {
  if (event.channel !== 'email') return undefined;
  // Only the sender's own record (it names its transport): one per message actually handed over.
  if (event.type === 'message.sent') return typeof event.data.transport === 'string' ? 'sends' : undefined;
  if (event.type === 'message.bounced') return event.data.permanent === true ? 'bounces' : undefined;
  if (event.type === 'message.complained') return 'complaints';
  return undefined;
}

/**
 * Every kind is counted per provider message, so numerator and denominator are in the same unit
 * (a rate stays within 0..1 whatever the number of recipients or of notifications per message).
 */
function elementOf(event: EventEnvelope): string {
  const id = event.data.providerMessageId;
  return typeof id === 'string' && id.length > 0 ? id : event.subject;
}

/*
 * Counting: an exact marker per (project, kind, message), set NX together with the hour bucket's
 * increment in one script, rather than a HyperLogLog per bucket. Both make a re-processed event
 * count once; the marker also makes the figures exact. A pause stops a project's email and its
 * figures go into an archived audit record, so "212 sends, 11 bounces" must be what happened,
 * not an estimate within 0.81% that could tip a rate over its threshold at the margin. The cost
 * is one small key per counted message for the window (+1h): a fraction of the per-event marker
 * the archiver already keeps for 8 days, and only for email outcome events.
 *
 * Buckets are the event's own hour (not the processing time), so a redelivery, however late, lands
 * in the same bucket. An event from before the last clear is not counted: the clear started a
 * fresh window.
 */
const COUNT = new RedisScript(`
local since = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) < since then return -1 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
redis.call('EXPIRE', KEYS[3], ARGV[4])
local oldest = tonumber(ARGV[5])
for _, field in ipairs(redis.call('HKEYS', KEYS[3])) do
  if tonumber(field) < oldest then redis.call('HDEL', KEYS[3], field) end
end
return 1`);

/**
 * Count one event into its project's window. Idempotent: the same message counts once per kind
 * however often its events are processed. Returns what it fed, and whether it was new.
 */
export async function countEvent(
  redis: Redis,
  event: EventEnvelope,
  thresholds: ReputationThresholds,
  now: Date = new Date(),
): Promise<{ kind: ReputationKind; counted: boolean } | undefined> {
  const kind = reputationKindOf(event);
  if (!kind) return undefined;
  const at = Date.parse(event.occurredAt);
  const hour = Math.floor(at / HOUR_MS);
  const nowHour = Math.floor(now.getTime() / HOUR_MS);
  const oldest = nowHour - thresholds.windowHours + 1;
  // Already out of the window: counting it would change nothing that is ever read.
  if (hour < oldest) return { kind, counted: false };
  const nowSeconds = Math.floor(now.getTime() / 1000);
  // The marker must outlive the bucket's time in the window, or a late redelivery would count again.
  const markerTtl = Math.max((hour + thresholds.windowHours + 1) * 3600 - nowSeconds, 0) + 3600;
  const counted = (await COUNT.run(
    redis,
    [
      reputationSinceKey(event.project),
      countedKey(event.project, kind, elementOf(event)),
      reputationCountKey(event.project, kind),
    ],
    [
      String(at),
      String(hour),
      String(markerTtl),
      String(thresholds.windowHours * 3600 + 2 * 3600),
      String(oldest - 1),
    ],
  )) as number;
  return { kind, counted: counted === 1 };
}

/** The figures and the fresh-window marker as one consistent snapshot. */
async function snapshot(
  redis: Redis,
  project: string,
  thresholds: ReputationThresholds,
  now: Date,
): Promise<{ report: ReputationReport; sinceToken: string }> {
  const replies = await redis
    .multi()
    .get(reputationSinceKey(project))
    .hgetall(reputationCountKey(project, 'sends'))
    .hgetall(reputationCountKey(project, 'bounces'))
    .hgetall(reputationCountKey(project, 'complaints'))
    .exec();
  if (!replies) throw new Error('reputation snapshot transaction was aborted');
  for (const [error] of replies) if (error) throw error;
  const sinceToken = (replies[0]![1] as string | null) ?? '';
  const nowHour = Math.floor(now.getTime() / HOUR_MS);
  const oldest = nowHour - thresholds.windowHours + 1;
  // The window is the current hour and the hours - 1 before it; buckets dated ahead of this
  // clock (a provider's clock running fast) count too.
  const sum = (hash: Record<string, string>) =>
    Object.entries(hash).reduce((n, [field, v]) => (Number(field) >= oldest ? n + Number(v) : n), 0);
  const [sends, bounces, complaints] = [1, 2, 3].map((i) =>
    sum(replies[i]![1] as Record<string, string>),
  ) as [number, number, number];
  const bounceRate = sends > 0 ? bounces / sends : null;
  const complaintRate = sends > 0 ? complaints / sends : null;
  const exceeded: ReputationRate[] = [];
  if (sends >= thresholds.minSends) {
    if (bounceRate !== null && bounceRate > thresholds.bounceRate) exceeded.push('bounceRate');
    if (complaintRate !== null && complaintRate > thresholds.complaintRate) exceeded.push('complaintRate');
  }
  const since = sinceToken ? Number(sinceToken) : 0;
  const bucketStart = oldest * HOUR_MS;
  return {
    sinceToken,
    report: {
      project,
      window: {
        hours: thresholds.windowHours,
        from: new Date(Math.max(bucketStart, since)).toISOString(),
        to: now.toISOString(),
        freshSince: since > bucketStart ? new Date(since).toISOString() : null,
      },
      sends,
      bounces,
      complaints,
      bounceRate,
      complaintRate,
      thresholds: {
        bounceRate: thresholds.bounceRate,
        complaintRate: thresholds.complaintRate,
        minSends: thresholds.minSends,
      },
      exceeded,
    },
  };
}

/** A project's sends, bounces, complaints and rates over the current window. */
export async function reputationOf(
  redis: Redis,
  project: string,
  thresholds: ReputationThresholds,
  now: Date = new Date(),
): Promise<ReputationReport> {
  return (await snapshot(redis, checkProject(project), thresholds, now)).report;
}

/** The project's pause, or undefined when its email flows. One GET: the sender calls it per send. */
export async function readPause(redis: Redis, project: string): Promise<EmailPause | undefined> {
  const raw = await redis.getBuffer(pauseKey(project));
  return raw ? pauseOf(project, raw) : undefined;
}

/** Every paused project, by name: the one in the key, which is what pauses it. */
export async function listPauses(redis: Redis): Promise<EmailPause[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', PAUSE_PATTERN, 'COUNT', 1000);
    cursor = next;
    keys.push(...found);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const unique = [...new Set(keys)];
  const values = await redis.mgetBuffer(...unique);
  const pauses: EmailPause[] = [];
  values.forEach((value, i) => {
    if (value !== null) pauses.push(pauseOf(unique[i]!.slice(PAUSE_PREFIX.length), value));
  });
  return pauses.sort((a, b) => a.project.localeCompare(b.project));
}

/**
 * The pause record at a project's key. Anything else there still pauses the project (the sender
 * only checks that the key exists), so it is never an error here: a status, the archiver's
 * evaluation after a bounce, a clear must all go on. It becomes a pause marked `unreadable`.
 */
function pauseOf(project: string, raw: Buffer): EmailPause {
  let record: unknown;
  try {
    record = JSON.parse(raw.toString('utf8'));
  } catch {
    return unreadablePause(project, raw, 'not JSON', {});
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record))
    return unreadablePause(project, raw, 'not a JSON object', {});
  const r = record as Partial<Record<keyof EmailPause, unknown>>;
  const missing = [
    typeof r.project === 'string' ? undefined : 'project',
    typeof r.since === 'string' ? undefined : 'since',
    typeof r.reason === 'string' ? undefined : 'reason',
    r.trigger === 'reputation' || r.trigger === 'manual' ? undefined : 'trigger',
    typeof r.pausedBy === 'string' ? undefined : 'pausedBy',
    Array.isArray(r.exceeded) ? undefined : 'exceeded',
    typeof r.figures === 'object' && r.figures !== null ? undefined : 'figures',
    typeof r.eventId === 'string' && r.eventId !== '' ? undefined : 'eventId',
    typeof r.archived === 'boolean' ? undefined : 'archived',
  ].filter((f) => f !== undefined);
  if (missing.length > 0) return unreadablePause(project, raw, `no ${missing.join(', ')}`, r);
  return { ...(record as EmailPause), project };
}

function unreadablePause(
  project: string,
  raw: Buffer,
  problem: string,
  record: Partial<Record<keyof EmailPause, unknown>>,
): EmailPause {
  // What the record does say is kept; the rest stands in for it.
  const text = (v: unknown) => (typeof v === 'string' && v.trim() ? v : undefined);
  const since = text(record.since);
  const from = since && Number.isFinite(Date.parse(since)) ? since : '';
  return {
    project,
    channel: 'email',
    since: from,
    reason: `unreadable record (${problem})${text(record.reason) ? `: ${record.reason}` : ''}; the key ${pauseKey(project)} alone pauses email`,
    trigger: record.trigger === 'reputation' ? 'reputation' : 'manual',
    pausedBy: text(record.pausedBy) ?? 'unknown',
    exceeded: [],
    figures: {
      project,
      window: { hours: 0, from, to: from, freshSince: null },
      sends: 0,
      bounces: 0,
      complaints: 0,
      bounceRate: null,
      complaintRate: null,
      thresholds: { bounceRate: 0, complaintRate: 0, minSends: 0 },
      exceeded: [],
    },
    // As PAUSE_ID (Lua) names it, so that a clear's conditional scripts match this value.
    eventId:
      typeof record.eventId === 'string' && record.eventId !== ''
        ? record.eventId
        : `unreadable:${createHash('sha1').update(raw).digest('hex')}`,
    // Nothing to archive: no pause event was ever prepared for it.
    archived: true,
    unreadable: problem,
  };
}

/**
 * Lua: `id`, the pause's eventId, as pauseOf gives it for whatever the key holds: the record's own,
 * or for a value that is not a pause record, one derived from its bytes.
 */
const PAUSE_ID = `
local ok, record = pcall(cjson.decode, current)
local id
if ok and type(record) == 'table' and type(record.eventId) == 'string' and record.eventId ~= '' then
  id = record.eventId
else
  id = 'unreadable:' .. redis.sha1hex(current)
end`;

/** Set the record only if no pause stands and (`*` aside) no clear happened since the figures were read. */
const BEGIN_PAUSE = new RedisScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[2] ~= '*' and (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return -1 end
redis.call('SET', KEYS[1], ARGV[1])
return 1`);

/** Replace the record only if it is still the same pause (a clear may have removed it meanwhile). */
const UPDATE_PAUSE = new RedisScript(`
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
${PAUSE_ID}
if id ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`);

/** Lift the pause and start a fresh window, in one step, only if it is still the same pause. */
const END_PAUSE = new RedisScript(`
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
${PAUSE_ID}
if id ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return 1`);

function operatorEvent(
  policy: RetentionPolicy,
  type: string,
  project: string,
  at: Date,
  data: Record<string, unknown>,
): EventEnvelope {
  return newEvent({
    type,
    occurredAt: at,
    project,
    channel: 'record',
    direction: 'internal',
    subject: `email-pause:${project}`,
    category: operatorCategoryOf(policy),
    data,
  });
}

/**
 * Archive a pause's event and mark the record. The event was fixed (id, dates, figures) when the
 * record was written, so however often this runs, and whoever runs it, the archive gets one
 * object: the key derives from the content and the put is conditional.
 */
async function finishPause(ctx: ReputationContext, pause: EmailPause): Promise<EmailPause> {
  if (pause.archived || !pause.pending) return pause;
  const event = parseEvent(pause.pending);
  const archived = await archiveEvent(ctx.store, ctx.policy, event);
  const { pending: _pending, ...rest } = pause;
  const done: EmailPause = { ...rest, archived: true, eventKey: archived.key };
  await UPDATE_PAUSE.run(ctx.redis, [pauseKey(pause.project)], [pause.eventId, JSON.stringify(done)]);
  return done;
}

export interface PauseInput {
  project: string;
  reason: string;
  /** Who pauses: an operator, or REPUTATION_ACTOR. */
  actor: string;
  /** @defaultValue 'manual' */
  trigger?: 'reputation' | 'manual';
}

/**
 * Pause a project's outbound email. The record (with the `reputation.paused` event it will be
 * archived as) is written first, so the pause is in force at once; then the event is archived and
 * the record marked. A crash in between leaves `archived: false`, and whoever comes next (this
 * call again, the archiver's next evaluation of the project, or its start) archives that same
 * event: paused always, recorded exactly once. Returns the standing pause with `created: false`
 * if the project was paused already.
 */
export async function pauseEmail(
  ctx: ReputationContext,
  input: PauseInput,
): Promise<{ pause: EmailPause; created: boolean }> {
  const project = checkProject(input.project);
  const reason = input.reason.trim();
  if (!reason)
    throw new ValidationError('pause', [{ path: 'reason', message: 'required: why it is paused' }]);
  const existing = await readPause(ctx.redis, project);
  if (existing) return { pause: await finishPause(ctx, existing), created: false };
  const now = (ctx.now ?? (() => new Date()))();
  const { report } = await snapshot(ctx.redis, project, ctx.thresholds, now);
  // An operator's pause stands whatever the window did meanwhile.
  return begin(ctx, { ...input, project, reason }, report, '*', now);
}

async function begin(
  ctx: ReputationContext,
  input: PauseInput,
  report: ReputationReport,
  expectedSince: string,
  now: Date,
): Promise<{ pause: EmailPause; created: boolean }> {
  const trigger = input.trigger ?? 'manual';
  const since = now.toISOString();
  const event = operatorEvent(ctx.policy, 'reputation.paused', input.project, now, {
    actor: input.actor,
    channel: 'email',
    trigger,
    reason: input.reason,
    since,
    exceeded: report.exceeded,
    figures: report,
  });
  const pause: EmailPause = {
    project: input.project,
    channel: 'email',
    since,
    reason: input.reason,
    trigger,
    pausedBy: input.actor,
    exceeded: report.exceeded,
    figures: report,
    eventId: event.id,
    archived: false,
    pending: event,
  };
  const begun = (await BEGIN_PAUSE.run(
    ctx.redis,
    [pauseKey(input.project), reputationSinceKey(input.project)],
    [JSON.stringify(pause), expectedSince],
  )) as number;
  if (begun === -1) return { pause, created: false };
  if (begun === 0) {
    const standing = await readPause(ctx.redis, input.project);
    if (standing) return { pause: await finishPause(ctx, standing), created: false };
    return begin(ctx, input, report, expectedSince, now);
  }
  ctx.log?.warn(
    {
      project: input.project,
      trigger,
      actor: input.actor,
      sends: report.sends,
      bounceRate: report.bounceRate,
      complaintRate: report.complaintRate,
    },
    'outbound email paused',
  );
  return { pause: await finishPause(ctx, pause), created: true };
}

/**
 * Evaluate a project's window and pause it if a rate is over its threshold (with at least
 * `minSends` sends). A pause left unarchived by a crash is finished here. A clear that lands
 * between reading the figures and pausing wins: the stale figures pause nothing.
 */
export async function evaluateReputation(
  ctx: ReputationContext,
  project: string,
): Promise<{ paused: boolean; created: boolean; pause?: EmailPause; report?: ReputationReport }> {
  const existing = await readPause(ctx.redis, project);
  if (existing) return { paused: true, created: false, pause: await finishPause(ctx, existing) };
  const now = (ctx.now ?? (() => new Date()))();
  const { report, sinceToken } = await snapshot(ctx.redis, project, ctx.thresholds, now);
  if (report.exceeded.length === 0) return { paused: false, created: false, report };
  const outcome = await begin(
    ctx,
    { project, reason: describeExceeded(report), actor: REPUTATION_ACTOR, trigger: 'reputation' },
    report,
    sinceToken,
    now,
  );
  if (outcome.created) return { paused: true, created: true, pause: outcome.pause, report };
  // Someone else paused it meanwhile, or a clear started a fresh window (the figures are stale).
  const standing = await readPause(ctx.redis, project);
  return { paused: standing !== undefined, created: false, ...(standing ? { pause: standing } : {}), report };
}

const pct = (rate: number): string => `${(rate * 100).toFixed(2)}%`;

function describeExceeded(r: ReputationReport): string {
  const parts = r.exceeded.map((rate) =>
    rate === 'bounceRate'
      ? `hard-bounce rate ${pct(r.bounceRate!)} (${r.bounces} of ${r.sends} sends) exceeds ${pct(r.thresholds.bounceRate)}`
      : `complaint rate ${pct(r.complaintRate!)} (${r.complaints} of ${r.sends} sends) exceeds ${pct(r.thresholds.complaintRate)}`,
  );
  return `${parts.join('; ')} over the last ${r.window.hours}h`;
}

/**
 * The archiver's hook, run for every archived event (inside the archive job, so a failure
 * retries the job): count what feeds the window, and after a bounce or a complaint, evaluate it.
 * The evaluation runs on redeliveries too, so a pause interrupted by a crash is finished.
 * Sends do not trigger it: they only lower the rates.
 */
export async function trackReputation(ctx: ReputationContext, event: EventEnvelope): Promise<void> {
  const now = (ctx.now ?? (() => new Date()))();
  const fed = await countEvent(ctx.redis, event, ctx.thresholds, now);
  if (!fed || fed.kind === 'sends') return;
  await evaluateReputation(ctx, event.project);
}

/**
 * Archive the event of every pause a crash left unarchived (the archiver runs this at start).
 * Never throws: the pauses stand either way, and each is retried by the next evaluation.
 */
export async function completePendingPauses(ctx: ReputationContext): Promise<number> {
  let done = 0;
  try {
    for (const pause of await listPauses(ctx.redis)) {
      if (pause.archived) continue;
      try {
        await finishPause(ctx, pause);
        done++;
      } catch (error) {
        ctx.log?.warn(
          { project: pause.project, err: (error as Error).message },
          'could not archive a pending pause event; will retry',
        );
      }
    }
  } catch (error) {
    ctx.log?.warn({ err: (error as Error).message }, 'could not list email pauses');
  }
  return done;
}

export interface ClearInput {
  project: string;
  /** Who lifts the pause: recorded on the archived event. */
  actor: string;
  reason?: string;
}

/**
 * Lift a project's pause. The `reputation.cleared` event (who, why, the pause it ends, the figures
 * now) is archived before the pause is lifted; the record carries that event while it is being
 * written, so a clear cut short by a crash is finished by the next clear with the same event.
 * Lifting also starts a fresh window for the project: the counts so far are dropped and events
 * from before the clear are no longer counted, so the bounces that caused the pause cannot cause
 * it again at once. The next pause needs `minSends` new sends.
 */
export async function clearPause(
  ctx: ReputationContext,
  input: ClearInput,
): Promise<{ cleared: EmailPause; event: EventEnvelope; eventKey: string; report: ReputationReport }> {
  const project = checkProject(input.project);
  const standing = await readPause(ctx.redis, project);
  if (!standing) throw new EmailNotPausedError(project);
  // The pause is on record before its end is.
  let pause = await finishPause(ctx, standing);
  const now = (ctx.now ?? (() => new Date()))();
  if (!pause.clearing) {
    const report = await reputationOf(ctx.redis, project, ctx.thresholds, now);
    const clearing = operatorEvent(ctx.policy, 'reputation.cleared', project, now, {
      actor: input.actor,
      channel: 'email',
      reason: input.reason?.trim() || null,
      pause: {
        eventId: pause.eventId,
        eventKey: pause.eventKey ?? null,
        since: pause.since,
        pausedBy: pause.pausedBy,
        trigger: pause.trigger,
        reason: pause.reason,
      },
      figures: report,
      freshWindowFrom: now.toISOString(),
    });
    const next: EmailPause = { ...pause, clearing };
    const updated = (await UPDATE_PAUSE.run(
      ctx.redis,
      [pauseKey(project)],
      [pause.eventId, JSON.stringify(next)],
    )) as number;
    if (updated !== 1) throw new EmailNotPausedError(project);
    pause = next;
  }
  const event = parseEvent(pause.clearing);
  const archived = await archiveEvent(ctx.store, ctx.policy, event);
  const freshFrom = Date.parse(String(event.data.freshWindowFrom ?? event.occurredAt));
  const ended = (await END_PAUSE.run(
    ctx.redis,
    [pauseKey(project), reputationSinceKey(project), ...KINDS.map((k) => reputationCountKey(project, k))],
    [pause.eventId, String(freshFrom), String(MAX_WINDOW_SECONDS + 24 * 3600)],
  )) as number;
  if (ended !== 1) throw new EmailNotPausedError(project);
  ctx.log?.info({ project, actor: event.data.actor }, 'outbound email pause cleared');
  const { clearing: _clearing, ...cleared } = pause;
  return {
    cleared,
    event,
    eventKey: archived.key,
    report: await reputationOf(ctx.redis, project, ctx.thresholds, now),
  };
}
