import { openMatters, placeHold, releaseHold } from '@holdfast/archiver';
import { ConfigError, loadConfig } from '@holdfast/core';
import type { Command } from 'commander';
import { Redis } from 'ioredis';
import { resolveActor } from './actor.ts';
import { loadPolicy, withStore } from './context.ts';
import { print } from './output.ts';

async function withRedis<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
  const url = loadConfig().redisUrl;
  if (!url) throw new ConfigError('REDIS_URL', 'required: the matter registry lives in Redis');
  const redis = new Redis(url, { maxRetriesPerRequest: 2 });
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `holdfast hold place|release|list`: legal holds as matters, each change an archived event. */
export function registerHoldCommands(program: Command): void {
  const hold = program
    .command('hold')
    .description('legal holds: place a matter over a selection, release it, list open matters');

  hold
    .command('place')
    .description('open a matter and hold every object version it selects (and every later write it selects)')
    .requiredOption('--matter <name>', 'the matter (case) name')
    .requiredOption('--reason <text>', 'why the hold is placed')
    .option('--key <key>', 'an exact object key (repeatable)', collect)
    .option('--prefix <prefix>', 'every key under this prefix')
    .option('--project <project>', 'messages and records of this project')
    .option('--channel <channel>', 'email, sms, whatsapp or record')
    .option('--from <date>', 'objects dated at or after this ISO 8601 instant')
    .option('--to <date>', 'objects dated at or before this ISO 8601 instant')
    .option('--subject <subject>', 'events about this subject (message id, account, contract)')
    .option('--participant <address>', 'messages from or to this address or number')
    .option('--actor <who>', 'who is placing the hold (default: HOLDFAST_ACTOR)')
    .option('--json', 'machine-readable output')
    .action(async (opts: Record<string, string | string[] | boolean | undefined>) => {
      const actor = resolveActor(opts.actor as string | undefined);
      const selection = Object.fromEntries(
        (['prefix', 'project', 'channel', 'from', 'to', 'subject', 'participant'] as const)
          .filter((k) => opts[k] !== undefined)
          .map((k) => [k, opts[k]]),
      );
      if (opts.key) Object.assign(selection, { keys: opts.key });
      const policy = await loadPolicy();
      const result = await withStore((store) =>
        withRedis((redis) =>
          placeHold(store, redis, policy, {
            matter: String(opts.matter),
            reason: String(opts.reason),
            actor,
            selection,
          }),
        ),
      );
      print(opts as { json?: boolean }, result, (r) =>
        [
          `matter ${r.matter.matter} is open: ${r.manifest.length} object version(s) held`,
          `recorded as ${r.eventKey}`,
          ...r.manifest.map((o) => `  ${o.key}  ${o.versionId}`),
        ].join('\n'),
      );
    });

  hold
    .command('release')
    .description('close a matter; versions no other open matter holds are released')
    .requiredOption('--matter <name>', 'the matter to release')
    .option('--reason <text>', 'why it is released')
    .option('--actor <who>', 'who is releasing it (default: HOLDFAST_ACTOR)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { matter: string; reason?: string; actor?: string; json?: boolean }) => {
      const actor = resolveActor(opts.actor);
      const policy = await loadPolicy();
      const result = await withStore((store) =>
        withRedis((redis) =>
          releaseHold(store, redis, policy, {
            matter: opts.matter,
            actor,
            ...(opts.reason ? { reason: opts.reason } : {}),
          }),
        ),
      );
      print(
        opts,
        result,
        (r) =>
          `matter ${opts.matter} released: ${r.released.length} version(s) released, ${r.stillHeld.length} still held by other matters\nrecorded as ${r.eventKey}`,
      );
    });

  hold
    .command('list')
    .description('list open matters')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const matters = await withRedis((redis) => openMatters(redis));
      print(opts, matters, (list) =>
        list.length === 0
          ? 'no open matters'
          : list.map((m) => `${m.matter}  placed ${m.placedAt} by ${m.actor}: ${m.reason}`).join('\n'),
      );
    });
}
