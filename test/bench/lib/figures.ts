import type { Figure } from './types.ts';

export interface Target {
  /** `min`: value/baseline must be at least `ratio`; `max`: at most. */
  kind: 'min-ratio' | 'max-ratio' | 'max-value';
  limit: number;
  /** Unit for a `max-value` target, e.g. `ms`. */
  unit?: string;
}

/** A figure with its same-run baseline, the ratio between them and the target, if any. */
export function figure(
  name: string,
  value: number,
  unit: string,
  baseline?: { name: string; value: number; unit?: string },
  target?: Target,
): Figure {
  const out: Figure = { name, value, unit };
  if (baseline) {
    out.baseline = { name: baseline.name, value: baseline.value, unit: baseline.unit ?? unit };
    out.ratio = baseline.value === 0 ? Number.NaN : value / baseline.value;
  }
  if (target) {
    if (target.kind === 'max-value') {
      out.target = `<= ${target.limit} ${target.unit ?? unit}`;
      out.met = value <= target.limit;
    } else if (out.ratio !== undefined) {
      out.target = `${target.kind === 'min-ratio' ? '>=' : '<='} ${target.limit}x`;
      out.met = target.kind === 'min-ratio' ? out.ratio >= target.limit : out.ratio <= target.limit;
    }
  }
  return out;
}

export const round = (value: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
};
