import { join } from 'node:path';
import { ConfigError, createLogger, type HoldfastConfig, type Logger, RetentionPolicy } from '@holdfast/core';
import {
  createRedisConnection,
  createSubmitter,
  EventWriter,
  holdfastMetrics,
  type OpsServer,
  observeSpool,
  startOpsServer,
} from '@holdfast/producer';
import type { FastifyInstance } from 'fastify';
import { ApiKeys } from './api-keys.ts';
import type { IngestDeps } from './ingest-deps.ts';
import { type CertificateSource, confirmSubscription, httpsCertificateSource } from './providers/index.ts';
import { readinessChecks } from './routes/health.ts';
import { buildServer } from './server.ts';

export interface IngestOptions {
  logger?: Logger;
  policy?: RetentionPolicy;
  /** Tests inject a certificate source for SNS; production fetches only from SNS hosts. */
  snsCertificates?: CertificateSource;
  confirmSnsSubscription?: (subscribeUrl: string) => Promise<void>;
  /** Listen address. @defaultValue '0.0.0.0' */
  host?: string;
  /** See EventWriterOptions. */
  redeliverAfterMs?: number;
}

export interface IngestHandle {
  readonly app: FastifyInstance;
  /** `http://host:port` the server listens on. */
  readonly url: string;
  /** `http://host:port` of the ops endpoint (`/metrics`, `/healthz`, `/readyz`) on `HOLDFAST_METRICS_PORT`. */
  readonly opsUrl: string;
  readonly writer: EventWriter;
  close(): Promise<void>;
}

/** Start the ingest service: provider webhooks and the authenticated ingest API on `PORT`. */
export async function start(
  config: Readonly<HoldfastConfig>,
  options: IngestOptions = {},
): Promise<IngestHandle> {
  if (!config.redisUrl)
    throw new ConfigError('REDIS_URL', 'ingest needs it: the Redis that carries its queues');
  const log = options.logger ?? createLogger({ name: 'holdfast-ingest', level: config.logLevel });
  const policy = options.policy ?? (await RetentionPolicy.fromConfig(config));
  const writer = await EventWriter.open({
    spoolDir: join(config.spoolDir, 'ingest'),
    redisUrl: config.redisUrl,
    logger: log,
    redeliverAfterMs: options.redeliverAfterMs,
    maxBacklog: config.spoolMaxBacklog,
  });
  const redis = createRedisConnection(config.redisUrl, 'producer', 'holdfast-ingest', log);
  // Requests fail fast while Redis is away, so wait for the first connection before listening.
  await new Promise<void>((resolve) => {
    if (redis.status === 'ready') return resolve();
    const timer = setTimeout(resolve, 5000);
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  const apiKeys = new ApiKeys(config.apiKeys);
  if (apiKeys.size === 0)
    log.warn('HOLDFAST_API_KEYS is not set: the ingest API refuses every request (webhooks still work)');
  const deps: IngestDeps = {
    config,
    writer,
    submitter: createSubmitter(writer, policy, config.channels),
    redis,
    apiKeys,
    log,
    snsCertificates: options.snsCertificates ?? httpsCertificateSource(),
    confirmSnsSubscription:
      options.confirmSnsSubscription ?? ((url) => confirmSubscription({ SubscribeURL: url })),
  };
  const app = await buildServer(deps);
  const host = options.host ?? '0.0.0.0';
  // Its metrics (process and spool) go where every worker's go, on the ops port, not on the
  // public one.
  const metrics = holdfastMetrics();
  const stopSpoolMetrics = observeSpool(metrics, 'ingest', writer);
  let ops: OpsServer | undefined;
  let url: string;
  try {
    ops = await startOpsServer({
      port: config.metricsPort,
      host,
      queues: [],
      checks: readinessChecks(deps),
      registry: metrics.registry,
      log,
    });
    url = await app.listen({ port: config.port, host });
  } catch (error) {
    await ops?.close();
    stopSpoolMetrics();
    await app.close();
    await writer.close();
    redis.disconnect();
    throw error;
  }
  log.info({ url }, 'ingest listening');
  let closed = false;
  return {
    app,
    url,
    opsUrl: ops.url,
    writer,
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
      await ops.close();
      stopSpoolMetrics();
      await writer.close();
      redis.disconnect();
    },
  };
}
