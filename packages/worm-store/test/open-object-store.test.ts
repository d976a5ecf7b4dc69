import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3Server } from '@holdfast/testkit/s3-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LocalWormStore, openObjectStore, S3WormStore } from '../src/index.ts';

const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  vi.unstubAllEnvs();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('openObjectStore', () => {
  it('opens local:<dir> as a LocalWormStore', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'holdfast-worm-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const store = await openObjectStore(`local:${dir}`);
    cleanups.push(() => store.close());
    expect(store).toBeInstanceOf(LocalWormStore);
    expect(store.description).toBe(`local:${dir}`);
  });

  it('opens s3://<bucket> on an S3-compatible endpoint with credentials from the environment', async () => {
    const server = await startS3Server();
    cleanups.push(() => server.close());
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'holdfast-test');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'holdfast-test-secret');
    const store = await openObjectStore(`s3://${server.bucket}`, {
      s3Endpoint: server.endpoint,
      region: 'us-east-1',
    });
    cleanups.push(() => store.close());
    expect(store).toBeInstanceOf(S3WormStore);
    expect(server.requests.map((r) => r.operation)).toEqual([
      'GetObjectLockConfiguration',
      'GetBucketVersioning',
    ]);
  });

  it.each([
    ['', 'unknown scheme'],
    ['/var/lib/holdfast', 'unknown scheme'],
    ['file:///tmp/x', 'unknown scheme'],
    ['S3://bucket', 'unknown scheme'],
    ['local:', 'directory is missing'],
    ['s3://', 'bucket name is missing'],
    ['s3://Bad_Bucket', 'not an S3 bucket name'],
    ['s3://bucket/prefix', 'prefix after the bucket'],
  ])(
    'refuses %j with InvalidStoreSpecError naming the value and the accepted forms',
    async (spec, reason) => {
      const err = await openObjectStore(spec).catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'HOLDFAST_ERR_INVALID_STORE_SPEC',
        name: 'InvalidStoreSpecError',
        spec,
      });
      expect((err as Error).message).toContain(JSON.stringify(spec));
      expect((err as Error).message).toContain(reason);
      expect((err as Error).message).toContain('"local:<dir>" or "s3://<bucket>"');
    },
  );
});
