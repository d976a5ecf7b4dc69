import type { z } from 'zod';
import type { ValidationIssue } from './errors.ts';

/** Flatten zod's issues into `path: message` pairs for a ValidationError. */
export function zodIssues(error: z.ZodError, prefix?: string): ValidationIssue[] {
  return error.issues.map((issue) => ({
    path: [...(prefix ? [prefix] : []), ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
}
