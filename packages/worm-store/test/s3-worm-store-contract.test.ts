import { randomUUID } from 'node:crypto';
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

// A real S3-compatible server (AWS S3, MinIO with Object Lock) is not available on the
// development machines or in CI (no Docker, no network beyond loopback), so this block runs only
// when HOLDFAST_TEST_S3_ENDPOINT and HOLDFAST_TEST_S3_BUCKET are set (credentials from AWS_*).
// Real time cannot be moved, so the tests that wait out a retention are skipped there, and the
// objects it writes stay locked for up to six hours under holdfast-contract/<run>/.
objectStoreContract(
  'S3WormStore against HOLDFAST_TEST_S3_ENDPOINT',
  async () => {
    const store = await S3WormStore.open({
      bucket: bucket!,
      endpoint: endpoint!,
      ...(process.env.AWS_REGION ? { region: process.env.AWS_REGION } : {}),
    });
    return {
      store,
      now: () => new Date(),
      prefix: `holdfast-contract/${randomUUID()}/`,
      close: () => store.close(),
    };
  },
  { canAdvanceClock: false, skip: !endpoint || !bucket },
);
