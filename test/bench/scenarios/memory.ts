import { figure } from '../lib/figures.ts';
import { measureRecords } from '../lib/pipeline-runs.ts';
import type { RssStats } from '../lib/rss.ts';
import type { BenchContext, Figure, Scenario } from '../lib/types.ts';
import { recordsCount } from './records-pipeline.ts';

const sum = (stats: Record<string, RssStats>, key: 'meanMiB' | 'maxMiB') =>
  Math.round(Object.values(stats).reduce((total, s) => total + s[key], 0) * 10) / 10;

async function run(ctx: BenchContext) {
  const count = recordsCount(ctx);
  // The same run as scenario 2 when both are selected: RSS is sampled during it.
  const r = await ctx.shared(`records:${count}`, () => measureRecords(ctx, count, false));
  const figures: Figure[] = [
    figure(`fleet RSS peak under scenario 2 (${count} events)`, sum(r.rssLoad, 'maxMiB'), 'MiB', {
      name: 'fleet RSS idle',
      value: sum(r.rssIdle, 'meanMiB'),
    }),
  ];
  for (const [name, load] of Object.entries(r.rssLoad)) {
    const idle = r.rssIdle[name];
    if (!idle) continue;
    figures.push(
      figure(`${name} RSS peak`, load.maxMiB, 'MiB', { name: `${name} idle`, value: idle.meanMiB }),
    );
  }
  return { figures, details: { events: count, rssIdle: r.rssIdle, rssLoad: r.rssLoad } };
}

export const memoryScenario: Scenario = {
  id: 'memory',
  number: 5,
  title: 'Memory: fleet RSS idle and under scenario 2',
  baseline: 'the same processes idle (after warm-up), sampled in the same run',
  run,
};
