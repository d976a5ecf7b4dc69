import { figure } from '../lib/figures.ts';
import { measureEmail, SUBMIT_CONCURRENCY } from '../lib/pipeline-runs.ts';
import type { BenchContext, Scenario } from '../lib/types.ts';

async function run(ctx: BenchContext) {
  const count = ctx.quick ? 200 : 10_000;
  const r = await measureEmail(ctx, count);
  const h = r.holdfast;
  const b = r.baseline;
  return {
    figures: [
      figure(
        `emails/s end to end (${count} emails)`,
        h.endToEndPerSecond,
        '/s',
        { name: 'raw BullMQ flow (parent + child, no-op)', value: b.endToEndPerSecond },
        { kind: 'min-ratio', limit: 0.5 },
      ),
      // Each email archives four versions, a key directory and two files each: this is the
      // disk's bare rate for that file work, taken just before, so a report says which state the
      // run met (see the records scenario).
      figure('emails/s end to end vs the disk creating archive versions bare', h.endToEndPerSecond, '/s', {
        name: 'versions/s: mkdir + manifest holding the bytes + rename, 16 at a time, no fsync',
        value: r.diskFileCreates.perSecond,
      }),
      figure('sendEmail() submit rate', h.submitPerSecond, '/s', {
        name: 'raw FlowProducer.add rate',
        value: b.submitPerSecond,
      }),
      figure('sendEmail() p50 (composed + spooled + enqueued)', h.callLatency.p50Ms, 'ms', {
        name: 'FlowProducer.add p50',
        value: b.callLatency.p50Ms,
      }),
      figure('sendEmail() p99', h.callLatency.p99Ms, 'ms', {
        name: 'FlowProducer.add p99',
        value: b.callLatency.p99Ms,
      }),
      ...(h.redis && b.redis
        ? [
            figure('Redis commands per email', h.redis.commandsPerItem, '', {
              name: 'per raw flow',
              value: b.redis.commandsPerItem,
            }),
            figure('Redis CPU per email', h.redis.redisUsecPerItem, 'µs', {
              name: 'per raw flow',
              value: b.redis.redisUsecPerItem,
            }),
          ]
        : []),
      ...(h.cpu && b.cpu
        ? [
            figure('machine CPU per email (every process)', h.cpu.totalUsPerItem, 'µs', {
              name: 'per raw flow',
              value: b.cpu.totalUsPerItem,
            }),
          ]
        : []),
    ],
    details: { submitConcurrency: SUBMIT_CONCURRENCY, ...r },
  };
}

export const emailScenario: Scenario = {
  id: 'email',
  number: 3,
  title: 'Fail-closed email: sendEmail() -> archived -> sent (outbox)',
  baseline:
    'a raw BullMQ flow (one parent, one child, no-op workers in two processes) carrying the same event, same Redis, same concurrency',
  run,
};
