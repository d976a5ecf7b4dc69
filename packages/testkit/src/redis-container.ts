import { spawnSync } from 'node:child_process';
import getPort from 'get-port';
import { GenericContainer, Wait } from 'testcontainers';
import type { TestRedis } from './redis.ts';

/**
 * The same TestRedis as the local binary, in a container (used where a Docker engine answers).
 * The host port is fixed so clients reconnect to the same address after kill() + restart().
 */
export async function startRedisContainer(appendOnly: boolean): Promise<TestRedis> {
  const port = await getPort({ host: '127.0.0.1' });
  const container = await new GenericContainer('redis:7.2-alpine')
    .withExposedPorts({ container: 6379, host: port })
    .withCommand([
      ...['redis-server', '--save', '', '--appendonly', appendOnly ? 'yes' : 'no'],
      ...['--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction'],
    ])
    .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
    .start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dataDir: '/data (in the container)',
    // `docker stop -t 0` delivers SIGKILL at once: no shutdown save, like a crash.
    kill: async () => {
      await container.stop({ timeout: 0, remove: false });
    },
    restart: () => container.restart(),
    // The engine's freezer: a signal to the container's pid 1 from inside would be ignored.
    freeze: () => {
      spawnSync('docker', ['pause', container.getId()], { stdio: 'ignore' });
    },
    thaw: () => {
      spawnSync('docker', ['unpause', container.getId()], { stdio: 'ignore' });
    },
    stop: async () => {
      await container.stop({ timeout: 0, remove: true });
    },
  };
}
