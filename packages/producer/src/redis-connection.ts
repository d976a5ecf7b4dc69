import type { Logger } from '@holdfast/core';
import { Redis } from 'ioredis';

/**
 * Producers fail fast when Redis is away (the spool already holds the event and the drainer
 * enqueues it later); workers wait for Redis for as long as it takes, as BullMQ requires.
 * Connection errors are logged once per outage, not once per reconnect attempt.
 *
 * `commandTimeoutMs` rejects a command Redis has not answered within it: a Redis that hangs (the
 * connection stays up, nothing answers) is otherwise waited on for ever. Only for a connection
 * that never runs a blocking command (XREAD BLOCK, BZPOPMIN: a worker's), which would time out
 * while it waits as it should.
 */
export function createRedisConnection(
  url: string,
  role: 'producer' | 'worker',
  name: string,
  log?: Logger,
  options: { autoPipelining?: boolean; commandTimeoutMs?: number } = {},
): Redis {
  const redis = new Redis(url, {
    connectionName: `${name}:${role}`,
    // Commands issued in one turn of the event loop go out in one write (one syscall).
    enableAutoPipelining: options.autoPipelining ?? false,
    maxRetriesPerRequest: role === 'worker' ? null : 1,
    enableOfflineQueue: role === 'worker',
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    ...(options.commandTimeoutMs === undefined ? {} : { commandTimeout: options.commandTimeoutMs }),
  });
  let reported = false;
  redis.on('ready', () => {
    if (reported) log?.info({ connection: name }, 'redis connection restored');
    reported = false;
  });
  redis.on('error', (error: Error) => {
    if (reported) return;
    reported = true;
    log?.warn({ connection: name, err: error.message }, 'redis connection lost; reconnecting');
  });
  return redis;
}
