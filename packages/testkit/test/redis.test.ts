import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { startRedis } from '../src/redis.ts';

describe('startRedis', () => {
  it('starts a private Redis configured as production requires, that survives kill and restart on the same port', async () => {
    const redis = await startRedis();
    const client = new Redis(redis.url, { maxRetriesPerRequest: null });
    try {
      expect(redis.port).not.toBe(6379);
      expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      await client.set('k', 'v');
      // Make the write durable without waiting on the everysec fsync: rewrite the AOF and wait for it.
      await client.bgrewriteaof();
      while (/aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(await client.info('persistence'))) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await redis.kill();
      await redis.restart();
      expect(await client.get('k')).toBe('v');
    } finally {
      client.disconnect();
      await redis.stop();
    }
  });
});
