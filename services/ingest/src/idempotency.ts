import { createHash } from 'node:crypto';
import { QUEUE_PREFIX } from '@holdfast/core';
import type { Redis } from 'ioredis';
import {
  DependencyUnavailableError,
  IdempotencyKeyInProgressError,
  IdempotencyKeyReusedError,
} from './errors.ts';

export interface StoredResponse {
  status: number;
  body: unknown;
}

const TTL_SECONDS = 24 * 3600;
const PENDING_TTL_SECONDS = 60;

/**
 * `Idempotency-Key`: the same key and body within 24 hours returns the first response and
 * submits nothing new; the same key with another body is refused. Keys are per project.
 */
export async function withIdempotency(
  redis: Redis,
  project: string,
  key: string | undefined,
  body: unknown,
  run: () => Promise<StoredResponse>,
): Promise<StoredResponse & { replayed: boolean }> {
  if (key === undefined) return { ...(await run()), replayed: false };
  const redisCall = <T>(p: Promise<T>): Promise<T> =>
    p.catch((error: unknown) => {
      throw new DependencyUnavailableError('the idempotency store (Redis)', error);
    });
  const redisKey = `${QUEUE_PREFIX}:idempotency:${project}:${createHash('sha256').update(key).digest('hex')}`;
  const bodyHash = createHash('sha256')
    .update(Buffer.isBuffer(body) ? body : JSON.stringify(body ?? null))
    .digest('hex');
  const claimed = await redisCall(
    redis.set(redisKey, JSON.stringify({ bodyHash, pending: true }), 'EX', PENDING_TTL_SECONDS, 'NX'),
  );
  if (claimed !== 'OK') {
    const existing = JSON.parse((await redisCall(redis.get(redisKey))) ?? '{}') as {
      bodyHash?: string;
      pending?: boolean;
      response?: StoredResponse;
    };
    if (existing.bodyHash !== bodyHash) throw new IdempotencyKeyReusedError();
    if (existing.pending || !existing.response) throw new IdempotencyKeyInProgressError();
    return { ...existing.response, replayed: true };
  }
  try {
    const response = await run();
    await redis.set(redisKey, JSON.stringify({ bodyHash, response }), 'EX', TTL_SECONDS);
    return { ...response, replayed: false };
  } catch (error) {
    // A failed attempt may be retried with the same key.
    await redis.del(redisKey);
    throw error;
  }
}
