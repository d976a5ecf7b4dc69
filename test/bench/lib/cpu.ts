import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { round } from './figures.ts';

/** CPU each process spent per item over a run, in µs (user + system, from /proc/<pid>/stat). */
export interface CpuCost {
  usPerItemByProcess: Record<string, number>;
  /** All the processes together: what one item costs the machine, whatever the disk did. */
  totalUsPerItem: number;
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** utime + stime of a process, in µs. */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at ") ": utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / clockTicks()) * 1e6;
}

/**
 * Starts counting the CPU of `pids` (name -> pid); `stop(items)` gives each one's and the total
 * per item. CPU time, unlike a rate, barely moves when the disk or a neighbour slows the run down,
 * so it is the figure to compare when judging a change to the code.
 */
export function countCpu(pids: Record<string, number>): { stop(items: number): CpuCost } {
  const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuUs(pid)]));
  return {
    stop(items: number): CpuCost {
      const usPerItemByProcess: Record<string, number> = {};
      let total = 0;
      for (const [name, pid] of Object.entries(pids)) {
        const used = cpuUs(pid) - before[name]!;
        usPerItemByProcess[name] = round(used / items, 1);
        total += used;
      }
      return { usPerItemByProcess, totalUsPerItem: round(total / items, 1) };
    },
  };
}
