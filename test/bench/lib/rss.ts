import { readFileSync } from 'node:fs';

export interface RssStats {
  pid: number;
  samples: number;
  minMiB: number;
  meanMiB: number;
  maxMiB: number;
  lastMiB: number;
}

/** Resident set size of a process in MiB, from /proc/<pid>/status (VmRSS); undefined once it is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
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
