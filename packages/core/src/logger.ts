import { type Logger, type LoggerOptions, pino } from 'pino';

export type { Logger };

/**
 * Paths whose values never reach a log line: message bodies (an archive's logs must not become a
 * second, unlocked copy of what it archives) and credentials.
 */
export const REDACTED_PATHS: readonly string[] = Object.freeze([
  ...['mime', 'text', 'html', 'body', 'attachments', 'content', 'payload'].flatMap((f) => [
    f,
    `*.${f}`,
    `*.*.${f}`,
    `event.data.${f}`,
  ]),
  ...[
    'password',
    'secret',
    'token',
    'apiKey',
    'authorization',
    'accessKeyId',
    'secretAccessKey',
    'sessionToken',
  ].flatMap((f) => [f, `*.${f}`, `*.*.${f}`]),
  'req.headers.authorization',
  'req.headers["x-twilio-signature"]',
  'req.headers["x-hub-signature-256"]',
  'req.headers.cookie',
  'redisUrl',
  '*.redisUrl',
]);

export function createLogger(
  options: { name: string; level?: LoggerOptions['level'] },
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      base: { service: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
