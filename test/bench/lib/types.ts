/**
 * One number the bench reports. Every figure that has a baseline carries it, measured in the
 * same run on the same machine, and `ratio = value / baseline.value`: absolute times drift on
 * shared machines, ratios much less.
 */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number; unit: string };
  ratio?: number;
  /** What the issue asks for, in words, e.g. `>= 100x`, `<= 10 ms`. */
  target?: string;
  /** Whether the target was met; absent when there is no target. Reported, never asserted. */
  met?: boolean;
}

export type ScenarioStatus = 'ok' | 'not built yet' | 'failed';

export interface ScenarioResult {
  id: string;
  number: number;
  title: string;
  status: ScenarioStatus;
  /** For `not built yet` and `failed`: why. */
  note?: string;
  durationMs: number;
  figures: Figure[];
  /** Everything measured that is not a headline figure (histograms, samples, counters). */
  details: Record<string, unknown>;
}

export interface BenchContext {
  readonly quick: boolean;
  /** Where child processes write their CPU profiles, when profiling. */
  readonly profileDir: string | undefined;
  /** Progress lines go to stderr, so `--json` output stays clean. */
  log(message: string): void;
  /**
   * Shares one expensive measurement between scenarios (e.g. the records pipeline run that
   * scenarios 2, 5 and 6 all read), so a full run measures it once.
   */
  shared<T>(key: string, make: () => Promise<T>): Promise<T>;
}

export interface Scenario {
  /** Used with `--only`. */
  id: string;
  /** The numbering. */
  number: number;
  title: string;
  /** Baseline, in words, for the README and `--list`. */
  baseline: string;
  /** Set while the thing to measure does not exist yet: the runner prints it instead of numbers. */
  notBuiltYet?: string;
  run?(ctx: BenchContext): Promise<Pick<ScenarioResult, 'figures' | 'details'>>;
}
