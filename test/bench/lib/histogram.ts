import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export interface LatencySummary {
  count: number;
  minMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

/**
 * Latency of individual operations in a real HDR histogram (node:perf_hooks), recorded in
 * nanoseconds: percentiles from every sample, not from an average or a reservoir.
 */
export class Latency {
  readonly #histogram: RecordableHistogram = createHistogram({ lowest: 1, highest: 120e9, figures: 3 });

  /** Times `work` and records it; returns what `work` returned. */
  async time<T>(work: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    const result = await work();
    this.recordNs(Number(process.hrtime.bigint() - started));
    return result;
  }

  recordNs(ns: number): void {
    this.#histogram.record(Math.max(1, Math.round(ns)));
  }

  summary(): LatencySummary {
    const h = this.#histogram;
    const ms = (ns: number) => Math.round(ns / 1e3) / 1e3;
    if (h.count === 0)
      return { count: 0, minMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, meanMs: 0 };
    return {
      count: h.count,
      minMs: ms(h.min),
      p50Ms: ms(h.percentile(50)),
      p90Ms: ms(h.percentile(90)),
      p99Ms: ms(h.percentile(99)),
      p999Ms: ms(h.percentile(99.9)),
      maxMs: ms(h.max),
      meanMs: ms(h.mean),
    };
  }
}
