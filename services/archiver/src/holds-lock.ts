import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { QUEUE_PREFIX } from '@holdfast/core';
import { RedisScript } from '@holdfast/producer';
import type { Redis } from 'ioredis';

const HOLDS_LOCK = `${QUEUE_PREFIX}:holds-lock`;
/** Lapses this long after its holder died; renewed while the holder runs. */
const LOCK_MS = 30_000;
const RETRY_MS = 200;
const RENEW = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`,
);
const RELEASE = new RedisScript(
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
);

/**
 * Runs `change` while no other placement, release or rebuild runs, waiting for the one that does.
 * A release first decides which versions no other matter holds and then lifts their holds: a
 * placement that held one of them in between would see its hold lifted under an open matter.
 */
export async function withHoldsLock<T>(redis: Redis, change: () => Promise<T>): Promise<T> {
  const token = randomUUID();
  while ((await redis.set(HOLDS_LOCK, token, 'PX', LOCK_MS, 'NX')) !== 'OK') await sleep(RETRY_MS);
  const renew = setInterval(() => {
    RENEW.run(redis, [HOLDS_LOCK], [token, LOCK_MS]).catch(() => {});
  }, LOCK_MS / 3);
  try {
    return await change();
  } finally {
    clearInterval(renew);
    await RELEASE.run(redis, [HOLDS_LOCK], [token]).catch(() => {});
  }
}
