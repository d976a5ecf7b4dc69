import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compare two secrets without leaking where they differ or how long the expected one is:
 * hashing first gives equal-length inputs for `timingSafeEqual`.
 */
export function secretsEqual(actual: string, expected: string): boolean {
  const a = createHash('sha256').update(actual, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
