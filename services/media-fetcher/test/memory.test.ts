import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type MediaJobData, QUEUE_PREFIX, QUEUES } from '@holdfast/core';
import { generatedSha256, type MediaServer, startMediaServer } from '@holdfast/testkit/media-server';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore } from '@holdfast/worm-store';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MediaJobResult } from '../src/index.ts';
import { ACCESS_TOKEN, ACCOUNT_SID, AUTH_TOKEN, addMediaJob, archivedParent, settled } from './fixtures.ts';

const MiB = 1024 * 1024;
const MAIN = resolve(import.meta.dirname, '../src/main.ts');

/** Peak resident set size of a process so far (VmHWM), in bytes. */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (!kb) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kb[1]) * 1024;
}

let redis: TestRedis;
let server: MediaServer;
let dir: { path: string; remove(): Promise<void> };
let connection: Redis;
let queue: Queue<MediaJobData>;
let store: LocalWormStore;
let child: ChildProcess | undefined;
let output = '';

beforeAll(async () => {
  redis = await startRedis();
  server = await startMediaServer();
  dir = await tempDir('holdfast-media-memory-');
  connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  queue = new Queue<MediaJobData>(QUEUES.media, { connection, prefix: QUEUE_PREFIX });
  store = await LocalWormStore.open({ dir: join(dir.path, 'store') });
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((done) => child!.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  }
  await store?.close();
  await queue?.close();
  connection?.disconnect();
  await server?.close();
  await redis?.stop();
  await dir?.remove();
});

describe.skipIf(process.platform !== 'linux')('media fetcher memory (a real process)', () => {
  it('archives a 50 MB media file with the right hash while its peak memory stays flat', async () => {
    const caFile = join(dir.path, 'media-ca.pem');
    await writeFile(caFile, server.ca);
    // A clean environment: the fetcher reads its whole configuration from it, as in production.
    child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        REDIS_URL: redis.url,
        HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
        HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
        HOLDFAST_MEDIA_ALLOWED_HOSTS: 'localhost,127.0.0.1',
        HOLDFAST_MEDIA_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128',
        HOLDFAST_MEDIA_MAX_BYTES: String(64 * MiB),
        HOLDFAST_WHATSAPP_ACCESS_TOKEN: ACCESS_TOKEN,
        HOLDFAST_WHATSAPP_GRAPH_URL: server.origin,
        HOLDFAST_TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        HOLDFAST_TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        HOLDFAST_TWILIO_API_URL: server.origin,
        HOLDFAST_METRICS_PORT: '0',
        NODE_EXTRA_CA_CERTS: caFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const pid = child.pid!;

    // Warm-up: one small fetch loads and exercises every code path (TLS, undici, the store).
    const small = 4 * MiB;
    server.whatsappMedia({
      mediaId: '4001',
      accessToken: ACCESS_TOKEN,
      body: { size: small, seed: 'warm-up' },
    });
    const { job: warm } = await archivedParent(store, {
      provider: 'whatsapp',
      media: { mediaId: '4001', index: 0 },
    });
    const warmed = await settled(queue, await addMediaJob(queue, warm), 120_000);
    expect(await warmed.getState(), output).toBe('completed');
    expect((warmed.returnvalue as MediaJobResult).sha256).toBe(generatedSha256(small, 'warm-up'));
    const afterWarmUp = await peakRss(pid);

    // 50 MB through Twilio's redirect: buffering it anywhere would lift the peak by 50 MB or more.
    const size = 50 * 1000 * 1000;
    const { url } = server.twilioMedia({
      accountSid: ACCOUNT_SID,
      authToken: AUTH_TOKEN,
      body: { size, seed: 'big', contentType: 'video/mp4' },
    });
    const { job: big } = await archivedParent(store, { provider: 'twilio', media: { url, index: 0 } });
    const done = await settled(queue, await addMediaJob(queue, big), 300_000);
    expect(await done.getState(), output).toBe('completed');
    const afterBig = await peakRss(pid);

    const result = done.returnvalue as MediaJobResult;
    const expected = generatedSha256(size, 'big');
    expect(result).toMatchObject({ sha256: expected, size, contentType: 'video/mp4' });
    expect(await store.head(result.key)).toMatchObject({ sha256: expected, size, mode: 'COMPLIANCE' });
    const growth = afterBig - afterWarmUp;
    expect(
      growth,
      `peak RSS ${Math.round(afterWarmUp / MiB)} MiB after the warm-up, ${Math.round(afterBig / MiB)} MiB after 50 MB`,
    ).toBeLessThan(32 * MiB);
  });
});
