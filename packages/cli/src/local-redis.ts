import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { HoldfastError } from '@holdfast/core';
import { Redis } from 'ioredis';

export class RedisNotInstalledError extends HoldfastError {
  constructor() {
    super(
      'HOLDFAST_ERR_REDIS_NOT_INSTALLED',
      'REDIS_URL is not set and redis-server is not on PATH. Install Redis 7 or newer ' +
        '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), ' +
        'or set REDIS_URL to a Redis that runs with appendonly yes and maxmemory-policy noeviction.',
    );
  }
}

export interface LocalRedis {
  url: string;
  stop(): Promise<void>;
}

/**
 * The embedded default's Redis: a private redis-server on a free loopback port, persisted with
 * AOF under `<dir>` and configured never to evict (BullMQ loses jobs under eviction).
 */
/** Tried first so that apps on the same machine can use a stable REDIS_URL; any free port otherwise. */
export const PREFERRED_DEV_REDIS_PORT = 6390;

export async function startLocalRedis(dir: string): Promise<LocalRedis> {
  const binary = findOnPath('redis-server');
  if (!binary) throw new RedisNotInstalledError();
  await mkdir(dir, { recursive: true });
  const port = await freePort(PREFERRED_DEV_REDIS_PORT).catch(() => freePort(0));
  const child: ChildProcess = spawn(
    binary,
    [
      ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''],
      ...['--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction'],
      ...['--logfile', join(dir, 'redis.log')],
    ],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // Refused connections are expected until the server listens; the loop below judges them.
  // Without a listener ioredis prints each as an "Unhandled error event" on the first screen.
  probe.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`redis-server exited at start (see ${join(dir, 'redis.log')})`);
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer on port ${port} (see ${join(dir, 'redis.log')})`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  probe.disconnect();
  return {
    url,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function freePort(wanted: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(wanted, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {}
  }
  return undefined;
}
