import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

const transport = (provider: string) =>
  z.string().regex(new RegExp(`^(${provider}|outbox:.+)$`), `must be "${provider}" or "outbox:<dir>"`);

const url = z.url();

const envSchema = z.object({
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  HOLDFAST_STORE: z
    .string()
    .regex(/^(local:.+|s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$/, 'must be "local:<dir>" or "s3://<bucket>"')
    .default('local:./.holdfast/store'),
  HOLDFAST_S3_ENDPOINT: url.optional(),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  HOLDFAST_SPOOL_DIR: z.string().min(1).default('./.holdfast/spool'),
  HOLDFAST_EMAIL_TRANSPORT: transport('ses').default('outbox:./.holdfast/outbox/email'),
  HOLDFAST_SES_ENDPOINT: url.optional(),
  HOLDFAST_SMS_TRANSPORT: transport('twilio').default('outbox:./.holdfast/outbox/sms'),
  HOLDFAST_WHATSAPP_TRANSPORT: transport('cloud-api').default('outbox:./.holdfast/outbox/whatsapp'),
  HOLDFAST_RETENTION_POLICY: z.string().min(1).optional(),
  HOLDFAST_API_KEYS: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9._-]{0,62}:[^,\s]{16,}(,[a-z0-9][a-z0-9._-]{0,62}:[^,\s]{16,})*$/,
      'must be "<project>:<key>[,<project>:<key>…]" with keys of 16+ characters',
    )
    .optional(),
  HOLDFAST_PUBLIC_BASE_URL: url.optional(),
  HOLDFAST_TWILIO_AUTH_TOKEN: z.string().min(1).optional(),
  HOLDFAST_WHATSAPP_APP_SECRET: z.string().min(1).optional(),
  HOLDFAST_WHATSAPP_VERIFY_TOKEN: z.string().min(1).optional(),
  HOLDFAST_SNS_TOPIC_ARNS: z.string().min(1).optional(),
  HOLDFAST_INGEST_BODY_LIMIT: z.coerce
    .number()
    .int()
    .min(1024)
    .default(10 * 1024 * 1024),
  HOLDFAST_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOLDFAST_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  HOLDFAST_SHUTDOWN_DEADLINE_MS: z.coerce.number().int().min(100).default(25_000),
});

/** Every environment variable Holdfast reads; deployment manifests are checked against this list. */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.freeze(Object.keys(envSchema.shape));

export type TransportSpec = { kind: 'provider' } | { kind: 'outbox'; dir: string };

export interface HoldfastConfig {
  /** Unset: the embedded default (`holdfast dev` starts a private redis-server). */
  redisUrl: string | undefined;
  store: string;
  s3Endpoint: string | undefined;
  region: string;
  spoolDir: string;
  transports: { email: TransportSpec; sms: TransportSpec; whatsapp: TransportSpec };
  sesEndpoint: string | undefined;
  retentionPolicyPath: string | undefined;
  apiKeys: string | undefined;
  /** Ingest: the public URL providers call (behind a proxy the local URL differs; Twilio signs the public one). */
  publicBaseUrl: string | undefined;
  twilioAuthToken: string | undefined;
  whatsappAppSecret: string | undefined;
  whatsappVerifyToken: string | undefined;
  /** Ingest: SNS topics allowed to post SES events (comma-separated ARNs); unset allows any verified topic. */
  snsTopicArns: readonly string[] | undefined;
  /** Ingest: largest request body accepted, in bytes. */
  ingestBodyLimit: number;
  logLevel: z.infer<typeof envSchema>['HOLDFAST_LOG_LEVEL'];
  port: number;
  /** Workers serve /metrics, /healthz and /readyz here (ingest serves them on `port`). */
  metricsPort: number;
  /** How long a service may take to stop on SIGTERM before it exits anyway. */
  shutdownDeadlineMs: number;
}

/**
 * Read and validate the environment once, at process start. An empty string counts as unset.
 * The first bad variable is named in the error together with the form it must take.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<HoldfastConfig> {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    throw new ConfigError(variable, `${issue.message} (got ${JSON.stringify(present[variable] ?? null)})`);
  }
  const e = parsed.data;
  return Object.freeze({
    redisUrl: e.REDIS_URL,
    store: e.HOLDFAST_STORE,
    s3Endpoint: e.HOLDFAST_S3_ENDPOINT,
    region: e.AWS_REGION,
    spoolDir: resolve(e.HOLDFAST_SPOOL_DIR),
    transports: Object.freeze({
      email: transportSpec(e.HOLDFAST_EMAIL_TRANSPORT),
      sms: transportSpec(e.HOLDFAST_SMS_TRANSPORT),
      whatsapp: transportSpec(e.HOLDFAST_WHATSAPP_TRANSPORT),
    }),
    sesEndpoint: e.HOLDFAST_SES_ENDPOINT,
    retentionPolicyPath: e.HOLDFAST_RETENTION_POLICY,
    apiKeys: e.HOLDFAST_API_KEYS,
    publicBaseUrl: e.HOLDFAST_PUBLIC_BASE_URL,
    twilioAuthToken: e.HOLDFAST_TWILIO_AUTH_TOKEN,
    whatsappAppSecret: e.HOLDFAST_WHATSAPP_APP_SECRET,
    whatsappVerifyToken: e.HOLDFAST_WHATSAPP_VERIFY_TOKEN,
    snsTopicArns: e.HOLDFAST_SNS_TOPIC_ARNS
      ? Object.freeze(e.HOLDFAST_SNS_TOPIC_ARNS.split(',').map((a) => a.trim()))
      : undefined,
    ingestBodyLimit: e.HOLDFAST_INGEST_BODY_LIMIT,
    logLevel: e.HOLDFAST_LOG_LEVEL,
    port: e.PORT,
    shutdownDeadlineMs: e.HOLDFAST_SHUTDOWN_DEADLINE_MS,
    metricsPort: e.HOLDFAST_METRICS_PORT,
  });
}

function transportSpec(value: string): TransportSpec {
  return value.startsWith('outbox:')
    ? { kind: 'outbox', dir: resolve(value.slice('outbox:'.length)) }
    : { kind: 'provider' };
}
