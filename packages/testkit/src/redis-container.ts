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
    stop: async () => {
      await container.stop({ timeout: 0, remove: true });
    },
  };
}
