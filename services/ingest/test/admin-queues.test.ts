import { type AddressInfo, createServer } from 'node:net';
import { join } from 'node:path';
import { createLogger, loadConfig, newEvent, QUEUE_PREFIX, QUEUES } from '@holdfast/core';
import { SPOOL_STATE_KEY } from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type IngestHandle, start } from '../src/index.ts';

const ADMIN_KEY = 'hf_admin_0123456789abcdef0123456789abcdef';
const API_KEY = 'hf_acme_0123456789abcdef';
const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('ingest operations surface', () => {
  let redis: TestRedis;
  let client: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let ingest: IngestHandle | undefined;
  let logs: string;

  const startIngest = async (env: Record<string, string> = {}) => {
    const config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
      HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
      HOLDFAST_API_KEYS: `acme:${API_KEY}`,
      PORT: '0',
      HOLDFAST_METRICS_PORT: '0',
      ...env,
    });
    // Everything the service logs, at the most talkative level, to look for the key in.
    const logger = createLogger({ name: 'ingest-ops-test', level: 'trace' }, { write: (s) => (logs += s) });
    ingest = await start(config, { logger, host: '127.0.0.1' });
    return ingest;
  };
  const get = (path: string, authorization?: string) =>
    fetch(`${ingest!.url}${path}`, { headers: authorization ? { authorization } : {} });

  beforeEach(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = await tempDir();
    logs = '';
  });
  afterEach(async () => {
    await ingest?.close();
    ingest = undefined;
    client.disconnect();
    await redis.stop();
    await dir.remove();
  });

  describe('Bull Board at /admin/queues', () => {
    it('does not exist while HOLDFAST_ADMIN_API_KEY is unset', async () => {
      await startIngest();
      for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
        const res = await get(path, `Bearer ${ADMIN_KEY}`);
        expect(res.status).toBe(404);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('HOLDFAST_ERR_NOT_FOUND');
      }
    });

    it('refuses requests without the key, or with a wrong one, and asks a browser for Basic credentials', async () => {
      await startIngest({ HOLDFAST_ADMIN_API_KEY: ADMIN_KEY });
      const wrong = [
        undefined,
        'Bearer hf_admin_0123456789abcdef0123456789abcdeX',
        `Bearer ${ADMIN_KEY.slice(0, -1)}`,
        `Bearer ${ADMIN_KEY}x`,
        `Bearer ${API_KEY}`,
        basic('admin', 'not-the-key'),
        basic(ADMIN_KEY, ''),
        `Token ${ADMIN_KEY}`,
        `Basic ${ADMIN_KEY}`,
      ];
      for (const authorization of wrong) {
        for (const path of [
          '/admin/queues',
          '/admin/queues/api/queues',
          '/admin/queues/static/favicon.ico',
        ]) {
          const res = await get(path, authorization);
          expect(res.status, `${path} with ${authorization}`).toBe(401);
          expect(res.headers.get('www-authenticate')).toBe('Basic realm="holdfast"');
          await res.body?.cancel();
        }
      }
    });

    it('lists every Holdfast queue with its counts for the key, as Bearer or as the Basic password', async () => {
      await startIngest({ HOLDFAST_ADMIN_API_KEY: ADMIN_KEY });
      const connection = { url: redis.url };
      const archive = new Queue(QUEUES.archive, { connection, prefix: QUEUE_PREFIX });
      const sms = new Queue(QUEUES.sendSms, { connection, prefix: QUEUE_PREFIX });
      try {
        await archive.add('archive', { n: 1 }, { jobId: 'job-1' });
        await archive.add('archive', { n: 2 }, { jobId: 'job-2' });
        await sms.add('send', { n: 3 }, { jobId: 'job-3', delay: 3_600_000 });
      } finally {
        await archive.close();
        await sms.close();
      }

      const res = await get(
        '/admin/queues/api/queues?activeQueue=archive&status=latest',
        `Bearer ${ADMIN_KEY}`,
      );
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        queues: {
          name: string;
          counts: Record<string, number>;
          jobs: { id: string }[];
          readOnlyMode: boolean;
        }[];
      };
      expect(body.queues.map((q) => q.name).sort()).toEqual(Object.values(QUEUES).sort());
      const byName = new Map(body.queues.map((q) => [q.name, q]));
      expect(byName.get('archive')!.counts.waiting).toBe(2);
      expect(
        byName
          .get('archive')!
          .jobs.map((j) => j.id)
          .sort(),
      ).toEqual(['job-1', 'job-2']);
      expect(byName.get('send-sms')!.counts.delayed).toBe(1);
      expect(byName.get('media')!.counts.waiting).toBe(0);
      expect(body.queues.every((q) => q.readOnlyMode)).toBe(true);

      // A browser: Basic with any user name and the key as the password gets the page.
      const page = await get('/admin/queues', basic('on-call', ADMIN_KEY));
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/text\/html/);
      const html = await page.text();
      // Its scripts and styles come from behind the same key, with the same credentials.
      const base = new URL(/<base href="([^"]+)"/.exec(html)![1]!, ingest!.url);
      expect(base.pathname).toBe('/admin/queues/');
      const assets = [...html.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map(
        (m) => new URL(m[1]!, base).pathname,
      );
      expect(assets.length).toBeGreaterThan(0);
      for (const asset of assets) {
        const loaded = await get(asset, basic('on-call', ADMIN_KEY));
        expect(loaded.status, asset).toBe(200);
        expect((await loaded.arrayBuffer()).byteLength).toBeGreaterThan(0);
      }

      // The key never reaches a log line, whatever was tried.
      expect(logs).toContain('"route"');
      expect(logs).not.toContain(ADMIN_KEY);
      expect(logs).not.toContain(Buffer.from(`on-call:${ADMIN_KEY}`).toString('base64'));
    });

    it("shows a job's event by its envelope, never the message body it carries", async () => {
      await startIngest({ HOLDFAST_ADMIN_API_KEY: ADMIN_KEY });
      const body = 'Your one-time code is 493817';
      const event = newEvent({
        type: 'message.received',
        occurredAt: new Date(),
        project: 'acme',
        channel: 'sms',
        direction: 'inbound',
        subject: 'sms:SM1',
        category: 'sms-transactional',
        data: { from: '+447700900123', body },
      });
      const archive = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
      try {
        await archive.add('archive', { event }, { jobId: event.id });
        await archive.add('archive-batch', { events: [event] }, { jobId: 'batch-1' });
      } finally {
        await archive.close();
      }
      const auth = `Bearer ${ADMIN_KEY}`;
      const listing = await (
        await get('/admin/queues/api/queues?activeQueue=archive&status=latest', auth)
      ).text();
      const one = await get(`/admin/queues/api/queues/archive/${event.id}`, auth);
      expect(one.status).toBe(200);
      const shown = (await one.json()) as { job: { data: { event: { id: string; type: string } } } };
      expect(shown.job.data.event).toMatchObject({ id: event.id, type: 'message.received', channel: 'sms' });
      const batch = await (await get('/admin/queues/api/queues/archive/batch-1', auth)).json();
      expect((batch as { job: { data: { events: string[] } } }).job.data.events).toEqual([event.id]);
      for (const text of [listing, JSON.stringify(shown), JSON.stringify(batch)]) {
        expect(text).not.toContain(body);
        expect(text).not.toContain('+447700900123');
      }
    });

    it('changes nothing: jobs cannot be retried, removed or paused from the board', async () => {
      await startIngest({ HOLDFAST_ADMIN_API_KEY: ADMIN_KEY });
      const archive = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
      try {
        await archive.add('archive', { n: 1 }, { jobId: 'job-1' });
        const auth = { authorization: `Bearer ${ADMIN_KEY}` };
        const put = (path: string) =>
          fetch(`${ingest!.url}/admin/queues/api${path}`, { method: 'PUT', headers: auth });
        expect((await put('/queues/archive/pause')).status).toBe(405);
        expect((await put('/queues/archive/empty')).status).toBe(405);
        expect((await put('/queues/archive/job-1/clean')).status).toBe(405);
        expect(await archive.isPaused()).toBe(false);
        expect(await archive.getJobState('job-1')).toBe('waiting');
      } finally {
        await archive.close();
      }
    });
  });

  describe('a full spool backlog (HOLDFAST_SPOOL_MAX_BACKLOG)', () => {
    it('answers 503 with Retry-After and HOLDFAST_ERR_BACKLOG_FULL, having written nothing, and logs it once', async () => {
      await startIngest({ HOLDFAST_SPOOL_MAX_BACKLOG: '1' });
      const post = (subject: string) =>
        fetch(`${ingest!.url}/v1/records`, {
          method: 'POST',
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ category: 'audit-log', type: 'audit.login', subject, data: {} }),
        });
      // Nothing archives here, so the first record stays in the backlog.
      expect((await post('user-1')).status).toBe(202);
      for (const subject of ['user-2', 'user-3']) {
        const refused = await post(subject);
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).toBe('5');
        const body = (await refused.json()) as { error: { code: string; message: string } };
        expect(body.error.code).toBe('HOLDFAST_ERR_BACKLOG_FULL');
        expect(body.error.message).toMatch(/HOLDFAST_SPOOL_MAX_BACKLOG=1/);
      }
      expect(ingest!.writer.stats().spool.unacked).toBe(1);
      expect(logs.match(/spool backlog at its limit/g)).toHaveLength(1);
    });
  });

  describe('/metrics and the published spool state', () => {
    it('fails to start when its ops port is taken, leaving nothing open: the same spool starts at once after', async () => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const { port } = taken.address() as AddressInfo;
      try {
        await expect(startIngest({ HOLDFAST_METRICS_PORT: String(port) })).rejects.toThrow(/EADDRINUSE/);
        ingest = undefined;
      } finally {
        await new Promise<void>((resolve) => taken.close(() => resolve()));
      }
      // The spool's directory lock was released: a second start on it succeeds.
      await startIngest();
      expect((await fetch(`${ingest!.opsUrl}/healthz`)).status).toBe(200);
    });

    it("export the ingest spool's backlog and fsyncs on the ops port only, and publish it to holdfast:spools until closed", async () => {
      await startIngest();
      const res = await fetch(`${ingest!.url}/v1/records`, {
        method: 'POST',
        headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ category: 'audit-log', type: 'audit.login', subject: 'user-1', data: {} }),
      });
      expect(res.status).toBe(202);

      // Not on the public port, which faces the providers and the internet...
      const publicMetrics = await get('/metrics');
      expect(publicMetrics.status).toBe(404);
      await publicMetrics.body?.cancel();
      // ...but on HOLDFAST_METRICS_PORT, where the PodMonitor scrapes every Holdfast pod.
      expect(new URL(ingest!.opsUrl).port).not.toBe(new URL(ingest!.url).port);
      const metrics = await fetch(`${ingest!.opsUrl}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await metrics.text();
      // Nothing archives here, so the record stays in the backlog.
      expect(text).toMatch(/holdfast_spool_backlog\{service="ingest"\} 1\n/);
      expect(text).toMatch(/holdfast_spool_backlog_limit\{service="ingest"\} 250000\n/);
      expect(text).toMatch(/holdfast_spool_oldest_unacked_seconds\{service="ingest"\} \d/);
      expect(
        Number(/holdfast_spool_fsync_seconds_count\{service="ingest"\} (\d+)/.exec(text)?.[1]),
      ).toBeGreaterThan(0);
      expect(text).toMatch(/process_resident_memory_bytes \d+/);
      const ready = await fetch(`${ingest!.opsUrl}/readyz`);
      expect(await ready.json()).toEqual({ status: 'ready', checks: { spool: 'ok', redis: 'ok' } });
      const publicReady = await get('/readyz');
      expect(await publicReady.json()).toEqual({ status: 'ready', checks: { spool: 'ok', redis: 'ok' } });

      const published = async () =>
        Object.entries(await client.hgetall(SPOOL_STATE_KEY)).filter(([field]) =>
          field.startsWith('ingest/'),
        );
      // Published at start and every 15 s after.
      let fields = await published();
      for (let i = 0; i < 250 && fields.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        fields = await published();
      }
      expect(fields).toHaveLength(1);
      expect(fields[0]![0]).toMatch(new RegExp(`^ingest/.+:${process.pid}$`));
      expect(JSON.parse(fields[0]![1])).toMatchObject({ service: 'ingest', pid: process.pid });

      await ingest!.close();
      ingest = undefined;
      expect(await published()).toEqual([]);
    });
  });
});
