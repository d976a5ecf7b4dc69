/**
 * Exponential backoff with full jitter, capped. Jitter spreads retries from many jobs that failed
 * together (a store outage) so they do not return as one wave.
 */
export function backoffDelay(
  attemptsMade: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
