import { join } from 'node:path';
import { createLogger } from '@holdfast/core';
import { createProducer, type Producer } from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { Redis } from 'ioredis';
import { type ChildService, startChild } from './children.ts';
import { removeLater } from './cleanup.ts';

/**
 * A fleet for one measurement, shaped like production rather than like the e2e fleet
 * (test/support/fleet.ts, which runs the services inside the test process): a private
 * redis-server (AOF everysec, noeviction), the archiver and the sender each in its own child
 * process started from the environment, and the producer SDK in this process, which plays the
 * application calling it.
 */
export interface BenchFleet {
  readonly redis: TestRedis;
  readonly redisPid: number;
  readonly dir: string;
  readonly storeDir: string;
  readonly outboxDir: string;
  readonly producer: Producer;
  readonly services: Readonly<Record<string, ChildService>>;
  /** A raw BullMQ no-op worker process (the baselines), stopped with the fleet. */
  startNoop(
    name: string,
    queues: { queue: string; concurrency: number }[],
    prefix: string,
  ): Promise<ChildService>;
  /** Processes to sample RSS from: this one (the producer), each service, and redis-server. */
  pids(): Record<string, number>;
  close(): Promise<void>;
}

export interface BenchFleetOptions {
  services: ('archiver' | 'sender')[];
  profileDir?: string;
  /** Level for the services' logs (written to files in the fleet dir). @defaultValue info, as production */
  logLevel?: string;
}

export async function startBenchFleet(options: BenchFleetOptions): Promise<BenchFleet> {
  const redis = await startRedis();
  const tmp = await tempDir('holdfast-bench-');
  const storeDir = join(tmp.path, 'store');
  const outboxDir = join(tmp.path, 'outbox');
  const logDir = join(tmp.path, 'logs');
  const env = {
    REDIS_URL: redis.url,
    HOLDFAST_STORE: `local:${storeDir}`,
    HOLDFAST_SPOOL_DIR: join(tmp.path, 'spool'),
    HOLDFAST_EMAIL_TRANSPORT: `outbox:${outboxDir}`,
    HOLDFAST_LOG_LEVEL: options.logLevel ?? process.env.HOLDFAST_BENCH_LOG_LEVEL ?? 'info',
    // Every service serves metrics/health; two on one host need their own ports (0 = a free one).
    HOLDFAST_METRICS_PORT: '0',
  };
  const children: ChildService[] = [];
  const services: Record<string, ChildService> = {};
  let producer: Producer | undefined;
  const close = async () => {
    await producer?.close().catch(() => {});
    for (const child of children.reverse()) await child.stop().catch(() => {});
    await redis.stop();
    removeLater(tmp.path, tmp.remove);
  };
  try {
    const info = new Redis(redis.url);
    const server = await info.info('server');
    info.disconnect();
    const redisPid = Number(/process_id:(\d+)/.exec(server)?.[1]);
    const started = await Promise.allSettled(
      options.services.map((role) =>
        startChild({ name: role, role, env, logDir, profileDir: options.profileDir }),
      ),
    );
    for (const [i, result] of started.entries()) {
      if (result.status === 'rejected') continue;
      children.push(result.value);
      services[options.services[i]!] = result.value;
    }
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    producer = await createProducer({
      project: 'bench',
      redisUrl: redis.url,
      spoolDir: join(tmp.path, 'spool', 'producer'),
      // Warnings (e.g. an enqueue that failed) go to stderr, away from the results table.
      logger: createLogger({ name: 'bench-producer', level: 'warn' }, process.stderr),
    });
    const p = producer;
    return {
      redis,
      redisPid,
      dir: tmp.path,
      storeDir,
      outboxDir,
      producer: p,
      services,
      async startNoop(name, queues, prefix) {
        const child = await startChild({
          name,
          role: 'noop',
          env: {
            REDIS_URL: redis.url,
            BENCH_PREFIX: prefix,
            BENCH_QUEUES: queues.map((q) => `${q.queue}:${q.concurrency}`).join(','),
          },
          logDir,
          profileDir: options.profileDir,
        });
        children.push(child);
        return child;
      },
      pids() {
        const out: Record<string, number> = { 'producer (bench process)': process.pid };
        for (const [name, child] of Object.entries(services)) out[name] = child.pid;
        out['redis-server'] = redisPid;
        return out;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
