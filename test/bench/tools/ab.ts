/**
 * Compares two versions of the code in one VM state: runs `pnpm bench` on a base revision (in a
 * temporary git worktree) and on this checkout in turn, A B B A for each pair of rounds, so a
 * machine that slows down or speeds up during the comparison weighs on both sides alike.
 *
 *   node bench/tools/ab.ts <base-rev> [--only email] [--rounds 2] [--quick]
 *
 * Prints every figure that has a ratio, run by run, and the median of each side. Each side's runs
 * are kept in bench/results/ab/<stamp>/. A single full run cannot tell a 10% change from the VM's
 * drift between runs; alternating runs can, when the change is larger than the spread per side.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ScenarioResult } from '../lib/types.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const TEST_DIR = resolve(HERE, '../..');
const REPO = resolve(TEST_DIR, '..');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    only: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    quick: { type: 'boolean', default: false },
  },
});
const baseRev = positionals[0];
const rounds = Number(values.rounds);
if (!baseRev || !Number.isInteger(rounds) || rounds < 1) {
  console.error('usage: node bench/tools/ab.ts <base-rev> [--only <scenario>[,…]] [--rounds N] [--quick]');
  process.exit(2);
}

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}`);
  return result.stdout;
}

const baseCommit = run('git', ['rev-parse', '--short', baseRev], REPO).trim();
const headCommit = run('git', ['rev-parse', '--short', 'HEAD'], REPO).trim();
const stamp = new Date().toISOString().slice(0, 16).replace(/[-:T]/g, '');
const outDir = join(TEST_DIR, 'bench', 'results', 'ab', `${stamp}-${baseCommit}-${headCommit}`);
const worktree = join(tmpdir(), `holdfast-ab-${baseCommit}-${process.pid}`);
await mkdir(outDir, { recursive: true });

console.error(`ab: worktree of ${baseCommit} at ${worktree}`);
run('git', ['worktree', 'add', '--detach', worktree, baseCommit], REPO);
try {
  run('pnpm', ['install', '--frozen-lockfile', '--prefer-offline'], worktree);
  const sides = { base: join(worktree, 'test'), head: TEST_DIR } as const;
  const runs: { side: keyof typeof sides; round: number; scenarios: ScenarioResult[] }[] = [];
  for (let round = 1; round <= rounds; round++) {
    // A B, then B A: each side goes first as often as the other.
    const order: (keyof typeof sides)[] = round % 2 === 1 ? ['base', 'head'] : ['head', 'base'];
    for (const side of order) {
      const out = join(outDir, `${side}-${round}.json`);
      console.error(`ab: round ${round}, ${side} (${side === 'base' ? baseCommit : headCommit})`);
      const args = ['bench', '--out', out];
      if (values.only) args.push('--only', values.only);
      if (values.quick) args.push('--quick');
      run('pnpm', args, sides[side]);
      const report = JSON.parse(await readFile(out, 'utf8')) as { scenarios: ScenarioResult[] };
      runs.push({ side, round, scenarios: report.scenarios });
    }
  }
  printComparison(runs);
  console.log(`\nreports: ${outDir}`);
} finally {
  run('git', ['worktree', 'remove', '--force', worktree], REPO);
}

function printComparison(
  runs: { side: 'base' | 'head'; round: number; scenarios: ScenarioResult[] }[],
): void {
  const rows = new Map<string, { base: number[]; head: number[] }>();
  for (const { side, scenarios } of runs) {
    for (const scenario of scenarios) {
      for (const f of scenario.figures) {
        if (f.ratio === undefined) continue;
        const key = `${scenario.number} ${scenario.id}: ${f.name}`;
        const row = rows.get(key) ?? { base: [], head: [] };
        row[side].push(f.ratio);
        rows.set(key, row);
      }
    }
  }
  const fmt = (r: number) => (r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(2) : r.toFixed(3));
  console.log(`\nratio to each run's own baseline: ${baseCommit} (base) against ${headCommit} (head)\n`);
  console.log(['figure', 'base runs', 'head runs', 'base median', 'head median', 'head / base'].join(' | '));
  for (const [key, { base, head }] of rows) {
    const b = median(base);
    const h = median(head);
    console.log(
      [key, base.map(fmt).join(' '), head.map(fmt).join(' '), fmt(b), fmt(h), (h / b).toFixed(2)].join(' | '),
    );
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
