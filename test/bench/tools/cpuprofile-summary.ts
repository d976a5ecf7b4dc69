/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof` or `pnpm bench --profile`): where the
 * samples went, by function (self time), by package, and inclusive time of Holdfast functions.
 *
 *   node bench/tools/cpuprofile-summary.ts <file-or-dir>… [--top 25] [--json]
 *
 * A directory is searched recursively; each profile is summarised on its own (one per process).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  parent?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  name: string;
  ms: number;
  percent: number;
}

export interface Summary {
  file: string;
  wallMs: number;
  /** Samples not idle: what this process's one thread spent running. */
  busyMs: number;
  idlePercent: number;
  bySelf: Row[];
  byPackage: Row[];
  holdfastInclusive: Row[];
}

/** Which package a frame belongs to, from its URL. */
function packageOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'V8/native (program)';
    return `native: ${functionName || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) return 'node core (JS)';
  const pnpm = /node_modules\/\.pnpm\/([^/]+)\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pnpm) return pnpm[2]!;
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const ws = /\/(packages|services|test)\/([^/]+)\//.exec(url);
  if (ws) return ws[1] === 'test' ? `test/${ws[2]}` : `@holdfast/${ws[2]}`;
  return url;
}

function label(frame: CallFrame, root: string): string {
  const where = frame.url
    ? `${frame.url.startsWith('file://') ? relative(root, new URL(frame.url).pathname) : frame.url}:${frame.lineNumber + 1}`
    : '';
  return `${frame.functionName || '(anonymous)'} ${where}`.trim();
}

export function summarise(file: string, profile: CpuProfile, top: number, root: string): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  for (const node of profile.nodes) for (const c of node.children ?? []) byId.get(c)!.parent = node.id;
  const self = new Map<string, number>();
  const pkg = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let idle = 0;
  let total = 0;
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(profile.samples[i]!);
    if (!node) continue;
    total += dt;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    add(self, label(node.callFrame, root), dt);
    add(pkg, packageOf(node.callFrame), dt);
    const seen = new Set<string>();
    for (
      let n: ProfileNode | undefined = node;
      n;
      n = n.parent === undefined ? undefined : byId.get(n.parent)
    ) {
      if (!/\/(packages|services)\//.test(n.callFrame.url) || n.callFrame.url.includes('node_modules'))
        continue;
      const l = label(n.callFrame, root);
      if (seen.has(l)) continue;
      seen.add(l);
      add(inclusive, l, dt);
    }
  }
  const busy = total - idle;
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms: Math.round(ms), percent: Math.round((ms / busy) * 1000) / 10 }));
  return {
    file,
    wallMs: Math.round((profile.endTime - profile.startTime) / 1000),
    busyMs: Math.round(busy),
    idlePercent: Math.round((idle / total) * 1000) / 10,
    bySelf: rows(self),
    byPackage: rows(pkg),
    holdfastInclusive: rows(inclusive),
  };
}

async function profilesUnder(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const out: string[] = [];
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) out.push(...(await profilesUnder(p)));
    else if (entry.name.endsWith('.cpuprofile')) out.push(p);
  }
  return out.sort();
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    options: { top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  if (positionals.length === 0) {
    console.error('usage: node bench/tools/cpuprofile-summary.ts <file-or-dir>… [--top N] [--json]');
    process.exit(2);
  }
  const root = new URL('../../../', import.meta.url).pathname;
  const summaries: Summary[] = [];
  for (const p of positionals) {
    for (const file of await profilesUnder(p)) {
      const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
      summaries.push(summarise(file, profile, Number(values.top), root));
    }
  }
  if (values.json) {
    console.log(JSON.stringify(summaries, null, 2));
  } else {
    const table = (title: string, rows: Row[]) =>
      [
        `  ${title}`,
        ...rows.map(
          (r) => `    ${r.percent.toFixed(1).padStart(5)}%  ${String(r.ms).padStart(7)} ms  ${r.name}`,
        ),
      ].join('\n');
    for (const s of summaries) {
      console.log(
        `\n${s.file}\n  wall ${s.wallMs} ms, busy ${s.busyMs} ms (idle ${s.idlePercent}%); percentages are of busy time`,
      );
      console.log(table('by package (self time)', s.byPackage));
      console.log(table('by function (self time)', s.bySelf));
      console.log(table('Holdfast functions (inclusive time)', s.holdfastInclusive));
    }
  }
}
