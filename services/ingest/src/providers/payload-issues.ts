import { zodIssues } from '@holdfast/core';
import type { z } from 'zod';
import { PayloadInvalidError } from './errors.ts';

/**
 * Parse with a zod schema, turning failures into a PayloadInvalidError that names each path
 * (`prefix` places a nested value in the whole payload: `entry.0.changes.1.value`).
 */
export function parsePayload<T extends z.ZodType>(
  schema: T,
  value: unknown,
  what: string,
  prefix?: string,
): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) throw new PayloadInvalidError(what, zodIssues(result.error, prefix));
  return result.data;
}
