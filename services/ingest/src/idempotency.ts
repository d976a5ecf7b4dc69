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

/** What identifies a request for `Idempotency-Key`: everything the route turns into what it submits. */
export interface IdempotentRequest {
  method: string;
  /** The route pattern (`/v1/records`): keys are scoped per project only, so the route is part of the request. */
  route: string;
  /** The Content-Type header as sent. */
  contentType: string | undefined;
  /** The raw query string, without `?` (a document record's metadata lives there). */
  query: string;
  /** The raw bytes, or the parsed JSON. */
  body: unknown;
}

/**
 * A digest of the whole request, not just its body: a document record's category, type and
 * subject are query parameters, so the same bytes under the same key can be another record.
 * Query parameters are sorted by name (stable, so repeated ones keep their order) and re-encoded:
 * order and escaping do not change what is submitted.
 */
function requestHash(request: IdempotentRequest): string {
  const query = new URLSearchParams(request.query);
  query.sort();
  const bodyHash = createHash('sha256')
    .update(Buffer.isBuffer(request.body) ? request.body : JSON.stringify(request.body ?? null))
    .digest('hex');
  return createHash('sha256')
    .update(
      JSON.stringify([
        request.method,
        request.route,
        request.contentType ?? null,
        query.toString(),
        bodyHash,
      ]),
    )
    .digest('hex');
}

/**
 * `Idempotency-Key`: the same key and request (method, route, content type, query, body) within
 * 24 hours returns the first response and submits nothing new; the same key with any other
 * request is refused. Keys are per project.
 */
export async function withIdempotency(
  redis: Redis,
  project: string,
  key: string | undefined,
  request: IdempotentRequest,
  run: () => Promise<StoredResponse>,
): Promise<StoredResponse & { replayed: boolean }> {
  if (key === undefined) return { ...(await run()), replayed: false };
  const redisCall = <T>(p: Promise<T>): Promise<T> =>
    p.catch((error: unknown) => {
      throw new DependencyUnavailableError('the idempotency store (Redis)', error);
    });
  const redisKey = `${QUEUE_PREFIX}:idempotency:${project}:${createHash('sha256').update(key).digest('hex')}`;
  // Entries written before the whole request was hashed carry only `bodyHash`: they match
  // nothing, so such a key is refused as reused rather than replayed for another request.
  const hash = requestHash(request);
  const claimed = await redisCall(
    redis.set(
      redisKey,
      JSON.stringify({ requestHash: hash, pending: true }),
      'EX',
      PENDING_TTL_SECONDS,
      'NX',
    ),
  );
  if (claimed !== 'OK') {
    const existing = JSON.parse((await redisCall(redis.get(redisKey))) ?? '{}') as {
      requestHash?: string;
      pending?: boolean;
      response?: StoredResponse;
    };
    if (existing.requestHash !== hash) throw new IdempotencyKeyReusedError();
    if (existing.pending || !existing.response) throw new IdempotencyKeyInProgressError();
    return { ...existing.response, replayed: true };
  }
  try {
    const response = await run();
    await redis.set(redisKey, JSON.stringify({ requestHash: hash, response }), 'EX', TTL_SECONDS);
    return { ...response, replayed: false };
  } catch (error) {
    // A failed attempt may be retried with the same key.
    await redis.del(redisKey);
    throw error;
  }
}
