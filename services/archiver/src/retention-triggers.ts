import {
  type ArchiveJobResult,
  canonicalJson,
  type EventEnvelope,
  type Logger,
  QUEUE_PREFIX,
  type RetentionPolicy,
} from '@holdfast/core';
import type { ObjectStore } from '@holdfast/worm-store';
import type { Redis } from 'ioredis';
import { archiveOperatorAction } from './operator-event.ts';
import {
  archivedVersions,
  type IndexedVersion,
  indexSubjectVersions,
  lastTrigger,
  recordTrigger,
  subjectVersions,
} from './subject-index.ts';

/** The identity recorded on extensions the archiver makes because a trigger event arrived. */
export const TRIGGER_ACTOR = 'system:trigger';
/** The identity recorded on policy changes the archiver notices at start. */
export const ARCHIVER_ACTOR = 'system:archiver';
/** The last policy this Redis saw: `{ source, sha256, categories }` (canonical JSON). */
export const POLICY_KEY = `${QUEUE_PREFIX}:policy`;

export interface RetentionTriggerContext {
  redis: Redis;
  store: ObjectStore;
  policy: RetentionPolicy;
  log?: Logger;
  /** @defaultValue `() => new Date()` */
  now?: () => Date;
}

/** One version whose retention a trigger extended (what the `retention.extended` event lists). */
export interface ExtendedVersion {
  key: string;
  versionId: string;
  sha256: string;
  from: string | null;
  to: string;
}

export interface TriggerOutcome {
  extended: ExtendedVersion[];
}

/**
 * Run after an event is archived (in the archive job, so a failure retries the whole job):
 *
 * 1. An event of a triggered category (a contract) is added to its subject's index, then catches
 *    up with a trigger that already happened: a contract archived after `relationship.ended` is
 *    written with its category's initial retention and extended here, before the job completes.
 * 2. A trigger event (`relationship.ended`) is remembered for its subject, and every indexed
 *    object of each category it triggers is extended to the event's date + `extendBy`.
 *
 * Marker before index read (2) and index write before marker read (1) mean a contract and an
 * ended relationship archived concurrently cannot miss each other; at worst both extend (the
 * second finds nothing to do). Idempotent: a re-delivered trigger finds every object already at
 * its date and changes nothing, writing no event.
 */
export async function applyRetentionTriggers(
  ctx: RetentionTriggerContext,
  event: EventEnvelope,
  archived: Pick<ArchiveJobResult, 'key' | 'versionId' | 'objects'>,
): Promise<TriggerOutcome> {
  const extended: ExtendedVersion[] = [];
  const own = ctx.policy.triggerOf(event.category);
  if (own) {
    const versions = await archivedVersions(ctx.store, archived);
    await indexSubjectVersions(ctx.redis, event.project, event.category, event.subject, versions);
    const last = await lastTrigger(ctx.redis, event.project, own.extendOn, event.subject);
    if (last)
      extended.push(
        ...(await extendVersions(ctx, {
          project: event.project,
          category: event.category,
          subject: event.subject,
          until: ctx.policy.extendedUntil(event.category, last),
          versions,
          cause: { type: own.extendOn, occurredAt: last, via: event.id },
        })),
      );
  }
  for (const trigger of ctx.policy.triggersFor(event.type)) {
    const latest = await recordTrigger(ctx.redis, event.project, event.type, event.subject, event.occurredAt);
    const versions = await subjectVersions(ctx.redis, event.project, trigger.category, event.subject);
    extended.push(
      ...(await extendVersions(ctx, {
        project: event.project,
        category: trigger.category,
        subject: event.subject,
        until: ctx.policy.extendedUntil(trigger.category, latest),
        versions,
        cause: { type: event.type, occurredAt: latest, eventId: event.id },
      })),
    );
  }
  return { extended };
}

/**
 * Extend `versions` to `until` where that is later than what they have: the `retention.extended`
 * event listing every change is archived first, then each version is extended. Versions already
 * at or past `until`, and dates already behind us (nothing left to protect), change nothing.
 */
async function extendVersions(
  ctx: RetentionTriggerContext,
  plan: {
    project: string;
    category: string;
    subject: string;
    until: Date;
    versions: readonly IndexedVersion[];
    cause: Record<string, string>;
  },
): Promise<ExtendedVersion[]> {
  const now = (ctx.now ?? (() => new Date()))();
  if (plan.until.getTime() <= now.getTime()) return [];
  const changes: ExtendedVersion[] = [];
  for (const v of plan.versions) {
    const head = await ctx.store.head(v.key, { versionId: v.versionId });
    // Gone (disposed) or already long enough: nothing to do.
    if (!head || (head.retainUntil && head.retainUntil.getTime() >= plan.until.getTime())) continue;
    changes.push({
      key: v.key,
      versionId: v.versionId,
      sha256: head.sha256,
      from: head.retainUntil?.toISOString() ?? null,
      to: plan.until.toISOString(),
    });
  }
  if (changes.length === 0) return [];
  await archiveOperatorAction(ctx.store, ctx.policy, {
    type: 'retention.extended',
    actor: TRIGGER_ACTOR,
    subject: plan.subject,
    project: plan.project,
    data: {
      reason: 'trigger',
      category: plan.category,
      trigger: plan.cause,
      until: plan.until.toISOString(),
      policy: { source: ctx.policy.source, sha256: ctx.policy.fingerprint() },
      objects: changes,
    },
  });
  for (const c of changes) await ctx.store.extendRetention(c.key, c.versionId, plan.until);
  ctx.log?.info(
    {
      category: plan.category,
      count: changes.length,
      until: plan.until.toISOString(),
      trigger: plan.cause.type,
    },
    'retention extended by trigger',
  );
  return changes;
}

/**
 * Archive a `policy.changed` event when the policy in force differs from the last one this Redis
 * recorded (or none was recorded yet), then remember it. Called by the archiver at start, before
 * it takes jobs, so every archive write under a new policy is preceded by the record of it.
 * Two replicas starting at once with a new policy may both record it (two identical entries).
 */
export async function recordPolicyChange(
  ctx: Omit<RetentionTriggerContext, 'now'>,
): Promise<{ changed: boolean }> {
  const current = ctx.policy.toJSON();
  const stored = await ctx.redis.get(POLICY_KEY);
  let previous: { sha256?: string; source?: string } | null = null;
  if (stored) {
    try {
      previous = JSON.parse(stored);
    } catch {
      previous = null;
    }
  }
  if (previous?.sha256 === current.sha256) return { changed: false };
  await archiveOperatorAction(ctx.store, ctx.policy, {
    type: 'policy.changed',
    actor: ARCHIVER_ACTOR,
    subject: ctx.policy.source.slice(0, 256),
    data: { source: ctx.policy.source, old: previous, new: current },
  });
  await ctx.redis.set(POLICY_KEY, canonicalJson(current));
  ctx.log?.info({ policy: ctx.policy.source, sha256: current.sha256 }, 'retention policy change recorded');
  return { changed: true };
}
