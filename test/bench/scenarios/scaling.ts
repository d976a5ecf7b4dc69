import { figure } from '../lib/figures.ts';
import { measureRecords, type PipelineRun } from '../lib/pipeline-runs.ts';
import type { BenchContext, Figure, Scenario } from '../lib/types.ts';
import { recordsCount } from './records-pipeline.ts';

/** Flat means within measurement noise of the smallest run; 0.8x leaves room for noise. */
const FLAT = 0.8;

async function run(ctx: BenchContext) {
  const middle = recordsCount(ctx);
  const sizes = ctx.quick ? [500, middle, 3_000] : [10_000, middle, 200_000];
  const runs: Record<number, PipelineRun> = {};
  for (const size of sizes) {
    // Each size starts from an empty archive; the middle one is scenario 2's run when it ran.
    runs[size] = await ctx.shared(`records:${size}`, () => measureRecords(ctx, size, false));
  }
  const small = runs[sizes[0]!]!.holdfast;
  const figures: Figure[] = [];
  for (const size of sizes.slice(1)) {
    figures.push(
      figure(
        `events/s end to end at ${size} events`,
        runs[size]!.holdfast.endToEndPerSecond,
        '/s',
        { name: `same at ${sizes[0]} events`, value: small.endToEndPerSecond },
        { kind: 'min-ratio', limit: FLAT },
      ),
    );
  }
  const largest = runs[sizes.at(-1)!]!.holdfast;
  const windows = largest.windows;
  if (windows.length >= 2) {
    // Within the largest run: the last tenth (archive nearly full) against the second tenth
    // (the first one includes ramp-up).
    const early = windows[1]!;
    const late = windows.at(-1)!;
    figures.push(
      figure(
        `events/s, events ${late.fromEvent}-${late.toEvent} of ${sizes.at(-1)}`,
        late.perSecond,
        '/s',
        {
          name: `events ${early.fromEvent}-${early.toEvent}, same run`,
          value: early.perSecond,
        },
        { kind: 'min-ratio', limit: FLAT },
      ),
    );
  }
  return {
    figures,
    details: Object.fromEntries(
      sizes.map((s) => [
        s,
        {
          endToEndPerSecond: runs[s]!.holdfast.endToEndPerSecond,
          submitPerSecond: runs[s]!.holdfast.submitPerSecond,
          windows: runs[s]!.holdfast.windows,
        },
      ]),
    ),
  };
}

export const scalingScenario: Scenario = {
  id: 'scaling',
  number: 6,
  title: 'How cost grows: scenario 2 at 10k, 50k and 200k events',
  baseline:
    'scenario 2 at 10k events from an empty archive, same run (and, within the 200k run, an early tenth)',
  run,
};
