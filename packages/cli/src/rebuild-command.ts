import { rebuildMatters, rebuildSubjectIndex, rebuildTimelines } from '@holdfast/archiver';
import { ConfigError, loadConfig } from '@holdfast/core';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { resolveActor } from './actor.ts';
import { loadPolicy, withStore } from './context.ts';
import { print } from './output.ts';

/**
 * `holdfast rebuild`: what Redis holds beside the queues, rebuilt from the archive alone, after
 * Redis lost data. Matters first: until they are back, writes a legal hold selects go unheld.
 */
export function registerRebuildCommand(program: Command): void {
  program
    .command('rebuild')
    .description(
      'rebuild the legal-hold matters, the subject index and the message timelines from the archive (after Redis lost data); holds what an open matter selects and is not held, on record first',
    )
    .option('--actor <who>', 'who is rebuilding (recorded if any hold is set; default: HOLDFAST_ACTOR)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { actor?: string; json?: boolean }) => {
      const actor = resolveActor(opts.actor);
      const url = loadConfig().redisUrl;
      if (!url)
        throw new ConfigError('REDIS_URL', 'required: the rebuilt registry and indexes live in Redis');
      const policy = await loadPolicy();
      const redis = new Redis(url, { maxRetriesPerRequest: 2 });
      try {
        const result = await withStore(async (store) => ({
          matters: await rebuildMatters(store, redis, policy, { actor }),
          subjectIndex: await rebuildSubjectIndex(store, redis, policy),
          timelines: await rebuildTimelines(store, redis),
        }));
        print(opts, result, (r) =>
          [
            `matters: ${r.matters.open.length} open, ${r.matters.released.length} released on record`,
            ...r.matters.open.map(
              (m) =>
                `  ${m.matter}: ${m.held} version(s) held` +
                (m.newlyHeld.length > 0
                  ? `, ${m.newlyHeld.length} of them not held before (recorded as ${m.eventKey})`
                  : ''),
            ),
            `subject index: ${r.subjectIndex.objects} object version(s), ${r.subjectIndex.triggers} retention trigger(s)`,
            `timelines: ${r.timelines.events} message event(s)`,
          ].join('\n'),
        );
      } finally {
        redis.disconnect();
      }
    });
}
