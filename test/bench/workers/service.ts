/**
 * A bench child process: one Holdfast service started with the same `start(config)` its
 * `main.ts` calls (config from the environment), or a raw BullMQ no-op worker for the
 * baselines. Tells the parent `ready` over IPC and closes cleanly on `stop`, so a CPU profile
 * (`--cpu-prof`) is written on exit (`serve.ts`). The media fetcher has its own entry
 * (`media-fetcher.ts`), so its process loads nothing but the service.
 */
import { start as startArchiver } from '@holdfast/archiver';
import { loadConfig } from '@holdfast/core';
import { start as startIngest } from '@holdfast/ingest';
import { start as startSender } from '@holdfast/sender';
import { Worker } from 'bullmq';
import Fastify from 'fastify';
import { type Handle, serveUntilStopped } from './serve.ts';

async function startNoop(): Promise<Handle> {
  // BENCH_QUEUES = "<queue>:<concurrency>[,<queue>:<concurrency>…]"
  const url = process.env.REDIS_URL!;
  const prefix = process.env.BENCH_PREFIX ?? 'bench';
  const workers = (process.env.BENCH_QUEUES ?? '').split(',').map((spec) => {
    const [queue, concurrency] = spec.split(':') as [string, string];
    const worker = new Worker(queue, async () => undefined, {
      connection: { url, maxRetriesPerRequest: null },
      prefix,
      concurrency: Number(concurrency),
    });
    worker.on('error', (error) => console.error(`noop worker ${queue}: ${error.message}`));
    return worker;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return { close: async () => void (await Promise.all(workers.map((w) => w.close()))) };
}

/** The baseline for the ingest scenario: the same Fastify, answering 200 without verifying or spooling. */
async function startBareHttp(): Promise<Handle> {
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/webhooks/whatsapp/:project', async () => ({ status: 'accepted' }));
  await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
  return { close: () => app.close() };
}

const role = process.argv[2];
const config = loadConfig();
const handle: Handle =
  role === 'archiver'
    ? await startArchiver(config)
    : role === 'sender'
      ? await startSender(config)
      : role === 'noop'
        ? await startNoop()
        : role === 'ingest'
          ? await startIngest(config, { host: '127.0.0.1' })
          : role === 'bare-http'
            ? await startBareHttp()
            : (() => {
                throw new Error(`unknown role ${role}`);
              })();

serveUntilStopped(role ?? 'service', handle);
