import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

/**
 * Keys whose values never reach a log line, at any depth of a logged object (at the top level of
 * a child logger's bindings): message bodies (an archive's logs must not become a second, unlocked copy of what it
 * archives), credentials and the headers that carry them.
 */
export const REDACTED_KEYS: ReadonlySet<string> = new Set([
  ...['mime', 'text', 'html', 'body', 'attachments', 'content', 'payload'],
  ...['password', 'secret', 'token', 'apiKey', 'authorization', 'cookie'],
  ...['accessKeyId', 'secretAccessKey', 'sessionToken', 'redisUrl'],
  ...['x-twilio-signature', 'x-hub-signature-256'],
]);

const CENSOR = '[redacted]';
/** Deeper than any object this code logs; it also stops a cycle. */
const MAX_DEPTH = 8;

/**
 * A copy of `value` with every REDACTED_KEYS entry censored; what holds none is returned as it is
 * (the caller's object is never changed). Key-based, so one pass over the object: pino's own
 * path-based redaction needed a wildcard path per depth and key, and cost ~25 µs a line.
 * Errors, buffers and dates are left to their serializers.
 */
export function redactKeys(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (value instanceof Error || ArrayBuffer.isView(value) || value instanceof Date) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const redacted = redactKeys(value[i], depth + 1);
      if (redacted === value[i]) continue;
      copy ??= [...value];
      copy[i] = redacted;
    }
    return copy ?? value;
  }
  const object = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(object)) {
    const field = object[key];
    const redacted = REDACTED_KEYS.has(key) && field !== undefined ? CENSOR : redactKeys(field, depth + 1);
    if (redacted === field) continue;
    copy ??= { ...object };
    copy[key] = redacted;
  }
  return copy ?? object;
}

export function createLogger(
  options: { name: string; level?: LoggerOptions['level'] },
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      formatters: { log: (object) => redactKeys(object) as Record<string, unknown> },
      // pino builds a child's bindings without the bindings formatter: its own redaction, on top
      // level keys only (no wildcard paths, which are what made it slow), covers `child({ token })`.
      redact: { paths: [...REDACTED_KEYS].filter((k) => /^[A-Za-z_$][\w$]*$/.test(k)), censor: CENSOR },
      base: { service: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
