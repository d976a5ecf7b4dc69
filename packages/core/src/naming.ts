import { z } from 'zod';

/**
 * A name that becomes one segment of an object key (project, category). Lowercase, no slashes,
 * so keys stay predictable across S3 and the local filesystem.
 */
export const keySegment = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'must be 1-63 of a-z 0-9 . _ - starting with a letter or digit');
