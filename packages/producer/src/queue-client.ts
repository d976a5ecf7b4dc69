import type { Logger } from '@holdfast/core';
import { QUEUE_PREFIX, type QueueName } from '@holdfast/core';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QueueConnectionError } from './errors.ts';

/**
 * A Queue handle for reading counts or adding jobs, on a shared connection. Its errors (Redis
 * restarting) are logged at debug: the connection already logs the outage once, and without a
 * listener BullMQ prints every failed command to stderr.
 */
export function openQueue<D = unknown>(name: QueueName, connection: Redis, log: Logger): Queue<D> {
  if (connection.options.enableAutoPipelining) throw new QueueConnectionError(name);
  const queue = new Queue<D>(name, { connection, prefix: QUEUE_PREFIX });
  queue.on('error', (error) => log.debug({ queue: name, err: error.message }, 'queue client error'));
  return queue;
}
