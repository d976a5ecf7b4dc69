/**
 * Renders a saved report as Markdown (machine line + figures table), for README updates:
 *
 *   node bench/tools/report-markdown.ts bench/results/<date>.json
 */
import { readFile } from 'node:fs/promises';
import type { MachineDescription } from '../lib/machine.ts';
import { formatMarkdown } from '../lib/table.ts';
import type { ScenarioResult } from '../lib/types.ts';

interface Report {
  startedAt: string;
  durationMs: number;
  mode: string;
  machine: MachineDescription;
  source?: { commit: string; uncommittedOutsideBench: string[] };
  scenarios: ScenarioResult[];
}

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/tools/report-markdown.ts <results.json>');
  process.exit(2);
}
const report = JSON.parse(await readFile(file, 'utf8')) as Report;
const m = report.machine;
console.log(
  `${report.mode} run of ${report.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(report.durationMs / 1000)} s` +
    `${report.source ? `, commit ${report.source.commit.slice(0, 7)}` : ''}: ` +
    `${m.nproc} vCPU (${m.cpuModel}), ${m.memoryTotalGiB} GiB RAM, Linux ${m.kernel}, Node ${m.node}, ` +
    `${m.redis.split(' ').slice(0, 3).join(' ')}, ${m.disk.fsType} on ${m.disk.device} (kernel rotational flag: ${m.disk.rotational}).\n`,
);
console.log(formatMarkdown(report.scenarios));
