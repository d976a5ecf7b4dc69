import { hostname } from 'node:os';
import { join } from 'node:path';
import { createLogger, newEvent, QUEUE_PREFIX, QUEUES, UNCERTAIN_SENDS_KEY } from '@holdfast/core';
import {
  closeQueueWorker,
  DeadLetters,
  EventWriter,
  publishSpoolState,
  SPOOL_STATE_KEY,
  startQueueWorker,
} from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { Queue, UnrecoverableError } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { StatusReport } from '../src/status-command.ts';
import { runCli } from './support/run-cli.ts';

const log = createLogger({ name: 'status-cli-test', level: 'silent' });

async function eventually<T>(probe: () => Promise<T | undefined | null | false>, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

describe('holdfast status', () => {
  let redis: TestRedis;
  let client: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let env: NodeJS.ProcessEnv;
  const closers: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    dir = await tempDir('holdfast-status-cli-');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    client?.disconnect();
    await redis?.stop();
    await dir.remove();
  });

  const startPrivateRedis = async (options: Parameters<typeof startRedis>[0] = {}) => {
    redis = await startRedis(options);
    client = new Redis(redis.url);
    env = {
      PATH: process.env.PATH,
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
      HOLDFAST_ACTOR: 'on-call@acme.example',
      HOLDFAST_LOG_LEVEL: 'warn',
    };
  };

  it('reports a quiet fleet on a Redis set up as Holdfast needs: no warnings, exit 0', async () => {
    await startPrivateRedis();
    // The testkit server runs as production must: AOF on, noeviction, no RDB save points.
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);

    const human = await runCli(['status'], env);
    expect(human.stderr).toBe('');
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(
      /^QUEUE\s+WAITING\s+CHILDREN\s+ACTIVE\s+DELAYED\s+FAILED\s+COMPLETED\s+DEAD$/m,
    );
    for (const queue of Object.values(QUEUES))
      expect(human.stdout).toMatch(new RegExp(`^${queue}\\s+0\\s+0\\s+0\\s+0\\s+0\\s+0\\s+0$`, 'm'));
    expect(human.stdout).toMatch(
      /maxmemory-policy noeviction\s+appendonly yes\s+save none\s+persistence aof/,
    );
    expect(human.stdout).toContain('OK: no warnings');
    expect(human.stdout).not.toContain('WARNING');

    const json = await runCli(['status', '--json'], env);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report.warnings).toEqual([]);
    expect(report.redis).toMatchObject({
      maxmemoryPolicy: 'noeviction',
      appendonly: true,
      save: '',
      persistence: 'aof',
    });
    expect(report.queues.map((q) => q.queue).sort()).toEqual(Object.values(QUEUES).sort());
    expect(report).toMatchObject({ spools: [], breakers: [], pauses: [] });
  });

  it('shows jobs in every state, dead letters, spools, breakers and pauses, and warns about what needs a look', async () => {
    await startPrivateRedis();
    const connection = { url: redis.url };
    const queue = (name: string) => {
      const q = new Queue(name, { connection, prefix: QUEUE_PREFIX });
      closers.push(() => q.close());
      return q;
    };

    // media: one completed, one dead (failed for good, recorded by the worker's dead-letter watch).
    const worker = await startQueueWorker<{ fail: boolean }, string>({
      queue: QUEUES.media,
      name: 'status-test-media',
      redisUrl: redis.url,
      log,
      concurrency: 1,
      process: async (job) => {
        if (job.data.fail) throw new UnrecoverableError('the media URL expired');
        return 'ok';
      },
    });
    closers.push(() => closeQueueWorker(worker, 1000));
    const media = queue(QUEUES.media);
    await media.add('fetch', { fail: false }, { jobId: 'media-ok' });
    await media.add('fetch', { fail: true }, { jobId: 'media-gone', attempts: 1 });
    const dead = new DeadLetters({ redis: client });
    closers.push(() => dead.close());
    await eventually(async () => (await dead.counts()).media === 1, 'a dead media job');
    await eventually(async () => (await media.getCompletedCount()) === 1, 'a completed media job');

    // send-sms: one waiting and one delayed; send-whatsapp: paused by hand.
    const sms = queue(QUEUES.sendSms);
    await sms.add('send', {}, { jobId: 'sms-now' });
    await sms.add('send', {}, { jobId: 'sms-later', delay: 3_600_000 });
    await queue(QUEUES.sendWhatsApp).pause();

    // A real service's spool: one event accepted, its archive job waiting (no archiver runs).
    const writer = await EventWriter.open({
      spoolDir: join(dir.path, 'spool'),
      redisUrl: redis.url,
      logger: log,
    });
    closers.push(() => writer.close());
    await writer.submit(
      newEvent({
        type: 'message.sent',
        occurredAt: new Date(),
        project: 'acme',
        channel: 'email',
        direction: 'outbound',
        subject: 'msg-1',
        category: 'email-transactional',
        data: { transport: 'outbox', providerMessageId: 'p-1', attempt: 1 },
      }),
      'archive',
    );
    const publisherRedis = new Redis(redis.url);
    await publisherRedis.ping();
    const publisher = publishSpoolState({ service: 'sender', writer, redis: publisherRedis, log });
    closers.push(async () => {
      await publisher.close();
      publisherRedis.disconnect();
    });
    await publisher.publish();
    // Another process whose spool holds an event accepted 20 minutes ago, and one that stopped
    // reporting five minutes ago with events still in its spool (it crashed).
    await client.hset(SPOOL_STATE_KEY, {
      'ingest/ingest-7f9c:41': JSON.stringify({
        service: 'ingest',
        host: 'ingest-7f9c',
        pid: 41,
        backlog: 12,
        oldestUnackedAt: minutesAgo(20),
        updatedAt: new Date().toISOString(),
      }),
      'ingest/ingest-dead:9': JSON.stringify({
        service: 'ingest',
        host: 'ingest-dead',
        pid: 9,
        backlog: 3,
        oldestUnackedAt: minutesAgo(30),
        updatedAt: minutesAgo(5),
      }),
    });

    // Breakers as the services publish them: one open, one closed, one open but long silent.
    const breaker = (service: string, name: string, state: string, updatedAt = new Date().toISOString()) =>
      JSON.stringify({ service, breaker: name, state, since: minutesAgo(3), updatedAt });
    await client.hset(`${QUEUE_PREFIX}:breakers`, {
      'sender/ses/sender-1:12': breaker('sender', 'ses', 'open'),
      'archiver/store/archiver-1:13': breaker('archiver', 'store', 'closed'),
      'sender/twilio/sender-gone:14': breaker('sender', 'twilio', 'open', minutesAgo(10)),
      'sender/junk/x:1': 'not json',
    });
    // A WhatsApp send the at-most-once policy did not resend (a minute ago), and one long past the window.
    await client.zadd(
      UNCERTAIN_SENDS_KEY,
      Date.now() - 60_000,
      'whatsapp/019a0000-0000-7000-8000-000000000001',
      Date.now() - 8 * 24 * 3600 * 1000,
      'email/019a0000-0000-7000-8000-000000000002',
    );

    // A project's outbound email paused by hand, as on-call does it.
    const paused = await runCli(
      ['pause', 'set', '--project', 'acme', '--reason', 'bounce storm from list import'],
      env,
    );
    expect(paused.stderr).toBe('');
    expect(paused.code).toBe(0);

    const json = await runCli(['status', '--json'], env);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(2);
    const report = JSON.parse(json.stdout) as StatusReport;
    const q = new Map(report.queues.map((x) => [x.queue, x]));
    expect(q.get('media')).toMatchObject({ completed: 1, failed: 1, dead: 1, waiting: 0, paused: false });
    expect(q.get('send-sms')).toMatchObject({ waiting: 1, delayed: 1, dead: 0 });
    expect(q.get('send-whatsapp')).toMatchObject({ paused: true });
    expect(q.get('archive')).toMatchObject({ waiting: 1 });

    expect(report.spools.map((s) => [s.service, s.host, s.pid, s.backlog])).toEqual([
      ['ingest', 'ingest-7f9c', 41, 12],
      ['sender', hostname(), process.pid, 1],
    ]);
    expect(report.spools[0]!.oldestAgeSeconds).toBeGreaterThanOrEqual(20 * 60);
    expect(report.silentSpools.map((s) => s.host)).toEqual(['ingest-dead']);

    expect(report.breakers.map((b) => [b.service, b.breaker, b.instance, b.state])).toEqual([
      ['archiver', 'store', 'archiver-1:13', 'closed'],
      ['sender', 'ses', 'sender-1:12', 'open'],
    ]);
    expect(report.staleBreakers.map((b) => b.breaker)).toEqual(['twilio']);
    expect(report.pauses).toEqual([
      expect.objectContaining({
        project: 'acme',
        trigger: 'manual',
        pausedBy: 'on-call@acme.example',
        reason: 'bounce storm from list import',
      }),
    ]);

    expect(report.warnings.map((w) => w.kind).sort()).toEqual(
      [
        'breaker-open',
        'dead-letters',
        'email-paused',
        'queue-paused',
        'send-uncertain',
        'spool-backlog',
        'spool-silent',
      ].sort(),
    );
    const message = (kind: string) => report.warnings.find((w) => w.kind === kind)!.message;
    expect(message('dead-letters')).toContain('1 dead letter(s) (media 1)');
    expect(message('send-uncertain')).toMatch(/^1 send\(s\) in the last 7 days may not have gone out/);
    expect(report.uncertainSends.latest).toEqual([
      expect.objectContaining({ channel: 'whatsapp', eventId: '019a0000-0000-7000-8000-000000000001' }),
    ]);
    expect(message('breaker-open')).toContain('breaker ses of sender on sender-1:12 is OPEN');
    expect(message('spool-backlog')).toContain('ingest on ingest-7f9c:41 has 12 event(s) not yet archived');
    // The young backlog of the running sender is no warning at the default threshold (5m)...
    expect(report.warnings.filter((w) => w.kind === 'spool-backlog')).toHaveLength(1);
    // ...and is with a threshold it is older than.
    await eventually(
      async () => Date.now() - writer.stats().spool.oldestUnackedAt!.getTime() > 1000,
      'a spooled event older than a second',
    );
    await publisher.publish();
    const strict = JSON.parse(
      (await runCli(['status', '--json', '--max-spool-age', '1s'], env)).stdout,
    ) as StatusReport;
    expect(strict.warnings.filter((w) => w.kind === 'spool-backlog')).toHaveLength(2);

    const human = await runCli(['status'], env);
    expect(human.code).toBe(2);
    expect(human.stdout).toMatch(/^media\s+0\s+0\s+0\s+0\s+1\s+1\s+1$/m);
    expect(human.stdout).toMatch(/^send-sms\s+1\s+0\s+0\s+1\s+0\s+0\s+0$/m);
    expect(human.stdout).toMatch(/^send-whatsapp \(paused\)/m);
    expect(human.stdout).toMatch(/^ingest ingest-7f9c:41\s+12\s+20m\s+\d+s ago$/m);
    expect(human.stdout).toMatch(/^sender\/ses\s+sender-1:12\s+OPEN\s+/m);
    expect(human.stdout).toMatch(
      /^acme\s+\S+ \(\d+s ago\)\s+on-call@acme\.example \(manual\)\s+bounce storm from list import$/m,
    );
    expect(human.stdout).toMatch(/^WARNING: 1 dead letter\(s\) \(media 1\): see holdfast dlq list$/m);
    expect(human.stdout).toMatch(/^WARNING: acme: outbound email PAUSED since /m);
    expect(human.stdout.match(/^WARNING: /gm)).toHaveLength(7);
    expect(human.stdout).not.toContain('OK: no warnings');
  });

  it('lists a pause key set by hand to a non-record as a pause with an unreadable record, and goes on', async () => {
    await startPrivateRedis();
    // The sender only checks that the key exists: each of these pauses its project's email.
    await client.set('holdfast:pause:email:zeta', 'paused');
    await client.set('holdfast:pause:email:acme', '{}');
    await client.set('holdfast:pause:email:beta', '{"project":"beta","since":"2026-01-01T00:00:00.000Z"}');

    const json = await runCli(['status', '--json'], env);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(2);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report.pauses.map((p) => [p.project, p.since, p.unreadable])).toEqual([
      ['acme', '', 'no project, since, reason, trigger, pausedBy, exceeded, figures, eventId, archived'],
      [
        'beta',
        '2026-01-01T00:00:00.000Z',
        'no reason, trigger, pausedBy, exceeded, figures, eventId, archived',
      ],
      ['zeta', '', 'not JSON'],
    ]);
    expect(report.pauses[2]!.reason).toMatch(/^unreadable record \(not JSON\)/);
    expect(report.warnings.filter((w) => w.kind === 'email-paused').map((w) => w.message)).toEqual([
      expect.stringMatching(/^acme: outbound email PAUSED by a key whose record is unreadable/),
      expect.stringMatching(/^beta: outbound email PAUSED by a key whose record is unreadable/),
      'zeta: outbound email PAUSED by a key whose record is unreadable (not JSON): see holdfast pause status',
    ]);

    const human = await runCli(['status'], env);
    expect(human.stderr).toBe('');
    expect(human.code).toBe(2);
    expect(human.stdout).toMatch(/^zeta\s+unknown\s+unknown \(manual\)\s+unreadable record \(not JSON\)/m);
    expect(human.stdout).toMatch(/^beta\s+2026-01-01T00:00:00\.000Z \(\d+d ago\)\s+unknown \(manual\)/m);
  });

  it('warns when a spool nears its backlog limit, and loudly once it refuses new events', async () => {
    await startPrivateRedis();
    const state = (host: string, backlog: number, maxBacklog?: number) =>
      JSON.stringify({
        service: 'ingest',
        host,
        pid: 7,
        backlog,
        ...(maxBacklog === undefined ? {} : { maxBacklog }),
        oldestUnackedAt: minutesAgo(1),
        updatedAt: new Date().toISOString(),
      });
    await client.hset(`${QUEUE_PREFIX}:spools`, {
      'ingest/ingest-calm:7': state('ingest-calm', 790, 1000),
      'ingest/ingest-near:7': state('ingest-near', 800, 1000),
      'ingest/ingest-full:7': state('ingest-full', 1000, 1000),
      // Published by a process older than the limit: no limit known, no warning.
      'ingest/ingest-old:7': state('ingest-old', 5000),
    });

    const json = await runCli(['status', '--json'], env);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(2);
    const full = (JSON.parse(json.stdout) as StatusReport).warnings.filter((w) => w.kind === 'spool-full');
    expect(full.map((w) => w.message)).toEqual([
      'ingest on ingest-full:7 is REFUSING new events: its spool holds 1000, its limit (HOLDFAST_SPOOL_MAX_BACKLOG=1000); see why nothing drains it (Redis, the workers)',
      'ingest on ingest-near:7 holds 800 of the 1000 unacknowledged events its spool takes before refusing new ones (HOLDFAST_SPOOL_MAX_BACKLOG)',
    ]);
  });

  it('warns LOUDLY about a Redis that evicts keys and persists nothing', async () => {
    // No AOF and no RDB save points, and eviction turned on: what a default cache-style Redis does.
    await startPrivateRedis({ appendOnly: false });
    await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    expect(await client.config('GET', 'save')).toEqual(['save', '']);

    const json = await runCli(['status', '--json'], env);
    expect(json.code).toBe(2);
    const report = JSON.parse(json.stdout) as StatusReport;
    expect(report.redis).toMatchObject({
      maxmemoryPolicy: 'allkeys-lru',
      appendonly: false,
      save: '',
      persistence: 'off',
    });
    expect(report.warnings.map((w) => w.kind)).toEqual(['redis-eviction', 'redis-persistence']);

    const human = await runCli(['status'], env);
    expect(human.code).toBe(2);
    expect(human.stdout).toMatch(
      /^WARNING: Redis maxmemory-policy is allkeys-lru, not noeviction: under memory pressure Redis DELETES keys/m,
    );
    expect(human.stdout).toMatch(/^WARNING: Redis persistence is OFF \(no AOF, no RDB save points\)/m);
  });

  it('tells RDB-only persistence apart from none: AOF off is still a warning', async () => {
    await startPrivateRedis({ appendOnly: false });
    await client.config('SET', 'save', '3600 1 300 100');
    const report = JSON.parse((await runCli(['status', '--json'], env)).stdout) as StatusReport;
    expect(report.redis).toMatchObject({ persistence: 'rdb', save: '3600 1 300 100' });
    expect(report.warnings.map((w) => w.kind)).toEqual(['redis-aof']);
  });

  it('fails with exit 1 and says so when Redis does not answer', async () => {
    await startPrivateRedis();
    client.on('error', () => {});
    await redis.stop();
    const result = await runCli(['status'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^holdfast: Redis \(REDIS_URL\) did not answer: .*ECONNREFUSED/);
  });
});
