import { resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

const transport = (provider: string) =>
  z.string().regex(new RegExp(`^(${provider}|outbox:.+)$`), `must be "${provider}" or "outbox:<dir>"`);

const url = z.url();

const failMode = z.enum(['open', 'closed']);
const delivery = z.enum(['at-least-once', 'at-most-once']);
const csv = z
  .string()
  .min(1)
  .transform((v) =>
    Object.freeze(
      v
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    ),
  );

/**
 * How many unacknowledged events one process's spool may hold before it refuses new ones
 * (`HOLDFAST_SPOOL_MAX_BACKLOG`). Each costs about 0.6 KB of heap until acknowledged, so the
 * default bounds a backlog to ~150 MB: a long Redis outage ends in refusals callers can retry,
 * not in a process the kernel kills and that cannot load its own spool on restart.
 */
export const DEFAULT_SPOOL_MAX_BACKLOG = 250_000;

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
  HOLDFAST_EMAIL_FAIL_MODE: failMode.default('closed'),
  HOLDFAST_SMS_FAIL_MODE: failMode.default('open'),
  HOLDFAST_WHATSAPP_FAIL_MODE: failMode.default('closed'),
  HOLDFAST_EMAIL_DELIVERY: delivery.default('at-most-once'),
  HOLDFAST_SMS_DELIVERY: delivery.default('at-least-once'),
  HOLDFAST_WHATSAPP_DELIVERY: delivery.default('at-most-once'),
  HOLDFAST_PROVIDER_TIMEOUT_MS: z.coerce.number().int().min(100).default(15_000),
  HOLDFAST_TWILIO_ACCOUNT_SID: z
    .string()
    .regex(/^AC[0-9a-fA-F]{32}$/, 'must be a Twilio Account SID (AC + 32 hex digits)')
    .optional(),
  HOLDFAST_TWILIO_API_URL: url.default('https://api.twilio.com'),
  HOLDFAST_WHATSAPP_ACCESS_TOKEN: z.string().min(1).optional(),
  HOLDFAST_WHATSAPP_PHONE_NUMBER_ID: z
    .string()
    .regex(/^\d+$/, 'must be the numeric phone number id')
    .optional(),
  HOLDFAST_WHATSAPP_GRAPH_URL: url.default('https://graph.facebook.com'),
  HOLDFAST_WHATSAPP_GRAPH_VERSION: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must look like v23.0')
    .default('v23.0'),
  HOLDFAST_MEDIA_ALLOWED_HOSTS: csv.prefault(
    'api.twilio.com,*.twiliocdn.com,*.twilio.com,graph.facebook.com,lookaside.fbsbx.com,*.fbcdn.net,*.whatsapp.net',
  ),
  HOLDFAST_MEDIA_ALLOWED_NETWORKS: csv.optional(),
  HOLDFAST_MEDIA_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(100 * 1024 * 1024),
  HOLDFAST_MEDIA_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  HOLDFAST_REPUTATION_BOUNCE_RATE: z.coerce.number().gt(0).max(1).default(0.05),
  HOLDFAST_REPUTATION_COMPLAINT_RATE: z.coerce.number().gt(0).max(1).default(0.001),
  HOLDFAST_REPUTATION_WINDOW_HOURS: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 30)
    .default(24),
  HOLDFAST_REPUTATION_MIN_SENDS: z.coerce.number().int().min(1).default(200),
  HOLDFAST_RETENTION_POLICY: z.string().min(1).optional(),
  HOLDFAST_API_KEYS: z
    .string()
    .regex(
      /^[a-z0-9][a-z0-9._-]{0,62}:[^,\s]{16,}(,[a-z0-9][a-z0-9._-]{0,62}:[^,\s]{16,})*$/,
      'must be "<project>:<key>[,<project>:<key>…]" with keys of 16+ characters',
    )
    .optional(),
  HOLDFAST_ADMIN_API_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
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
  HOLDFAST_STALLED_JOB_MS: z.coerce.number().int().min(1000).default(30_000),
  HOLDFAST_BREAKER_RESET_MS: z.coerce.number().int().min(100).default(30_000),
  HOLDFAST_BREAKER_ERROR_PERCENT: z.coerce.number().int().min(1).max(100).default(50),
  HOLDFAST_BREAKER_MIN_CALLS: z.coerce.number().int().min(1).default(10),
  HOLDFAST_SPOOL_MAX_BACKLOG: z.coerce.number().int().min(1).default(DEFAULT_SPOOL_MAX_BACKLOG),
});

/** Every environment variable Holdfast reads; deployment manifests are checked against this list. */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.freeze(Object.keys(envSchema.shape));

export type TransportSpec = { kind: 'provider' } | { kind: 'outbox'; dir: string };

export type OutboundChannel = 'email' | 'sms' | 'whatsapp';
/** `closed`: sent only after the archive write; `open`: sent at once, archived when the store can. */
export type FailMode = z.infer<typeof failMode>;
/** What a send whose earlier attempt's outcome is unknown does: send again, or not. */
export type DeliveryPolicy = z.infer<typeof delivery>;

export interface ChannelConfig {
  transport: TransportSpec;
  failMode: FailMode;
  delivery: DeliveryPolicy;
}

export interface HoldfastConfig {
  /** Unset: the embedded default (`holdfast dev` starts a private redis-server). */
  redisUrl: string | undefined;
  store: string;
  s3Endpoint: string | undefined;
  region: string;
  spoolDir: string;
  /** Per outbound channel: transport, fail mode and delivery policy. */
  channels: Readonly<Record<OutboundChannel, Readonly<ChannelConfig>>>;
  /** Sender: how long one provider call may take before it counts as a timeout. */
  providerTimeoutMs: number;
  twilio: { accountSid: string | undefined; apiUrl: string };
  whatsapp: {
    accessToken: string | undefined;
    phoneNumberId: string | undefined;
    graphUrl: string;
    graphVersion: string;
  };
  /** Media fetcher: where downloads may go, and how big and slow they may be. */
  media: {
    /** Host names (`*.` prefix matches subdomains) media URLs may point at. */
    allowedHosts: readonly string[];
    /** CIDR blocks allowed even though private, loopback or link-local (tests allow loopback). */
    allowedNetworks: readonly string[];
    maxBytes: number;
    timeoutMs: number;
  };
  sesEndpoint: string | undefined;
  /**
   * Outbound email is paused for a project whose bounce or complaint rate over the rolling window
   * exceeds these (defaults: SES's published review levels, 5% and 0.1%), once it sent `minSends`.
   */
  reputation: { bounceRate: number; complaintRate: number; windowHours: number; minSends: number };
  retentionPolicyPath: string | undefined;
  apiKeys: string | undefined;
  /** Ingest: the key for the operator pages (`/admin/queues`); unset turns them off. */
  adminApiKey: string | undefined;
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
  /**
   * Workers: a job's lock lasts this long and is renewed while the job runs; a crashed worker's
   * jobs are picked up by another replica within about twice this.
   */
  stalledJobMs: number;
  /** An open circuit breaker lets one probe call through after this long. */
  breakerResetMs: number;
  /** A circuit breaker opens when at least this percentage of its recent calls failed... */
  breakerErrorPercent: number;
  /** ...and there were at least this many of them. */
  breakerMinCalls: number;
  /** A process's spool refuses new events while it holds this many unacknowledged ones. */
  spoolMaxBacklog: number;
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
    channels: Object.freeze({
      email: channel(e.HOLDFAST_EMAIL_TRANSPORT, e.HOLDFAST_EMAIL_FAIL_MODE, e.HOLDFAST_EMAIL_DELIVERY),
      sms: channel(e.HOLDFAST_SMS_TRANSPORT, e.HOLDFAST_SMS_FAIL_MODE, e.HOLDFAST_SMS_DELIVERY),
      whatsapp: channel(
        e.HOLDFAST_WHATSAPP_TRANSPORT,
        e.HOLDFAST_WHATSAPP_FAIL_MODE,
        e.HOLDFAST_WHATSAPP_DELIVERY,
      ),
    }),
    providerTimeoutMs: e.HOLDFAST_PROVIDER_TIMEOUT_MS,
    twilio: Object.freeze({ accountSid: e.HOLDFAST_TWILIO_ACCOUNT_SID, apiUrl: e.HOLDFAST_TWILIO_API_URL }),
    whatsapp: Object.freeze({
      accessToken: e.HOLDFAST_WHATSAPP_ACCESS_TOKEN,
      phoneNumberId: e.HOLDFAST_WHATSAPP_PHONE_NUMBER_ID,
      graphUrl: e.HOLDFAST_WHATSAPP_GRAPH_URL,
      graphVersion: e.HOLDFAST_WHATSAPP_GRAPH_VERSION,
    }),
    media: Object.freeze({
      allowedHosts: e.HOLDFAST_MEDIA_ALLOWED_HOSTS,
      allowedNetworks: e.HOLDFAST_MEDIA_ALLOWED_NETWORKS ?? Object.freeze([]),
      maxBytes: e.HOLDFAST_MEDIA_MAX_BYTES,
      timeoutMs: e.HOLDFAST_MEDIA_TIMEOUT_MS,
    }),
    sesEndpoint: e.HOLDFAST_SES_ENDPOINT,
    reputation: Object.freeze({
      bounceRate: e.HOLDFAST_REPUTATION_BOUNCE_RATE,
      complaintRate: e.HOLDFAST_REPUTATION_COMPLAINT_RATE,
      windowHours: e.HOLDFAST_REPUTATION_WINDOW_HOURS,
      minSends: e.HOLDFAST_REPUTATION_MIN_SENDS,
    }),
    retentionPolicyPath: e.HOLDFAST_RETENTION_POLICY,
    apiKeys: e.HOLDFAST_API_KEYS,
    adminApiKey: e.HOLDFAST_ADMIN_API_KEY,
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
    stalledJobMs: e.HOLDFAST_STALLED_JOB_MS,
    breakerResetMs: e.HOLDFAST_BREAKER_RESET_MS,
    breakerErrorPercent: e.HOLDFAST_BREAKER_ERROR_PERCENT,
    breakerMinCalls: e.HOLDFAST_BREAKER_MIN_CALLS,
    spoolMaxBacklog: e.HOLDFAST_SPOOL_MAX_BACKLOG,
  });
}

function channel(transport: string, failMode: FailMode, delivery: DeliveryPolicy): Readonly<ChannelConfig> {
  return Object.freeze({ transport: transportSpec(transport), failMode, delivery });
}

function transportSpec(value: string): TransportSpec {
  return value.startsWith('outbox:')
    ? { kind: 'outbox', dir: resolve(value.slice('outbox:'.length)) }
    : { kind: 'provider' };
}
