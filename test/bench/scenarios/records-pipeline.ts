import { figure } from '../lib/figures.ts';
import { measureRecords, SUBMIT_CONCURRENCY } from '../lib/pipeline-runs.ts';
import type { BenchContext, Scenario } from '../lib/types.ts';

/** Events in scenario 2 (and the 50k point of scenario 6, which reuses this run). */
export const recordsCount = (ctx: BenchContext) => (ctx.quick ? 2_000 : 50_000);

async function run(ctx: BenchContext) {
  const count = recordsCount(ctx);
  const r = await ctx.shared(`records:${count}`, () => measureRecords(ctx, count, true));
  const h = r.holdfast;
  const b = r.baseline!;
  return {
    figures: [
      figure(
        `events/s end to end (${count} events)`,
        h.endToEndPerSecond,
        '/s',
        { name: 'raw BullMQ add -> no-op worker', value: b.endToEndPerSecond },
        { kind: 'min-ratio', limit: 0.5 },
      ),
      ...(r.diskFileCreates
        ? [
            // Each record is one archived version: a key directory and two files. The disk's
            // bare rate for that file work, taken just before, says which state the run met.
            figure('events/s end to end vs the disk creating their files bare', h.endToEndPerSecond, '/s', {
              name: 'mkdir + manifest holding the bytes + rename, 16 at a time, no fsync',
              value: r.diskFileCreates.perSecond,
            }),
          ]
        : []),
      figure('record() submit rate', h.submitPerSecond, '/s', {
        name: 'raw BullMQ add rate',
        value: b.submitPerSecond,
      }),
      figure('record() p50 (spooled + enqueued)', h.callLatency.p50Ms, 'ms', {
        name: 'queue.add p50',
        value: b.callLatency.p50Ms,
      }),
      figure('record() p99 (spooled + enqueued)', h.callLatency.p99Ms, 'ms', {
        name: 'queue.add p99',
        value: b.callLatency.p99Ms,
      }),
      ...(h.redis && b.redis
        ? [
            figure('Redis commands per event', h.redis.commandsPerItem, '', {
              name: 'per raw BullMQ job',
              value: b.redis.commandsPerItem,
            }),
            figure('Redis CPU per event', h.redis.redisUsecPerItem, 'µs', {
              name: 'per raw BullMQ job',
              value: b.redis.redisUsecPerItem,
            }),
          ]
        : []),
      ...(h.cpu && b.cpu
        ? [
            figure('machine CPU per event (every process)', h.cpu.totalUsPerItem, 'µs', {
              name: 'per raw BullMQ job',
              value: b.cpu.totalUsPerItem,
            }),
          ]
        : []),
    ],
    details: { submitConcurrency: SUBMIT_CONCURRENCY, ...r },
  };
}

export const recordsScenario: Scenario = {
  id: 'records',
  number: 2,
  title: 'Records pipeline: record() -> spooled -> archived (local WORM store)',
  baseline:
    'raw BullMQ: queue.add of the same payload and job options + a no-op worker process, same Redis, same concurrency',
  run,
};
