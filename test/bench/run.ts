/**
 * `pnpm bench`: Holdfast's performance record. Runs the scenarios of the benchmark issue, each
 * against a baseline measured in the same run on the same machine, prints a table (figure,
 * baseline, ratio, target) and writes `bench/results/<yyyy-mm-dd>.json`.
 *
 *   pnpm bench                      every scenario (~10 min on 2 cores)
 *   pnpm bench --quick              the same scenarios, small counts (< 1 min)
 *   pnpm bench --only records       one scenario (repeat or comma-separate for more)
 *   pnpm bench --json               the report as JSON on stdout instead of the table
 *   pnpm bench --profile            also write CPU profiles of every process (see README)
 */
import { spawnSync } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { removeAll } from './lib/cleanup.ts';
import { describeMachine } from './lib/machine.ts';
import { formatMarkdown, formatTable } from './lib/table.ts';
import type { BenchContext, ScenarioResult } from './lib/types.ts';
import { SCENARIOS } from './scenarios/index.ts';

const HERE = new URL('.', import.meta.url).pathname;

const USAGE = `usage: pnpm bench [--quick] [--only <scenario>[,<scenario>…]] [--json] [--markdown] [--profile] [--list]

  --quick          small counts: every scenario in under a minute (a smoke run, not a record)
  --only <ids>     run only these scenarios: ${SCENARIOS.map((s) => s.id).join(', ')}
  --json           print the report as JSON on stdout (progress stays on stderr)
  --markdown       print the table as Markdown (for test/bench/README.md)
  --profile        write .cpuprofile files of this process and every child to bench/profiles/<stamp>/
  --out <file>     write the report here instead of bench/results/<date>[-quick|-partial].json
  --list           list the scenarios and their baselines, run nothing`;

function parse() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string', multiple: true },
        json: { type: 'boolean', default: false },
        markdown: { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        out: { type: 'string' },
        list: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

const args = parse();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
if (args.list) {
  for (const s of SCENARIOS) {
    console.log(
      `${s.number}. ${s.id.padEnd(13)} ${s.title}${s.notBuiltYet ? ` [not built yet: ${s.notBuiltYet}]` : ''}`,
    );
    console.log(`   ${''.padEnd(13)} baseline: ${s.baseline}`);
  }
  process.exit(0);
}

const only = args.only
  ?.flatMap((o) => o.split(','))
  .map((o) => o.trim())
  .filter(Boolean);
const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}\n\n${USAGE}`);
  process.exit(2);
}
const selected = SCENARIOS.filter((s) => !only || only.includes(s.id));

const startedAt = new Date();
const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
const profileDir = args.profile ? join(HERE, 'profiles', stamp) : undefined;
const cache = new Map<string, Promise<unknown>>();
const began = performance.now();
const ctx: BenchContext = {
  quick: args.quick,
  profileDir,
  log: (message) =>
    console.error(`[bench ${((performance.now() - began) / 1000).toFixed(1).padStart(6)} s] ${message}`),
  shared<T>(key: string, make: () => Promise<T>): Promise<T> {
    let p = cache.get(key) as Promise<T> | undefined;
    if (!p) {
      p = make();
      cache.set(key, p);
    }
    return p;
  },
};

let session: Session | undefined;
if (profileDir) {
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}

ctx.log(`${args.quick ? 'quick' : 'full'} run: ${selected.map((s) => s.id).join(', ')}`);
const results: ScenarioResult[] = [];
for (const scenario of selected) {
  const t0 = performance.now();
  const base = { id: scenario.id, number: scenario.number, title: scenario.title };
  if (scenario.notBuiltYet || !scenario.run) {
    ctx.log(`${scenario.number}. ${scenario.id}: not built yet (${scenario.notBuiltYet})`);
    results.push({
      ...base,
      status: 'not built yet',
      note: scenario.notBuiltYet,
      durationMs: 0,
      figures: [],
      details: {},
    });
    continue;
  }
  ctx.log(`${scenario.number}. ${scenario.id}: ${scenario.title}`);
  // Other work on the machine skews absolute figures (and, less, ratios): keep the evidence.
  const loadBefore = loadavg()[0]!;
  if (loadBefore > 1)
    ctx.log(`warning: load average ${loadBefore.toFixed(2)} before this scenario: other work is running`);
  try {
    const { figures, details } = await scenario.run(ctx);
    const load = { loadAverageBefore: loadBefore, loadAverageAfter: loadavg()[0]! };
    results.push({
      ...base,
      status: 'ok',
      durationMs: Math.round(performance.now() - t0),
      figures,
      details: { ...load, ...details },
    });
  } catch (error) {
    ctx.log(`${scenario.id} failed: ${(error as Error).stack ?? error}`);
    const note = (error as Error).message.split('\n')[0]!;
    results.push({
      ...base,
      status: 'failed',
      note,
      durationMs: Math.round(performance.now() - t0),
      figures: [],
      details: {},
    });
  }
}

if (session && profileDir) {
  const { profile } = await session.post('Profiler.stop');
  const dir = join(profileDir, 'bench-process');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, `bench-${process.pid}.cpuprofile`), JSON.stringify(profile));
  session.disconnect();
}

/** Which code was measured: the commit, and any uncommitted product changes on top of it. */
function source() {
  const git = (...a: string[]) => spawnSync('git', a, { cwd: HERE, encoding: 'utf8' }).stdout ?? '';
  const dirty = git('status', '--porcelain')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(3))
    .filter((path) => !path.startsWith('test/bench/'));
  return { commit: git('rev-parse', 'HEAD').trim(), uncommittedOutsideBench: dirty };
}

const report = {
  schema: 1,
  startedAt: startedAt.toISOString(),
  durationMs: Math.round(performance.now() - began),
  mode: args.quick ? 'quick' : 'full',
  only: only ?? null,
  machine: describeMachine(),
  source: source(),
  scenarios: results,
};

const kind = args.quick ? '-quick' : only ? '-partial' : '';
const out = args.out ?? join(HERE, 'results', `${startedAt.toISOString().slice(0, 10)}${kind}.json`);
await mkdir(join(out, '..'), { recursive: true });
await writeFile(`${out}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
await rename(`${out}.tmp`, out);

if (args.json) {
  console.log(JSON.stringify(report, null, 2));
} else {
  const m = report.machine;
  console.log(
    `\nHoldfast bench (${report.mode}), ${report.startedAt}, ${(report.durationMs / 1000).toFixed(0)} s — ` +
      `${m.nproc} cores (${m.cpuModel}), ${m.memoryTotalGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ` +
      `${m.redis.split(' ').slice(0, 3).join(' ')}, ${m.disk.fsType} on ${m.disk.device}\n`,
  );
  console.log(args.markdown ? formatMarkdown(results) : formatTable(results));
  console.log(`\nreport: ${out}${profileDir ? `\nprofiles: ${profileDir}` : ''}`);
}
const cleaning = performance.now();
ctx.log('removing temporary directories');
await removeAll();
ctx.log(`removed in ${((performance.now() - cleaning) / 1000).toFixed(1)} s`);
process.exit(results.some((r) => r.status === 'failed') ? 1 : 0);
