import { archiveOperatorAction, openMatters, withHoldsLock } from '@holdfast/archiver';
import { loadConfig, QUEUE_PREFIX, type RetentionPolicy, ValidationError } from '@holdfast/core';
import { getJson, type ObjectStore } from '@holdfast/worm-store';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { resolveActor } from './actor.ts';
import { loadPolicy, withStore } from './context.ts';
import { print } from './output.ts';

/** A version whose retention has passed and that nothing holds: what an execute deletes. */
export interface DisposalCandidate {
  key: string;
  versionId: string;
  sha256: string;
  size: number;
  retainUntil: string;
}

export type SkipReason =
  | 'legal-hold'
  | 'matter'
  | 'destruction-log'
  | 'no-retention'
  | 'delete-marker'
  | 'retained'
  | 'held'
  | 'error';

export interface SkippedVersion {
  key: string;
  versionId: string;
  reason: SkipReason;
  detail?: string;
}

export interface DisposalPlan {
  /** The instant retention was compared against. */
  now: string;
  candidates: DisposalCandidate[];
  /** Expired versions left alone, and why (retained ones are only counted). */
  skipped: SkippedVersion[];
  /** Versions still within their retention. */
  retained: number;
}

export interface DisposalOptions {
  /** @defaultValue `new Date()` */
  now?: Date;
  /**
   * The matters that hold a version, if a matter registry is at hand. The store's legal-hold flag
   * is what protects (and is checked on every version); this only adds the registry's view.
   */
  heldByMatter?: (key: string, versionId: string) => Promise<string[]>;
}

/** The destruction log is the proof that disposal happened lawfully: it is never disposed of. */
const DESTRUCTION_LOG_TYPES = new Set(['disposal.executed', 'disposal.completed']);

/** Throws when the version cannot be read: nothing unread is taken for "not a destruction log". */
async function isDestructionLog(store: ObjectStore, key: string, versionId: string): Promise<boolean> {
  if (!key.startsWith('records/') || !key.endsWith('.json') || key.endsWith('.meta.json')) return false;
  const doc = (await getJson(store, key, { versionId })) as { type?: unknown } | null;
  return typeof doc?.type === 'string' && DESTRUCTION_LOG_TYPES.has(doc.type);
}

/**
 * Every version whose retain-until has passed and that no legal hold or open matter holds. A dry
 * run prints exactly this; an execute deletes exactly this (and re-checks nothing but what the
 * store itself refuses). O(versions): every version is headed once.
 */
export async function planDisposal(store: ObjectStore, options: DisposalOptions = {}): Promise<DisposalPlan> {
  const now = options.now ?? new Date();
  const plan: DisposalPlan = { now: now.toISOString(), candidates: [], skipped: [], retained: 0 };
  for await (const v of store.listVersions('')) {
    if (v.deleteMarker) {
      plan.skipped.push({ key: v.key, versionId: v.versionId, reason: 'delete-marker' });
      continue;
    }
    const head = await store.head(v.key, { versionId: v.versionId });
    if (!head) continue;
    if (!head.retainUntil) {
      plan.skipped.push({ key: v.key, versionId: v.versionId, reason: 'no-retention' });
      continue;
    }
    if (head.retainUntil.getTime() > now.getTime()) {
      plan.retained++;
      continue;
    }
    if (head.legalHold) {
      plan.skipped.push({ key: v.key, versionId: v.versionId, reason: 'legal-hold' });
      continue;
    }
    const matters = options.heldByMatter ? await options.heldByMatter(v.key, v.versionId) : [];
    if (matters.length > 0) {
      plan.skipped.push({ key: v.key, versionId: v.versionId, reason: 'matter', detail: matters.join(', ') });
      continue;
    }
    let destructionLog: boolean;
    try {
      destructionLog = await isDestructionLog(store, v.key, v.versionId);
    } catch (error) {
      // Fail closed: a read that failed (no key access, throttling) must not make a log deletable.
      plan.skipped.push({
        key: v.key,
        versionId: v.versionId,
        reason: 'error',
        detail: `could not read it to tell whether it is a destruction log: ${(error as Error).message}`,
      });
      continue;
    }
    if (destructionLog) {
      plan.skipped.push({ key: v.key, versionId: v.versionId, reason: 'destruction-log' });
      continue;
    }
    plan.candidates.push({
      key: v.key,
      versionId: v.versionId,
      sha256: head.sha256,
      size: head.size,
      retainUntil: head.retainUntil.toISOString(),
    });
  }
  return plan;
}

export interface DisposalReport extends DisposalPlan {
  mode: 'dry-run' | 'execute';
  policy: { source: string; sha256: string };
  actor: string | null;
  deleted: DisposalCandidate[];
  /** Candidates the store refused or failed to delete (they are still there). */
  failed: SkippedVersion[];
  /** The `disposal.executed` entry, archived before the first delete; null when nothing was due. */
  destructionLog: { key: string; versionId: string } | null;
}

/**
 * Delete what `planDisposal` finds. The destruction log entry (what: key, version, SHA-256, size,
 * retain-until; when; by whom; under which policy) is archived under lock first; a delete happens
 * only once it is written. A version the store refuses (retained by the store's own clock, held
 * since the plan) is reported as failed and stays; if anything on the log was not deleted, a
 * `disposal.completed` entry records the exceptions, so the archive says exactly what is gone.
 */
export async function executeDisposal(
  store: ObjectStore,
  policy: RetentionPolicy,
  options: DisposalOptions & { actor: string },
): Promise<DisposalReport> {
  const plan = await planDisposal(store, options);
  const report: DisposalReport = {
    mode: 'execute',
    policy: { source: policy.source, sha256: policy.fingerprint() },
    actor: options.actor,
    ...plan,
    deleted: [],
    failed: [],
    destructionLog: null,
  };
  if (plan.candidates.length === 0) return report;
  const { archived } = await archiveOperatorAction(store, policy, {
    type: 'disposal.executed',
    actor: options.actor,
    subject: 'disposal',
    data: {
      policy: report.policy,
      retentionComparedAt: plan.now,
      count: plan.candidates.length,
      bytes: plan.candidates.reduce((n, c) => n + c.size, 0),
      objects: plan.candidates,
    },
  });
  report.destructionLog = { key: archived.key, versionId: archived.versionId };
  for (const c of plan.candidates) {
    try {
      await store.deleteVersion(c.key, c.versionId);
      report.deleted.push(c);
    } catch (error) {
      const code = (error as { code?: string }).code;
      report.failed.push({
        key: c.key,
        versionId: c.versionId,
        reason:
          code === 'HOLDFAST_ERR_OBJECT_RETAINED'
            ? 'retained'
            : code === 'HOLDFAST_ERR_OBJECT_HELD'
              ? 'held'
              : 'error',
        detail: `${code ?? 'error'}: ${(error as Error).message}`,
      });
    }
  }
  if (report.failed.length > 0) {
    await archiveOperatorAction(store, policy, {
      type: 'disposal.completed',
      actor: options.actor,
      subject: 'disposal',
      data: {
        destructionLog: report.destructionLog,
        deleted: report.deleted.length,
        notDeleted: report.failed,
      },
    });
  }
  return report;
}

/**
 * The matter registry's view (Redis, when REDIS_URL is set): which open matters hold a version.
 * Mirrors the registry layout of the archiver's holds.ts (`holdfast:matter-objects:<matter>`, a
 * set of `key\0versionId`); the store's legal-hold flag stays authoritative either way.
 */
async function withMatterRegistry<T>(
  options: { exclusive: boolean },
  fn: (heldByMatter: DisposalOptions['heldByMatter']) => Promise<T>,
): Promise<T> {
  const url = loadConfig().redisUrl;
  if (!url) return fn(undefined);
  const redis = new Redis(url, { maxRetriesPerRequest: 2, lazyConnect: true });
  const run = async () => {
    const matters = (await openMatters(redis)).map((m) => m.matter);
    return fn(async (key, versionId) => {
      const held: string[] = [];
      for (const m of matters)
        if (await redis.sismember(`${QUEUE_PREFIX}:matter-objects:${m}`, `${key}\u0000${versionId}`))
          held.push(m);
      return held;
    });
  };
  try {
    await redis.connect();
    // An execute runs while no hold is being placed or released: a placement that scanned a
    // version the plan had chosen would otherwise list, and fail to hold, a deleted version.
    return await (options.exclusive ? withHoldsLock(redis, run) : run());
  } finally {
    redis.disconnect();
  }
}

/** `holdfast dispose`: delete what has outlived its retention and nothing holds, log first. */
export function registerDisposeCommand(program: Command): void {
  program
    .command('dispose')
    .description(
      'find object versions whose retention has passed and that no legal hold or matter holds; --dry-run lists them, --execute archives a destruction log entry and then deletes them',
    )
    .option('--dry-run', 'list exactly what --execute would delete; change nothing')
    .option('--execute', 'archive the destruction log entry, then delete')
    .option('--actor <who>', 'who is disposing (required for --execute; default: HOLDFAST_ACTOR)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { dryRun?: boolean; execute?: boolean; actor?: string; json?: boolean }) => {
      if (Boolean(opts.dryRun) === Boolean(opts.execute))
        throw new ValidationError('command', [
          {
            path: '--dry-run|--execute',
            message: 'give exactly one: --dry-run to list, --execute to delete',
          },
        ]);
      const actor = opts.execute
        ? resolveActor(opts.actor)
        : (opts.actor ?? process.env.HOLDFAST_ACTOR ?? null);
      const policy = await loadPolicy();
      const report = await withMatterRegistry({ exclusive: Boolean(opts.execute) }, (heldByMatter) =>
        withStore(async (store): Promise<DisposalReport> => {
          const options = heldByMatter ? { heldByMatter } : {};
          if (opts.execute) return executeDisposal(store, policy, { ...options, actor: actor! });
          return {
            mode: 'dry-run',
            policy: { source: policy.source, sha256: policy.fingerprint() },
            actor,
            ...(await planDisposal(store, options)),
            deleted: [],
            failed: [],
            destructionLog: null,
          };
        }),
      );
      if (report.failed.length > 0) process.exitCode = 1;
      print(opts, report, (r) => {
        const lines =
          r.mode === 'dry-run'
            ? [`dry run: ${r.candidates.length} object version(s) would be deleted`]
            : [
                `${r.deleted.length} object version(s) deleted` +
                  (r.failed.length ? `, ${r.failed.length} refused by the store` : ''),
                ...(r.destructionLog ? [`destruction log: ${r.destructionLog.key}`] : []),
              ];
        lines.push(`${r.retained} still retained, ${r.skipped.length} past retention but kept`);
        for (const c of r.mode === 'dry-run' ? r.candidates : r.deleted)
          lines.push(`  ${c.key}  ${c.versionId}  retained until ${c.retainUntil}`);
        for (const s of r.skipped) lines.push(`  kept ${s.key}  ${s.versionId}  (${s.reason})`);
        for (const f of r.failed) lines.push(`  refused ${f.key}  ${f.versionId}  (${f.detail})`);
        return lines.join('\n');
      });
    });
}
