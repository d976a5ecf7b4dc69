import { join } from 'node:path';
import { type ArchiverHandle, type ArchiverOptions, start as startArchiver } from '@holdfast/archiver';
import { createLogger, type HoldfastConfig, loadConfig, QUEUE_PREFIX, type QueueName } from '@holdfast/core';
import { type IngestHandle, type IngestOptions, start as startIngest } from '@holdfast/ingest';
import { createProducer, type Producer, type ProducerOptions } from '@holdfast/producer';
import { type SenderHandle, type SenderOptions, start as startSender } from '@holdfast/sender';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore, type ObjectStore } from '@holdfast/worm-store';
import { Queue } from 'bullmq';

/**
 * A whole Holdfast fleet for one test: a private redis-server, a local WORM store, the archiver
 * and sender in this process (started and stopped at will), a producer, and the email outbox.
 */
export interface TestFleet {
  redis: TestRedis;
  dir: string;
  config: Readonly<HoldfastConfig>;
  store: ObjectStore;
  /** Email outbox; SMS and WhatsApp outboxes are `outboxDirs.sms` / `.whatsapp`. */
  outboxDir: string;
  outboxDirs: { email: string; sms: string; whatsapp: string };
  producer(options?: Partial<ProducerOptions>): Promise<Producer>;
  startArchiver(options?: ArchiverOptions): Promise<ArchiverHandle>;
  startSender(options?: SenderOptions): Promise<SenderHandle>;
  startIngest(options?: IngestOptions): Promise<IngestHandle>;
  queue(name: QueueName): Queue;
  close(): Promise<void>;
}

export async function startFleet(
  options: { store?: ObjectStore; env?: Record<string, string> } = {},
): Promise<TestFleet> {
  const redis = await startRedis();
  const tmp = await tempDir('holdfast-fleet-');
  const store = options.store ?? (await LocalWormStore.open({ dir: join(tmp.path, 'store') }));
  const outboxDir = join(tmp.path, 'outbox');
  const outboxDirs = {
    email: outboxDir,
    sms: join(tmp.path, 'outbox-sms'),
    whatsapp: join(tmp.path, 'outbox-whatsapp'),
  };
  const config = loadConfig({
    REDIS_URL: redis.url,
    HOLDFAST_STORE: `local:${join(tmp.path, 'store')}`,
    HOLDFAST_SPOOL_DIR: join(tmp.path, 'spool'),
    HOLDFAST_EMAIL_TRANSPORT: `outbox:${outboxDir}`,
    HOLDFAST_SMS_TRANSPORT: `outbox:${outboxDirs.sms}`,
    HOLDFAST_WHATSAPP_TRANSPORT: `outbox:${outboxDirs.whatsapp}`,
    HOLDFAST_LOG_LEVEL: process.env.HOLDFAST_TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    HOLDFAST_METRICS_PORT: '0',
    HOLDFAST_BREAKER_RESET_MS: '1000',
    ...options.env,
  });
  const logger = createLogger({ name: 'test', level: config.logLevel });
  const closers: (() => Promise<void>)[] = [];
  const queues = new Map<string, Queue>();
  return {
    redis,
    dir: tmp.path,
    config,
    store,
    outboxDir,
    outboxDirs,
    async producer(overrides = {}) {
      const producer = await createProducer({
        project: 'acme',
        redisUrl: redis.url,
        spoolDir: join(tmp.path, 'spool', `producer-${closers.length}`),
        logger,
        channels: config.channels,
        ...overrides,
      });
      closers.push(() => producer.close());
      return producer;
    },
    async startArchiver(archiverOptions = {}) {
      const handle = await startArchiver(config, {
        store,
        logger,
        retryBaseMs: 100,
        retryCapMs: 500,
        ...archiverOptions,
      });
      closers.push(() => handle.close());
      return handle;
    },
    async startSender(senderOptions = {}) {
      const handle = await startSender(config, {
        logger,
        retryBaseMs: 100,
        retryCapMs: 500,
        redeliverAfterMs: 1000,
        ...senderOptions,
      });
      closers.push(() => handle.close());
      return handle;
    },
    async startIngest(ingestOptions = {}) {
      const handle = await startIngest(config, {
        logger,
        host: '127.0.0.1',
        redeliverAfterMs: 1000,
        ...ingestOptions,
      });
      closers.push(() => handle.close());
      return handle;
    },
    queue(name) {
      let q = queues.get(name);
      if (!q) {
        q = new Queue(name, {
          connection: { url: redis.url },
          prefix: QUEUE_PREFIX,
        });
        queues.set(name, q);
      }
      return q;
    },
    async close() {
      for (const close of closers.reverse()) await close().catch(() => {});
      for (const q of queues.values()) await q.close().catch(() => {});
      if (!options.store) await store.close();
      await redis.stop();
      await tmp.remove();
    },
  };
}
