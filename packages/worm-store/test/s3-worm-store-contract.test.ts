import { randomUUID } from 'node:crypto';
import { dockerEngineReachable } from '@holdfast/testkit/docker';
import { startMinioContainer } from '@holdfast/testkit/minio';
import { startS3Server } from '@holdfast/testkit/s3-server';
import { S3WormStore } from '../src/index.ts';
import { objectStoreContract } from './object-store-contract.ts';

objectStoreContract(
  'S3WormStore against the loopback S3 server',
  async () => {
    let now = Date.parse('2031-03-01T09:00:00.000Z');
    const clock = () => new Date(now);
    const server = await startS3Server({ clock });
    const store = await S3WormStore.open({
      bucket: server.bucket,
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' },
      clock,
    });
    return {
      store,
      now: clock,
      advance: (ms) => {
        now += ms;
      },
      prefix: 'contract/',
      close: async () => {
        await store.close();
        await server.close();
      },
    };
  },
  { canAdvanceClock: true },
);

const endpoint = process.env.HOLDFAST_TEST_S3_ENDPOINT;
const bucket = process.env.HOLDFAST_TEST_S3_BUCKET;
const docker = await dockerEngineReachable();

// A real S3-compatible server: HOLDFAST_TEST_S3_ENDPOINT + HOLDFAST_TEST_S3_BUCKET (credentials
// from AWS_*), or else MinIO in a container where a Docker engine answers. Neither exists on the
// development machines or in CI here (no Docker engine, no network beyond loopback), so there
// this block is skipped. Real time cannot be moved, so the tests that wait out a retention are
// skipped against it, and the objects it writes stay locked for up to six hours.
objectStoreContract(
  endpoint ? 'S3WormStore against HOLDFAST_TEST_S3_ENDPOINT' : 'S3WormStore against MinIO (testcontainers)',
  async () => {
    if (endpoint) {
      const store = await S3WormStore.open({
        bucket: bucket!,
        endpoint,
        ...(process.env.AWS_REGION ? { region: process.env.AWS_REGION } : {}),
      });
      return {
        store,
        now: () => new Date(),
        prefix: `holdfast-contract/${randomUUID()}/`,
        close: () => store.close(),
      };
    }
    const minio = await startMinioContainer();
    const store = await S3WormStore.open({
      bucket: minio.bucket,
      endpoint: minio.endpoint,
      region: 'us-east-1',
      credentials: minio.credentials,
    });
    return {
      store,
      now: () => new Date(),
      prefix: `holdfast-contract/${randomUUID()}/`,
      close: async () => {
        await store.close();
        await minio.stop();
      },
    };
  },
  { canAdvanceClock: false, skip: endpoint ? !bucket : !docker },
);
