import { loadConfig } from '@holdfast/core';
import { startRedis } from '@holdfast/testkit/redis';
import { type S3ServerOptions, startS3Server } from '@holdfast/testkit/s3-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { start } from '../src/index.ts';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  vi.unstubAllEnvs();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function configFor(options: S3ServerOptions, redisUrl: string) {
  const s3 = await startS3Server(options);
  cleanups.push(() => s3.close());
  // The store's S3 client takes its credentials from the environment, as in production.
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'holdfast-test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'holdfast-test-secret');
  const config = loadConfig({
    HOLDFAST_STORE: `s3://${s3.bucket}`,
    HOLDFAST_S3_ENDPOINT: s3.endpoint,
    AWS_REGION: 'us-east-1',
    REDIS_URL: redisUrl,
    HOLDFAST_LOG_LEVEL: 'silent',
  });
  return { s3, config };
}

describe('archiver start: store preflight (fail closed)', () => {
  it('refuses to start against a misconfigured bucket, naming each failing check, before touching Redis', async () => {
    // Nothing listens on this port: the archiver must refuse before it connects.
    const { s3, config } = await configFor(
      { defaultRetention: { mode: 'GOVERNANCE', days: 30 }, encryption: { algorithm: 'AES256' } },
      'redis://127.0.0.1:9',
    );
    const err = await start(config).catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: 'StoreCheckFailedError',
      code: 'HOLDFAST_ERR_STORE_CHECK_FAILED',
      failures: [
        { name: 'default-retention', status: 'fail' },
        { name: 'encryption', status: 'fail' },
      ],
    });
    expect((err as Error).message).toContain(
      'default-retention: default retention is GOVERNANCE 30 days; expected COMPLIANCE of at least 1095 days (policy minimum)',
    );
    expect((err as Error).message).toContain(
      'encryption: default encryption is SSE-S3 (AES256); expected SSE-KMS (aws:kms or aws:kms:dsse)',
    );
    expect(s3.requests.some((r) => r.operation === 'PutObject')).toBe(false);
  });

  it('waits for a store that is unreachable at start instead of exiting, then starts', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const { s3, config } = await configFor({}, redis.url);
    s3.setUnavailable(true);
    let started = false;
    const starting = start(config).then((handle) => {
      started = true;
      cleanups.push(() => handle.close());
      return handle;
    });
    // It keeps asking (several refused requests) and does not give up.
    await vi.waitFor(() => expect(s3.requests.filter((r) => r.status === 503).length).toBeGreaterThan(2), {
      timeout: 10_000,
    });
    expect(started).toBe(false);
    s3.setUnavailable(false);
    const handle = await starting;
    expect(handle.opsUrl).toMatch(/^http:/);
  });

  it('starts against a compliant bucket', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.stop());
    const { s3, config } = await configFor({}, redis.url);
    const handle = await start(config);
    cleanups.push(() => handle.close());
    expect(s3.requests.map((r) => r.operation)).toEqual(
      expect.arrayContaining(['GetPublicAccessBlock', 'GetBucketEncryption', 'GetBucketReplication']),
    );
  });
});
