import { join } from 'node:path';
import { createLogger, QUEUE_PREFIX, QUEUES, type QueueName } from '@holdfast/core';
import { closeQueueWorker, DeadLetters, startQueueWorker } from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore } from '@holdfast/worm-store';
import { Queue, UnrecoverableError } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.ts';

type Worker = Awaited<ReturnType<typeof startQueueWorker>>;
type Job = Parameters<Parameters<typeof startQueueWorker>[0]['process']>[0];
const log = createLogger({ name: 'dlq-cli-test', level: 'silent' });

async function eventually<T>(probe: () => Promise<T | undefined | null | false>, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface StoredEvent {
  type: string;
  subject: string;
  occurredAt: string;
  data: Record<string, unknown>;
}

describe('holdfast dlq', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let env: NodeJS.ProcessEnv;
  let raw: Redis;
  let dl: DeadLetters;
  const workers: Worker[] = [];
  const queues = new Map<QueueName, Queue>();
  /** Runs per job id; each job fails (permanently, with `reason`) on the runs `failRuns` lists. */
  let runs: Map<string, number>;

  const queue = (name: QueueName): Queue => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: raw, prefix: QUEUE_PREFIX });
      queues.set(name, q);
    }
    return q;
  };

  const deadJob = async (
    name: QueueName,
    jobId: string,
    reason: string,
    opts: { attempts?: number; retryable?: boolean } = {},
  ) => {
    if (!workers.some((w) => w.name === name)) {
      const w = await startQueueWorker({
        queue: name,
        name: `test-${name}`,
        redisUrl: redis.url,
        log,
        concurrency: 1,
        retryBaseMs: 5,
        retryCapMs: 10,
        process: async (job: Job) => {
          const n = (runs.get(String(job.id)) ?? 0) + 1;
          runs.set(String(job.id), n);
          const { fail } = job.data as { fail: { reason: string; retryable: boolean; untilRun: number } };
          if (n <= fail.untilRun)
            throw fail.retryable ? new Error(fail.reason) : new UnrecoverableError(fail.reason);
          return { done: job.id };
        },
      });
      workers.push(w as Worker);
    }
    const attempts = opts.attempts ?? 3;
    await queue(name).add(
      'job',
      {
        event: { id: jobId, type: 'message.submitted', channel: 'sms' },
        fail: { reason, retryable: !!opts.retryable, untilRun: opts.retryable ? attempts : 1 },
      },
      { jobId, attempts, removeOnFail: false, backoff: { type: 'holdfast' } },
    );
    await eventually(async () => (await dl.show(name, jobId))?.status === 'dead', `${name} ${jobId} to die`);
  };

  const operatorEvents = async (type: string): Promise<{ key: string; value: StoredEvent }[]> => {
    const store = await LocalWormStore.open({ dir: join(dir.path, 'store') });
    try {
      const out: { key: string; value: StoredEvent }[] = [];
      for await (const o of store.list('records/audit-log-admin/')) {
        const value = JSON.parse(Buffer.from((await store.get(o.key)).body).toString('utf8')) as StoredEvent;
        if (value.type === type) out.push({ key: o.key, value });
      }
      return out;
    } finally {
      await store.close();
    }
  };

  beforeEach(async () => {
    redis = await startRedis();
    dir = await tempDir('holdfast-dlq-cli-');
    env = {
      PATH: process.env.PATH,
      HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
      REDIS_URL: redis.url,
      HOLDFAST_LOG_LEVEL: 'warn',
    };
    raw = new Redis(redis.url, { maxRetriesPerRequest: null });
    dl = new DeadLetters({ redisUrl: redis.url });
    runs = new Map();
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) await closeQueueWorker(w);
    for (const q of queues.values()) await q.close();
    queues.clear();
    await dl.close();
    raw.disconnect();
    await redis.stop();
    await dir.remove();
  });

  it('lists (table and JSON, with filters) and shows a dead letter; bad arguments are named', async () => {
    await deadJob(QUEUES.archive, 'evt-a', 'HOLDFAST_ERR_VALIDATION: the event has no category');
    await deadJob(QUEUES.sendSms, 'evt-s', 'Twilio 21610: Attempt to send to unsubscribed recipient');
    await deadJob(QUEUES.sendSms, 'evt-t', 'Twilio 20429: Too Many Requests', {
      attempts: 2,
      retryable: true,
    });

    const table = await runCli(['dlq', 'list'], env);
    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^QUEUE\s+JOB ID\s+NAME\s+CLASS\s+ATTEMPTS\s+DEAD SINCE\s+REASON$/);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/).slice(0, 5))).toEqual([
      ['archive', 'evt-a', 'job', 'permanent', '1/3'],
      ['send-sms', 'evt-s', 'job', 'permanent', '1/3'],
      ['send-sms', 'evt-t', 'job', 'exhausted', '2/2'],
    ]);
    expect(lines[2]).toMatch(/Twilio 21610: Attempt to send to unsubscribed recipient$/);
    expect(lines[4]).toBe('3 shown; 3 dead letter(s) in all (archive 1, send-sms 2)');

    const json = await runCli(['dlq', 'list', '--json'], env);
    const all = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(all.map((e) => [e.queue, e.jobId, e.classification, e.eventId])).toEqual([
      ['archive', 'evt-a', 'permanent', 'evt-a'],
      ['send-sms', 'evt-s', 'permanent', 'evt-s'],
      ['send-sms', 'evt-t', 'exhausted', 'evt-t'],
    ]);
    expect(all[0]).not.toHaveProperty('data');

    const ids = async (...args: string[]) => {
      const r = await runCli(['dlq', 'list', '--json', ...args], env);
      expect(r.code).toBe(0);
      return (JSON.parse(r.stdout) as { jobId: string }[]).map((e) => e.jobId);
    };
    expect(await ids('--queue', 'send-sms')).toEqual(['evt-s', 'evt-t']);
    expect(await ids('--reason', 'twilio 216')).toEqual(['evt-s']);
    expect(await ids('--older-than', '1h')).toEqual([]);
    expect(await ids('--newer-than', '1h', '--queue', 'archive')).toEqual(['evt-a']);
    expect(await ids('--limit', '2')).toEqual(['evt-a', 'evt-s']);
    expect((await runCli(['dlq', 'list', '--older-than', '1h'], env)).stdout).toMatch(
      /^no dead letters match\n0 shown; 3 dead/,
    );

    const shown = await runCli(['dlq', 'show', 'send-sms', 'evt-t'], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^send-sms evt-t \(job\)\nstatus: +dead\n/);
    expect(shown.stdout).toMatch(/classification: +exhausted/);
    expect(shown.stdout).toMatch(/attempts: +2 of 2/);
    expect(shown.stdout).toMatch(/job in BullMQ: +failed/);
    expect(shown.stdout).toMatch(
      /run 1 {2}attempts 1-2 {2}\S+ \.\. \S+ {2}Error: Twilio 20429: Too Many Requests/,
    );
    const shownJson = JSON.parse((await runCli(['dlq', 'show', 'send-sms', 'evt-s', '--json'], env)).stdout);
    expect(shownJson).toMatchObject({
      queue: 'send-sms',
      jobId: 'evt-s',
      status: 'dead',
      classification: 'permanent',
      reason: 'Twilio 21610: Attempt to send to unsubscribed recipient',
      jobState: 'failed',
      payload: {
        bytes: expect.any(Number),
        event: { id: 'evt-s', type: 'message.submitted', channel: 'sms' },
      },
      history: [
        {
          run: 1,
          firstAttempt: 1,
          lastAttempt: 1,
          error: 'UnrecoverableError: Twilio 21610: Attempt to send to unsubscribed recipient',
        },
      ],
    });
    expect(shownJson).not.toHaveProperty('data');

    const badDuration = await runCli(['dlq', 'list', '--older-than', '1x'], env);
    expect(badDuration.code).not.toBe(0);
    expect(badDuration.stderr).toMatch(
      /option '--older-than <duration>' argument '1x' is invalid\. "1x" is not a duration/,
    );
    const badQueue = await runCli(['dlq', 'list', '--queue', 'nope'], env);
    expect(badQueue.code).not.toBe(0);
    expect(badQueue.stderr).toMatch(/unknown queue "nope"; one of: archive, send-email/);
    const badLimit = await runCli(['dlq', 'list', '--limit', '0'], env);
    expect(badLimit.code).not.toBe(0);
    expect(badLimit.stderr).toMatch(
      /'--limit <n>' argument '0' is invalid\. "0" is not a positive whole number/,
    );
    const missing = await runCli(['dlq', 'show', 'send-sms', 'nope'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no dead letter send-sms nope.*\(HOLDFAST_ERR_DEAD_LETTER_NOT_FOUND\)/);
  });

  it('shows a dead archive batch by the ids of its events, not their contents', async () => {
    const w = await startQueueWorker({
      queue: QUEUES.archive,
      name: 'test-archive-batch',
      redisUrl: redis.url,
      log,
      concurrency: 1,
      process: async (): Promise<unknown> => {
        throw new UnrecoverableError('HOLDFAST_ERR_VALIDATION: batch carries no events');
      },
    });
    workers.push(w as Worker);
    const events = ['evt-b1', 'evt-b2', 'evt-b3'].map((id) => ({
      id,
      type: 'audit.login',
      data: { secret: 'x' },
    }));
    await queue(QUEUES.archive).add('archive-batch', { events }, { jobId: 'batch-evt-b1-0123', attempts: 3 });
    await eventually(
      async () => (await dl.show(QUEUES.archive, 'batch-evt-b1-0123'))?.status === 'dead',
      'the batch to die',
    );

    const shown = await runCli(['dlq', 'show', 'archive', 'batch-evt-b1-0123'], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(
      /payload: +\d+ bytes, 3 events\n {2}event evt-b1\n {2}event evt-b2\n {2}event evt-b3\n/,
    );
    expect(shown.stdout).not.toContain('secret');
    const json = JSON.parse(
      (await runCli(['dlq', 'show', 'archive', 'batch-evt-b1-0123', '--json'], env)).stdout,
    );
    expect(json.payload).toEqual({ bytes: expect.any(Number), events: ['evt-b1', 'evt-b2', 'evt-b3'] });
  });

  it('replays: a dry run changes nothing, a replay is archived first and runs the job once, a second is a no-op', async () => {
    await deadJob(QUEUES.archive, 'evt-r', 'HOLDFAST_ERR_RETENTION_POLICY: unknown category "x"');

    const dry = await runCli(['dlq', 'replay', 'archive', 'evt-r', '--dry-run', '--json'], env);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      operation: 'replay',
      dryRun: true,
      actor: null,
      operatorEvent: null,
      items: [{ queue: 'archive', jobId: 'evt-r', action: 'retry', status: 'planned' }],
    });
    expect((await runCli(['dlq', 'replay', 'archive', 'evt-r', '--dry-run'], env)).stdout).toMatch(
      /^dry run: 1 would be replayed, 0 no-op; nothing was changed\n/,
    );
    expect(await dl.show('archive', 'evt-r')).toMatchObject({ status: 'dead', jobState: 'failed' });
    expect(runs.get('evt-r')).toBe(1);
    expect(await operatorEvents('dlq.replayed')).toEqual([]);

    const noActor = await runCli(['dlq', 'replay', 'archive', 'evt-r'], env);
    expect(noActor.code).toBe(1);
    expect(noActor.stderr).toMatch(/--actor: required \(or set HOLDFAST_ACTOR\)/);

    const replayed = await runCli(
      ['dlq', 'replay', 'archive', 'evt-r', '--actor', 'ops@acme', '--json'],
      env,
    );
    expect(replayed.stderr).toBe('');
    expect(replayed.code).toBe(0);
    const report = JSON.parse(replayed.stdout);
    expect(report).toMatchObject({
      dryRun: false,
      actor: 'ops@acme',
      items: [{ queue: 'archive', jobId: 'evt-r', action: 'retry', status: 'done' }],
      operatorEvent: {
        key: expect.stringMatching(/^records\/audit-log-admin\//),
        versionId: expect.any(String),
      },
    });
    await eventually(
      async () => (await queue(QUEUES.archive).getJobState('evt-r')) === 'completed',
      'the replay to run',
    );
    expect(runs.get('evt-r')).toBe(2);

    const events = await operatorEvents('dlq.replayed');
    expect(events.map((e) => e.key)).toEqual([report.operatorEvent.key]);
    expect(events[0]!.value).toMatchObject({
      subject: 'dead-letters',
      data: {
        actor: 'ops@acme',
        count: 1,
        items: [
          {
            queue: 'archive',
            jobId: 'evt-r',
            eventId: 'evt-r',
            action: 'retry',
            classification: 'permanent',
            reason: 'HOLDFAST_ERR_RETENTION_POLICY: unknown category "x"',
          },
        ],
      },
    });
    // Archived before the change: the event is older than the replay it records.
    const entry = await dl.show('archive', 'evt-r');
    expect(entry).toMatchObject({ status: 'replayed', replayedBy: 'ops@acme', replays: 1 });
    expect(Date.parse(events[0]!.value.occurredAt)).toBeLessThanOrEqual(Date.parse(entry!.replayedAt!));

    const again = await runCli(['dlq', 'replay', 'archive', 'evt-r'], { ...env, HOLDFAST_ACTOR: 'ops@acme' });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^0 replayed, 1 no-op\n/);
    expect(again.stdout).toMatch(/archive\s+evt-r\s+none\s+no-op\s+already replayed at \S+ by ops@acme/);
    expect(runs.get('evt-r')).toBe(2);
    expect(await operatorEvents('dlq.replayed')).toHaveLength(1);
  });

  it('discards with --all and filters, archived first; refuses bad selections without changing anything', async () => {
    await deadJob(QUEUES.media, 'evt-m-0', 'Meta 131052: media download error');
    await deadJob(QUEUES.sendSms, 'evt-s', 'Twilio 21211: invalid To number');

    const dry = await runCli(['dlq', 'discard', '--all', '--queue', 'media', '--dry-run', '--json'], env);
    expect(JSON.parse(dry.stdout)).toMatchObject({
      dryRun: true,
      items: [{ queue: 'media', jobId: 'evt-m-0', action: 'discard', status: 'planned' }],
    });
    expect(await dl.list()).toHaveLength(2);

    const refused: [string[], RegExp][] = [
      [
        ['dlq', 'discard', 'send-sms'],
        /<queue> <jobId>: name a queue and at least one job id, or select with --all/,
      ],
      [['dlq', 'discard'], /name a queue and at least one job id/],
      [['dlq', 'replay', 'send-sms', 'evt-s', '--all'], /--all: give either <queue> <jobId>… or --all/],
      [
        ['dlq', 'replay', 'send-sms', 'evt-s', '--reason', 'x'],
        /--queue\|--reason\|--older-than\|--newer-than\|--limit: these select entries only together with --all/,
      ],
      [['dlq', 'replay', 'nope', 'evt-s'], /<queue>: unknown queue "nope"/],
      [
        ['dlq', 'discard', 'send-sms', 'evt-s', 'nope'],
        /no dead letter send-sms nope: nothing was changed.*HOLDFAST_ERR_DEAD_LETTER_NOT_FOUND/,
      ],
    ];
    for (const [args, message] of refused) {
      const r = await runCli([...args, '--actor', 'ops@acme'], env);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(message);
    }
    expect(await dl.list()).toHaveLength(2);
    expect(await operatorEvents('dlq.discarded')).toEqual([]);

    const discarded = await runCli(
      ['dlq', 'discard', '--all', '--queue', 'media', '--actor', 'ops@acme'],
      env,
    );
    expect(discarded.stderr).toBe('');
    expect(discarded.code).toBe(0);
    expect(discarded.stdout).toMatch(/^1 discarded, 0 no-op\n/);
    expect(discarded.stdout).toMatch(
      /media\s+evt-m-0\s+discard\s+done\s+the entry and its failed job were removed/,
    );
    expect(discarded.stdout).toMatch(/recorded as records\/audit-log-admin\//);
    const events = await operatorEvents('dlq.discarded');
    expect(events).toHaveLength(1);
    expect(events[0]!.value.data).toMatchObject({
      actor: 'ops@acme',
      items: [
        { queue: 'media', jobId: 'evt-m-0', action: 'discard', reason: 'Meta 131052: media download error' },
      ],
    });
    expect((await dl.list()).map((e) => e.jobId)).toEqual(['evt-s']);
    expect(await queue(QUEUES.media).getJobState('evt-m-0')).toBe('unknown');
  });
});
