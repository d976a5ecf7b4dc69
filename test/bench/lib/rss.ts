import { readFileSync, writeFileSync } from 'node:fs';

export interface RssStats {
  pid: number;
  samples: number;
  minMiB: number;
  meanMiB: number;
  maxMiB: number;
  lastMiB: number;
}

/**
 * A memory field of /proc/<pid>/status in KiB (the kernel's "kB"): `VmRSS` (resident now) or
 * `VmHWM` (peak resident since start or since the last `resetPeakRss`); undefined once it is gone.
 */
export function statusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status);
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Resident set size of a process in MiB, from /proc/<pid>/status (VmRSS); undefined once it is gone. */
export function rssMiB(pid: number): number | undefined {
  const kib = statusKiB(pid, 'VmRSS');
  return kib === undefined ? undefined : kib / 1024;
}

/**
 * Resets a process's peak RSS (VmHWM) to its current RSS, so the next VmHWM is the peak of what
 * follows: `5` written to /proc/<pid>/clear_refs (Linux >= 4.0, owner only). A peak read this way
 * catches a spike that falls between two samples. False when the kernel refused.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples the RSS of named processes on a timer. Reading /proc is a few microseconds per
 * process, so sampling every 250 ms does not disturb what it measures.
 */
export class RssSampler {
  readonly #pids: Record<string, number>;
  readonly #samples = new Map<string, number[]>();
  #timer: NodeJS.Timeout | undefined;

  constructor(pids: Record<string, number>) {
    this.#pids = pids;
    for (const name of Object.keys(pids)) this.#samples.set(name, []);
  }

  start(intervalMs = 250): this {
    this.sample();
    this.#timer = setInterval(() => this.sample(), intervalMs);
    return this;
  }

  sample(): void {
    for (const [name, pid] of Object.entries(this.#pids)) {
      const value = rssMiB(pid);
      if (value !== undefined) this.#samples.get(name)!.push(value);
    }
  }

  /** Every sample so far, per process, in MiB (0.1 MiB): the time series behind the stats. */
  series(): Record<string, number[]> {
    return Object.fromEntries(
      [...this.#samples].map(([name, values]) => [name, values.map((v) => Math.round(v * 10) / 10)]),
    );
  }

  stop(): Record<string, RssStats> {
    clearInterval(this.#timer);
    this.sample();
    const out: Record<string, RssStats> = {};
    for (const [name, values] of this.#samples) {
      if (values.length === 0) continue;
      const r = (v: number) => Math.round(v * 10) / 10;
      out[name] = {
        pid: this.#pids[name]!,
        samples: values.length,
        minMiB: r(Math.min(...values)),
        meanMiB: r(values.reduce((a, b) => a + b, 0) / values.length),
        maxMiB: r(Math.max(...values)),
        lastMiB: r(values.at(-1)!),
      };
    }
    return out;
  }
}
