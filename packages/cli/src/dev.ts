import { join, resolve } from 'node:path';
import {
  createLogger,
  type HoldfastConfig,
  loadConfig,
  type ServiceHandle,
  type TransportSpec,
} from '@holdfast/core';
import { type LocalRedis, startLocalRedis } from './local-redis.ts';
import { SERVICES } from './services.ts';

/**
 * The embedded default: every service in this one process, the local WORM store, outbox
 * transports, and (unless REDIS_URL is set) a private redis-server under ./.holdfast/redis.
 */
export async function runDev(): Promise<void> {
  let config = loadConfig();
  const log = createLogger({ name: 'holdfast-dev', level: config.logLevel });
  let redis: LocalRedis | undefined;
  if (!config.redisUrl) {
    redis = await startLocalRedis(resolve('.holdfast/redis'));
    config = Object.freeze({ ...config, redisUrl: redis.url }) as Readonly<HoldfastConfig>;
  }
  const handles: ServiceHandle[] = [];
  const stopAll = async () => {
    for (const handle of handles.reverse()) await handle.close().catch(() => {});
    await redis?.stop();
  };
  try {
    for (const [name, load] of Object.entries(SERVICES)) {
      const start = await load();
      // Each in-process service gets its own spool directory, as separate processes would.
      // …and its own free ops port: in one process they cannot share HOLDFAST_METRICS_PORT.
      handles.push(await start({ ...config, spoolDir: join(config.spoolDir, name), metricsPort: 0 }));
    }
  } catch (error) {
    await stopAll();
    throw error;
  }
  const ready = {
    redisUrl: config.redisUrl,
    store: config.store,
    spoolDir: config.spoolDir,
    email: transportText(config.channels.email.transport, 'ses'),
    sms: transportText(config.channels.sms.transport, 'twilio'),
    whatsapp: transportText(config.channels.whatsapp.transport, 'cloud-api'),
    services: Object.keys(SERVICES),
    ingestUrl: handles.map((h) => (h as { url?: string }).url).find(Boolean),
  };
  log.info(ready, 'holdfast dev is running; Ctrl-C stops it');
  // One machine-readable line for scripts and tests that drive the dev stack.
  process.stdout.write(`HOLDFAST_READY ${JSON.stringify(ready)}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    stopAll().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function transportText(spec: TransportSpec, provider: string): string {
  return spec.kind === 'outbox' ? `outbox:${spec.dir}` : provider;
}
