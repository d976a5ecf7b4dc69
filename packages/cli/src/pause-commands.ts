import {
  clearPause,
  EmailAlreadyPausedError,
  type EmailPause,
  listPauses,
  pauseEmail,
  type ReputationContext,
  type ReputationReport,
  readPause,
  reputationOf,
} from '@holdfast/archiver';
import { ConfigError, keySegment, loadConfig, ValidationError } from '@holdfast/core';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { resolveActor } from './actor.ts';
import { loadPolicy, withStore } from './context.ts';
import { print } from './output.ts';

async function withRedis<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
  const url = loadConfig().redisUrl;
  if (!url) throw new ConfigError('REDIS_URL', 'required: email pauses and reputation counts live in Redis');
  const redis = new Redis(url, { maxRetriesPerRequest: 2 });
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

/** Checked here, before anything is opened, so a typo is named as such. */
function projectOption(value: unknown): string {
  const parsed = keySegment.safeParse(value);
  if (!parsed.success)
    throw new ValidationError('command', [{ path: '--project', message: parsed.error.issues[0]!.message }]);
  return parsed.data;
}

function reasonOption(value: unknown, required: boolean): string | undefined {
  const reason = typeof value === 'string' ? value.trim() : '';
  if (!reason) {
    if (required)
      throw new ValidationError('command', [{ path: '--reason', message: 'required: why email is paused' }]);
    return undefined;
  }
  if (reason.length > 1000 || /[\r\n]/.test(reason))
    throw new ValidationError('command', [
      { path: '--reason', message: 'must be one line of at most 1000 characters' },
    ]);
  return reason;
}

/** The record as shown: the event bodies it carries while they are being archived stay internal. */
function shown(pause: EmailPause): Omit<EmailPause, 'pending' | 'clearing'> & { clearing: boolean } {
  const { pending: _pending, clearing, ...rest } = pause;
  return { ...rest, clearing: clearing !== undefined };
}

const pct = (rate: number | null): string => (rate === null ? '-' : `${(rate * 100).toFixed(2)}%`);

function figures(r: ReputationReport): string {
  return [
    `sends ${r.sends}${r.sends < r.thresholds.minSends ? ` (a pause needs at least ${r.thresholds.minSends})` : ''}`,
    `hard bounces ${r.bounces} (${pct(r.bounceRate)}, limit ${pct(r.thresholds.bounceRate)})`,
    `complaints ${r.complaints} (${pct(r.complaintRate)}, limit ${pct(r.thresholds.complaintRate)})`,
  ].join(', ');
}

function windowLine(r: ReputationReport): string {
  const fresh = r.window.freshSince ? `, fresh since the clear at ${r.window.freshSince}` : '';
  return `window ${r.window.hours}h: ${r.window.from} to ${r.window.to}${fresh}`;
}

function ago(since: string, now = Date.now()): string {
  const minutes = Math.max(0, Math.floor((now - Date.parse(since)) / 60_000));
  return minutes < 60 ? `${minutes}m` : `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

function describePause(pause: EmailPause, current: ReputationReport): string {
  // A key set by hand (or a damaged record): only that it pauses is known.
  if (pause.unreadable !== undefined)
    return [
      `${pause.project}: outbound email PAUSED by a key whose record is unreadable`,
      `  reason: ${pause.reason}`,
      `  now:         ${figures(current)}`,
      `  ${windowLine(current)}`,
      `  resume with: holdfast pause clear --project ${pause.project} --reason <text>`,
    ].join('\n');
  return [
    `${pause.project}: outbound email PAUSED since ${pause.since} (${ago(pause.since)}) by ${pause.pausedBy} (${pause.trigger})`,
    `  reason: ${pause.reason}`,
    `  when paused: ${figures(pause.figures)}`,
    `  now:         ${figures(current)}`,
    `  ${windowLine(current)}`,
    pause.archived
      ? `  recorded as ${pause.eventKey}`
      : '  pause event not archived yet (the next archiver start or evaluation records it); sends wait meanwhile',
    ...(pause.clearing ? ['  a clear was started and did not finish: run clear again to finish it'] : []),
    `  resume with: holdfast pause clear --project ${pause.project} --reason <text>`,
  ].join('\n');
}

function describeFlowing(current: ReputationReport): string {
  return [
    `${current.project}: outbound email flows (not paused)`,
    `  now: ${figures(current)}`,
    `  ${windowLine(current)}`,
  ].join('\n');
}

/**
 * `holdfast pause status|set|clear`: per-project pauses of outbound email. The archiver pauses a
 * project whose hard-bounce or complaint rate crosses its threshold; on-call reads, sets and
 * clears pauses here, each change an archived operator event.
 */
export function registerPauseCommands(program: Command): void {
  const pause = program
    .command('pause')
    .description(
      'outbound email pauses per project (set by the archiver when the bounce or complaint rate crosses its threshold): status, set, clear',
    );

  pause
    .command('status')
    .description(
      'every paused project (or one project, paused or not): since when, why, rates vs thresholds, and the current window',
    )
    .option('--project <project>', 'only this project, with its current figures even when it is not paused')
    .option('--json', 'machine-readable output')
    .action(async (opts: { project?: string; json?: boolean }) => {
      const project = opts.project === undefined ? undefined : projectOption(opts.project);
      const thresholds = loadConfig().reputation;
      if (project) {
        const result = await withRedis(async (redis) => {
          const [standing, current] = await Promise.all([
            readPause(redis, project),
            reputationOf(redis, project, thresholds),
          ]);
          return { project, paused: standing !== undefined, pause: standing ?? null, current };
        });
        print(opts, { ...result, pause: result.pause && shown(result.pause) }, () =>
          result.pause ? describePause(result.pause, result.current) : describeFlowing(result.current),
        );
        return;
      }
      const paused = await withRedis(async (redis) => {
        const all = await listPauses(redis);
        return Promise.all(
          all.map(async (p) => ({ pause: p, current: await reputationOf(redis, p.project, thresholds) })),
        );
      });
      print(
        opts,
        {
          paused: paused.map((p) => ({
            project: p.pause.project,
            pause: shown(p.pause),
            current: p.current,
          })),
        },
        () =>
          paused.length === 0
            ? "no project's outbound email is paused"
            : paused.map((p) => describePause(p.pause, p.current)).join('\n\n'),
      );
    });

  pause
    .command('set')
    .description(
      "pause a project's outbound email by hand: sends wait (nothing is dropped) until the pause is cleared; the pause is archived as an operator event",
    )
    .requiredOption('--project <project>', 'the project to pause')
    .requiredOption('--reason <text>', 'why it is paused')
    .option('--actor <who>', 'who is pausing it (default: HOLDFAST_ACTOR)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { project: string; reason: string; actor?: string; json?: boolean }) => {
      const project = projectOption(opts.project);
      const reason = reasonOption(opts.reason, true)!;
      const actor = resolveActor(opts.actor);
      const config = loadConfig();
      const policy = await loadPolicy();
      const result = await withStore((store) =>
        withRedis(async (redis) => {
          const ctx: ReputationContext = { redis, store, policy, thresholds: config.reputation };
          const { pause: p, created } = await pauseEmail(ctx, { project, reason, actor, trigger: 'manual' });
          if (!created) throw new EmailAlreadyPausedError(p);
          return p;
        }),
      );
      print(opts, shown(result), (p) =>
        [
          `${p.project}: outbound email paused since ${p.since}; sends wait until the pause is cleared`,
          `recorded as ${p.eventKey}`,
          `resume with: holdfast pause clear --project ${p.project} --reason <text>`,
        ].join('\n'),
      );
    });

  pause
    .command('clear')
    .description(
      "resume a project's outbound email. The clear (who, why, the pause it ends) is archived as an operator event before the pause is lifted. " +
        'Clearing also starts a fresh window for the project: the sends, bounces and complaints counted so far are dropped and ' +
        'events from before the clear no longer count, so the old bounces cannot pause it again at once; an automatic pause ' +
        'needs the minimum number of new sends (HOLDFAST_REPUTATION_MIN_SENDS) first',
    )
    .requiredOption('--project <project>', 'the project to resume')
    .option('--reason <text>', 'why it is resumed (e.g. the list was cleaned)')
    .option('--actor <who>', 'who is resuming it (default: HOLDFAST_ACTOR)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { project: string; reason?: string; actor?: string; json?: boolean }) => {
      const project = projectOption(opts.project);
      const reason = reasonOption(opts.reason, false);
      const actor = resolveActor(opts.actor);
      const config = loadConfig();
      const policy = await loadPolicy();
      const result = await withStore((store) =>
        withRedis((redis) =>
          clearPause(
            { redis, store, policy, thresholds: config.reputation },
            { project, actor, ...(reason ? { reason } : {}) },
          ),
        ),
      );
      print(
        opts,
        {
          project,
          cleared: shown(result.cleared),
          clearedBy: result.event.data.actor,
          eventKey: result.eventKey,
          current: result.report,
        },
        (r) =>
          [
            `${project}: outbound email resumed (was paused since ${r.cleared.since} by ${r.cleared.pausedBy})`,
            `recorded as ${r.eventKey}${r.clearedBy !== actor ? ` (finishing a clear started by ${String(r.clearedBy)})` : ''}`,
            `fresh ${windowLine(r.current)}; an automatic pause needs ${r.current.thresholds.minSends} new sends first`,
          ].join('\n'),
      );
    });
}
