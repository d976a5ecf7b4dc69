import {
  createLogger,
  deadLetterQueueOf,
  newEvent,
  QUEUE_PREFIX,
  QUEUES,
  type QueueName,
} from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { FlowProducer, type Job, type JobsOptions, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  closeQueueWorker,
  createRedisConnection,
  type DeadLetterActionItem,
  DeadLetterNotFoundError,
  DeadLetters,
  deadLetterWatchOf,
  EventWriter,
  startQueueWorker,
} from '../src/index.ts';

const log = createLogger({ name: 'dead-letters-test', level: 'silent' });

/** Poll until `probe` gives a truthy value (the workers run on their own). */
async function eventually<T>(probe: () => Promise<T | undefined | null | false>, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const keep: JobsOptions = { removeOnFail: false, backoff: { type: 'holdfast' } };

describe('dead letters', () => {
  let redis: TestRedis;
  let dl: DeadLetters;
  let raw: Redis;
  const workers: Worker[] = [];
  const queues = new Map<QueueName, Queue>();
  let flows: FlowProducer | undefined;

  const queue = (name: QueueName): Queue => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: raw, prefix: QUEUE_PREFIX });
      queues.set(name, q);
    }
    return q;
  };

  const worker = async <R>(name: QueueName, process: (job: Job) => Promise<R>): Promise<Worker> => {
    const w = await startQueueWorker({
      queue: name,
      name: `test-${name}`,
      redisUrl: redis.url,
      process,
      log,
      concurrency: 1,
      retryBaseMs: 5,
      retryCapMs: 20,
    });
    workers.push(w as Worker);
    return w as Worker;
  };

  const dead = (name: QueueName, jobId: string) =>
    eventually(async () => {
      const e = await dl.show(name, jobId);
      return e?.status === 'dead' && e;
    }, `${name} ${jobId} to be a dead letter`);

  const finished = (name: QueueName, jobId: string) =>
    eventually(async () => {
      const state = await queue(name).getJobState(jobId);
      return (state === 'completed' || state === 'failed') && (await queue(name).getJob(jobId));
    }, `${name} ${jobId} to finish`);

  beforeEach(async () => {
    redis = await startRedis();
    dl = new DeadLetters({ redisUrl: redis.url, log });
    raw = new Redis(redis.url, { maxRetriesPerRequest: null });
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) await closeQueueWorker(w);
    for (const q of queues.values()) await q.close();
    queues.clear();
    await flows?.close();
    flows = undefined;
    await dl.close();
    raw.disconnect();
    await redis.stop();
  });

  it('records a permanent failure at once, with the provider reason and the payload', async () => {
    await worker(QUEUES.sendSms, async () => {
      throw new UnrecoverableError('Twilio 21211: The "To" number +1555 is not a valid phone number');
    });
    await queue(QUEUES.sendSms).add(
      'send',
      { event: { id: 'evt-perm' } },
      { ...keep, jobId: 'evt-perm', attempts: 10 },
    );

    const entry = await dead(QUEUES.sendSms, 'evt-perm');
    expect(entry).toMatchObject({
      queue: 'send-sms',
      jobId: 'evt-perm',
      name: 'send',
      eventId: 'evt-perm',
      classification: 'permanent',
      reason: 'Twilio 21211: The "To" number +1555 is not a valid phone number',
      attemptsMade: 1,
      attempts: 10,
      replays: 0,
      data: { event: { id: 'evt-perm' } },
      opts: { attempts: 10, removeOnFail: false, backoff: { type: 'holdfast' } },
      jobState: 'failed',
      children: [],
    });
    expect(entry.history).toEqual([
      {
        run: 1,
        firstAttempt: 1,
        lastAttempt: 1,
        count: 1,
        firstAt: entry.firstFailedAt,
        lastAt: entry.firstFailedAt,
        error: 'UnrecoverableError: Twilio 21211: The "To" number +1555 is not a valid phone number',
      },
    ]);
    expect(Date.parse(entry.deadAt)).toBeGreaterThanOrEqual(Date.parse(entry.firstFailedAt));
    expect(await dl.counts()).toEqual({
      archive: 0,
      'send-email': 0,
      'send-sms': 1,
      'send-whatsapp': 0,
      media: 0,
    });
    // Dead letters never expire.
    const ns = deadLetterQueueOf(QUEUES.sendSms);
    expect(await raw.pttl(`${ns}:entry:evt-perm`)).toBe(-1);
    expect(await raw.pttl(`${ns}:history:evt-perm`)).toBe(-1);
  });

  it('records a retryable failure only once its attempts are exhausted, with every attempt in the history', async () => {
    const ns = deadLetterQueueOf(QUEUES.archive);
    const duringRetries: { entry: unknown; historyTtl: number }[] = [];
    await worker(QUEUES.archive, async (job) => {
      if (job.attemptsMade > 0)
        duringRetries.push({
          entry: await dl.show(QUEUES.archive, 'evt-retry'),
          historyTtl: await raw.pttl(`${ns}:history:evt-retry`),
        });
      throw new Error(job.attemptsMade < 2 ? 'S3 503 SlowDown' : 'S3 500 InternalError');
    });
    await queue(QUEUES.archive).add(
      'archive',
      { event: { id: 'evt-retry' } },
      { ...keep, jobId: 'evt-retry', attempts: 3 },
    );

    const entry = await dead(QUEUES.archive, 'evt-retry');
    // While it still had attempts left it was no dead letter; its history was kept, with a TTL.
    expect(duringRetries).toHaveLength(2);
    for (const seen of duringRetries) {
      expect(seen.entry).toBeUndefined();
      expect(seen.historyTtl).toBeGreaterThan(0);
    }
    expect(entry).toMatchObject({
      classification: 'exhausted',
      attemptsMade: 3,
      attempts: 3,
      reason: 'S3 500 InternalError',
    });
    expect(entry.history).toMatchObject([
      { run: 1, firstAttempt: 1, lastAttempt: 2, count: 2, error: 'Error: S3 503 SlowDown' },
      { run: 1, firstAttempt: 3, lastAttempt: 3, count: 1, error: 'Error: S3 500 InternalError' },
    ]);
    const [first, second] = entry.history;
    expect(entry.firstFailedAt).toBe(first!.firstAt);
    expect(Date.parse(first!.lastAt!)).toBeGreaterThanOrEqual(Date.parse(first!.firstAt!));
    expect(Date.parse(second!.firstAt!)).toBeGreaterThanOrEqual(Date.parse(first!.lastAt!));
    expect(await raw.pttl(`${ns}:history:evt-retry`)).toBe(-1);
  });

  it('forgets the history of a job that failed and then completed', async () => {
    const ns = deadLetterQueueOf(QUEUES.media);
    await worker(QUEUES.media, async (job) => {
      if (job.attemptsMade === 0) throw new Error('provider URL answered 502');
      return 'ok';
    });
    await queue(QUEUES.media).add('fetch', { eventId: 'evt-m' }, { ...keep, jobId: 'evt-m-0', attempts: 3 });
    await finished(QUEUES.media, 'evt-m-0');
    await eventually(async () => (await raw.exists(`${ns}:history:evt-m-0`)) === 0, 'the history to go');
    expect(await dl.show(QUEUES.media, 'evt-m-0')).toBeUndefined();
  });

  it('repairs, by the sweep, a job that failed for good while no entry could be written', async () => {
    // A worker without dead letters stands for a process that died between failing the job and
    // writing its entry: the jobs are in the failed set and nothing else knows.
    const plain = new Worker(
      QUEUES.media,
      async (job) => {
        if (job.data.kind === 'permanent') throw new UnrecoverableError('Meta 131052: media download error');
        throw new Error(`timeout after ${job.attemptsMade + 1} tries`);
      },
      {
        connection: createRedisConnection(redis.url, 'worker', 'plain-test-worker'),
        prefix: QUEUE_PREFIX,
        settings: { backoffStrategy: () => 5 },
      },
    );
    await queue(QUEUES.media).add(
      'fetch',
      { eventId: 'e1', kind: 'permanent' },
      { ...keep, jobId: 'e1-0', attempts: 5 },
    );
    await queue(QUEUES.media).add(
      'fetch',
      { eventId: 'e2', kind: 'flaky' },
      { ...keep, jobId: 'e2-0', attempts: 2 },
    );
    await eventually(async () => (await queue(QUEUES.media).getFailedCount()) === 2, 'both jobs to fail');
    await plain.close();
    expect(await dl.show(QUEUES.media, 'e1-0')).toBeUndefined();

    // The next worker to start on the queue sweeps it.
    const w = await worker(QUEUES.media, async () => 'unused');
    const permanent = await dead(QUEUES.media, 'e1-0');
    const exhausted = await dead(QUEUES.media, 'e2-0');
    const failedAt = async (id: string) =>
      new Date((await queue(QUEUES.media).getJob(id))!.finishedOn!).toISOString();
    expect(permanent).toMatchObject({
      classification: 'permanent',
      reason: 'Meta 131052: media download error',
      attemptsMade: 1,
      eventId: 'e1',
      deadAt: await failedAt('e1-0'),
    });
    expect(permanent.history).toEqual([
      {
        run: 1,
        firstAttempt: 1,
        lastAttempt: 1,
        count: 1,
        firstAt: permanent.deadAt,
        lastAt: permanent.deadAt,
        error: 'UnrecoverableError: Meta 131052: media download error',
      },
    ]);
    // BullMQ's stack traces give every attempt's error; only the last one's time is known.
    // The first failure's time is unknown: the entry says when it died.
    expect(exhausted).toMatchObject({
      classification: 'exhausted',
      attemptsMade: 2,
      firstFailedAt: exhausted.deadAt,
    });
    expect(exhausted.history).toEqual([
      {
        run: 1,
        firstAttempt: 1,
        lastAttempt: 1,
        count: 1,
        firstAt: null,
        lastAt: null,
        error: 'Error: timeout after 1 tries',
      },
      {
        run: 1,
        firstAttempt: 2,
        lastAttempt: 2,
        count: 1,
        firstAt: exhausted.deadAt,
        lastAt: exhausted.deadAt,
        error: 'Error: timeout after 2 tries',
      },
    ]);
    // Idempotent: a second sweep finds nothing to do.
    expect(await deadLetterWatchOf(w)!.sweep()).toEqual({
      queue: 'media',
      checked: 2,
      recorded: 0,
      reverted: 0,
    });
  });

  it('makes dead again, by the sweep, a replay that was claimed but never carried out', async () => {
    await worker(QUEUES.archive, async () => {
      throw new UnrecoverableError('HOLDFAST_ERR_VALIDATION: bad event');
    });
    await queue(QUEUES.archive).add(
      'archive',
      { event: { id: 'evt-claim' } },
      { ...keep, jobId: 'evt-claim', attempts: 2 },
    );
    await dead(QUEUES.archive, 'evt-claim');
    // The state a replay leaves if its process dies between the claim and the retry.
    const ns = deadLetterQueueOf(QUEUES.archive);
    const deadAtMs = Number(await raw.hget(`${ns}:entry:evt-claim`, 'deadAtMs'));
    await raw.hset(`${ns}:entry:evt-claim`, {
      status: 'replayed',
      replayedAtMs: String(deadAtMs + 1),
      replayedAt: new Date(deadAtMs + 1).toISOString(),
      replayedBy: 'crashed@acme',
      replays: '1',
    });
    await raw.zrem(`${ns}:dead`, 'evt-claim');
    expect(await dl.list()).toEqual([]);

    // Within the grace period it may still be under way: left alone.
    expect(await dl.sweep(QUEUES.archive)).toMatchObject({ recorded: 0, reverted: 0 });
    const impatient = new DeadLetters({ redisUrl: redis.url, log, claimGraceMs: 0 });
    try {
      expect(await impatient.sweep(QUEUES.archive)).toMatchObject({ recorded: 0, reverted: 1 });
    } finally {
      await impatient.close();
    }
    expect(await dl.show(QUEUES.archive, 'evt-claim')).toMatchObject({ status: 'dead', replays: 0 });
    expect((await dl.list()).map((e) => e.jobId)).toEqual(['evt-claim']);
  });

  it('makes dead again, by the sweep, a re-add that was claimed but whose job was never added', async () => {
    await worker(QUEUES.archive, async () => {
      throw new UnrecoverableError('HOLDFAST_ERR_VALIDATION: bad event');
    });
    await queue(QUEUES.archive).add(
      'archive',
      { event: { id: 'evt-readd' } },
      { ...keep, jobId: 'evt-readd', attempts: 2 },
    );
    await dead(QUEUES.archive, 'evt-readd');
    await queue(QUEUES.archive).remove('evt-readd');
    // A replay whose failed job is gone claims the entry, then adds the job again: the state its
    // claim leaves if the process dies before the add. No failed job is left for the sweep to see.
    const ns = deadLetterQueueOf(QUEUES.archive);
    const claimedAtMs = Number(await raw.hget(`${ns}:entry:evt-readd`, 'deadAtMs')) + 1;
    await raw.hset(`${ns}:entry:evt-readd`, {
      status: 'replayed',
      replayedAtMs: String(claimedAtMs),
      replayedAt: new Date(claimedAtMs).toISOString(),
      replayedBy: 'crashed@acme',
      replays: '1',
    });
    await raw.zrem(`${ns}:dead`, 'evt-readd');
    await raw.zadd(`${ns}:replaying`, claimedAtMs, 'evt-readd');
    expect(await dl.list()).toEqual([]);

    const impatient = new DeadLetters({ redisUrl: redis.url, log, claimGraceMs: 0 });
    try {
      expect(await impatient.sweep(QUEUES.archive)).toMatchObject({ reverted: 1 });
    } finally {
      await impatient.close();
    }
    expect(await dl.show(QUEUES.archive, 'evt-readd')).toMatchObject({ status: 'dead', replays: 0 });
    expect((await dl.list()).map((e) => e.jobId)).toEqual(['evt-readd']);
  });

  it('replays a dead job once under the same job id; a second replay is a no-op', async () => {
    const runs: string[] = [];
    await worker(QUEUES.sendWhatsApp, async (job) => {
      runs.push(String(job.id));
      if (runs.length === 1)
        throw new UnrecoverableError('Meta 131047: re-engagement message outside the 24h window');
      return { sentFor: job.id };
    });
    await queue(QUEUES.sendWhatsApp).add(
      'send',
      { event: { id: 'evt-wa' } },
      { ...keep, jobId: 'evt-wa', attempts: 10 },
    );
    await dead(QUEUES.sendWhatsApp, 'evt-wa');

    const ref = { refs: [{ queue: 'send-whatsapp', jobId: 'evt-wa' }] };
    const first = await dl.replay(ref, { actor: 'ops@acme' });
    expect(first).toMatchObject({
      operation: 'replay',
      dryRun: false,
      items: [{ queue: 'send-whatsapp', jobId: 'evt-wa', action: 'retry', status: 'done' }],
    });
    const second = await dl.replay(ref, { actor: 'ops@acme' });
    expect(second.items).toMatchObject([{ action: 'none', status: 'no-op' }]);
    expect(second.items[0]!.detail).toMatch(/^already replayed at \S+ by ops@acme$/);

    const job = await finished(QUEUES.sendWhatsApp, 'evt-wa');
    expect(job.returnvalue).toEqual({ sentFor: 'evt-wa' });
    expect((await dl.replay(ref, { actor: 'ops@acme' })).items[0]!.status).toBe('no-op');
    expect(runs).toEqual(['evt-wa', 'evt-wa']);
    expect(await dl.show('send-whatsapp', 'evt-wa')).toMatchObject({
      status: 'replayed',
      replays: 1,
      replayedBy: 'ops@acme',
      jobState: 'completed',
    });
    expect(await dl.list()).toEqual([]);
    expect((await dl.counts())['send-whatsapp']).toBe(0);
  });

  it('re-adds a dead job whose failed job is gone, with the same id and payload', async () => {
    const runs: unknown[] = [];
    await worker(QUEUES.archive, async (job) => {
      runs.push({ id: job.id, data: job.data, attempts: job.opts.attempts });
      if (runs.length === 1) throw new UnrecoverableError('HOLDFAST_ERR_RETENTION_POLICY: no such category');
      return 'archived';
    });
    await queue(QUEUES.archive).add(
      'archive',
      { event: { id: 'evt-gone' } },
      { ...keep, jobId: 'evt-gone', attempts: 7 },
    );
    await dead(QUEUES.archive, 'evt-gone');
    await queue(QUEUES.archive).remove('evt-gone');

    const dry = await dl.replay({ refs: [{ queue: 'archive', jobId: 'evt-gone' }] }, { dryRun: true });
    expect(dry.items).toMatchObject([{ action: 're-add', status: 'planned' }]);
    const report = await dl.replay(
      { refs: [{ queue: 'archive', jobId: 'evt-gone' }] },
      { actor: 'ops@acme' },
    );
    expect(report.items).toMatchObject([{ action: 're-add', status: 'done' }]);
    expect((await finished(QUEUES.archive, 'evt-gone')).returnvalue).toBe('archived');
    expect(runs).toEqual([
      { id: 'evt-gone', data: { event: { id: 'evt-gone' } }, attempts: 7 },
      { id: 'evt-gone', data: { event: { id: 'evt-gone' } }, attempts: 7 },
    ]);
    expect((await dl.replay({ refs: [{ queue: 'archive', jobId: 'evt-gone' }] })).items[0]!.status).toBe(
      'no-op',
    );
    // Carried out: a sweep past the grace period leaves it replayed.
    const impatient = new DeadLetters({ redisUrl: redis.url, log, claimGraceMs: 0 });
    try {
      expect(await impatient.sweep(QUEUES.archive)).toMatchObject({ reverted: 0 });
    } finally {
      await impatient.close();
    }
    expect(await dl.show(QUEUES.archive, 'evt-gone')).toMatchObject({ status: 'replayed' });
  });

  describe('flows (a send parent with its archive child)', () => {
    const addFlow = async (id: string) => {
      flows ??= new FlowProducer({ connection: raw, prefix: QUEUE_PREFIX });
      await flows.add({
        name: 'send',
        queueName: QUEUES.sendEmail,
        prefix: QUEUE_PREFIX,
        data: { event: { id } },
        opts: { ...keep, jobId: id, attempts: 3 },
        children: [
          {
            name: 'archive',
            queueName: QUEUES.archive,
            prefix: QUEUE_PREFIX,
            data: { event: { id } },
            opts: { ...keep, jobId: id, attempts: 3, failParentOnFailure: true },
          },
        ],
      });
    };

    let archiveRuns: number;
    let sendRuns: number;
    let archiveFailsFirst: boolean;
    beforeEach(async () => {
      archiveRuns = 0;
      sendRuns = 0;
      archiveFailsFirst = false;
      await worker(QUEUES.archive, async (job) => {
        archiveRuns++;
        if (archiveFailsFirst && archiveRuns === 1)
          throw new UnrecoverableError('HOLDFAST_ERR_ARCHIVE_CONFLICT: a different object is at the key');
        return { key: `email/acme/outbound/${job.id}.eml`, sha256: 'ab'.repeat(32) };
      });
      await worker(QUEUES.sendEmail, async (job) => {
        sendRuns++;
        const children = await job.getChildrenValues();
        if (sendRuns === 1)
          throw new UnrecoverableError('SES MessageRejected: Email address is not verified');
        return { children };
      });
    });

    const archived = (id: string) => ({
      [`${QUEUE_PREFIX}:archive:${id}`]: { key: `email/acme/outbound/${id}.eml`, sha256: 'ab'.repeat(32) },
    });

    it('replays a failed parent, which sees its completed archive child', async () => {
      await addFlow('evt-flow');
      const entry = await dead(QUEUES.sendEmail, 'evt-flow');
      expect(entry.children).toEqual([
        {
          queue: 'archive',
          jobId: 'evt-flow',
          name: 'archive',
          opts: {
            attempts: 3,
            removeOnFail: false,
            backoff: { type: 'holdfast' },
            failParentOnFailure: true,
          },
        },
      ]);
      expect(
        await dl.replay({ refs: [{ queue: 'send-email', jobId: 'evt-flow' }] }, { actor: 'ops@acme' }),
      ).toMatchObject({
        items: [{ action: 'retry', status: 'done' }],
      });
      const job = await finished(QUEUES.sendEmail, 'evt-flow');
      expect(job.returnvalue).toEqual({ children: archived('evt-flow') });
      expect({ archiveRuns, sendRuns }).toEqual({ archiveRuns: 1, sendRuns: 2 });
    });

    it('re-adds a parent whose failed job is gone as the same flow: the completed child counts', async () => {
      await addFlow('evt-flow-gone');
      await dead(QUEUES.sendEmail, 'evt-flow-gone');
      await queue(QUEUES.sendEmail).remove('evt-flow-gone', { removeChildren: false });

      const report = await dl.replay(
        { refs: [{ queue: 'send-email', jobId: 'evt-flow-gone' }] },
        { actor: 'ops@acme' },
      );
      expect(report.items).toMatchObject([{ action: 're-add', status: 'done' }]);
      const job = await finished(QUEUES.sendEmail, 'evt-flow-gone');
      expect(job.returnvalue).toEqual({ children: archived('evt-flow-gone') });
      expect({ archiveRuns, sendRuns }).toEqual({ archiveRuns: 1, sendRuns: 2 });
    });

    it('replays the failed archive child first; the parent waits for it, then runs once with its result', async () => {
      archiveFailsFirst = true;
      sendRuns = 1; // the send's first run is the replay: it must not be rejected
      await addFlow('evt-child');
      await dead(QUEUES.archive, 'evt-child');
      const parent = await dead(QUEUES.sendEmail, 'evt-child');
      expect(parent).toMatchObject({
        classification: 'permanent',
        reason: `child ${QUEUE_PREFIX}:archive:evt-child failed`,
      });

      const all = await dl.replay({ filter: {} }, { actor: 'ops@acme' });
      expect(all.items.map((i) => [i.queue, i.action, i.status])).toEqual([
        ['archive', 'retry', 'done'],
        ['send-email', 'none', 'no-op'],
      ]);
      expect(all.items[1]!.detail).toMatch(/child job\(s\) failed: replay them first/);
      await finished(QUEUES.archive, 'evt-child');

      const again = await dl.replay(
        { refs: [{ queue: 'send-email', jobId: 'evt-child' }] },
        { actor: 'ops@acme' },
      );
      expect(again.items).toMatchObject([{ action: 'retry', status: 'done' }]);
      const job = await finished(QUEUES.sendEmail, 'evt-child');
      expect(job.returnvalue).toEqual({ children: archived('evt-child') });
      expect({ archiveRuns, sendRuns }).toEqual({ archiveRuns: 2, sendRuns: 2 });
    });
  });

  it('discards an entry and its failed job, after the caller recorded it; the sweep does not bring it back', async () => {
    await worker(QUEUES.media, async () => {
      throw new UnrecoverableError('Twilio 20404: media not found');
    });
    await queue(QUEUES.media).add('fetch', { eventId: 'evt-d' }, { ...keep, jobId: 'evt-d-0', attempts: 3 });
    await dead(QUEUES.media, 'evt-d-0');

    const seenBefore: unknown[] = [];
    const report = await dl.discard(
      { refs: [{ queue: 'media', jobId: 'evt-d-0' }] },
      {
        actor: 'ops@acme',
        beforeChange: async (items: readonly DeadLetterActionItem[]) => {
          seenBefore.push({
            items: items.map((i) => [i.queue, i.jobId, i.action, i.status]),
            entry: (await dl.show('media', 'evt-d-0'))?.status,
            job: await queue(QUEUES.media).getJobState('evt-d-0'),
          });
        },
      },
    );
    expect(seenBefore).toEqual([
      { items: [['media', 'evt-d-0', 'discard', 'planned']], entry: 'dead', job: 'failed' },
    ]);
    expect(report.items).toMatchObject([{ action: 'discard', status: 'done', eventId: 'evt-d' }]);
    expect(await dl.show('media', 'evt-d-0')).toBeUndefined();
    expect(await queue(QUEUES.media).getJobState('evt-d-0')).toBe('unknown');
    expect(await dl.sweep(QUEUES.media)).toMatchObject({ recorded: 0 });
    expect(await dl.list()).toEqual([]);
    await expect(dl.discard({ refs: [{ queue: 'media', jobId: 'evt-d-0' }] })).rejects.toBeInstanceOf(
      DeadLetterNotFoundError,
    );
  });

  it("a spool that still holds a discarded job's event (its producer was away) acknowledges it instead of enqueueing it again", async () => {
    const dir = await tempDir();
    try {
      const event = newEvent({
        type: 'audit.login',
        occurredAt: new Date(),
        project: 'acme',
        channel: 'record',
        direction: 'internal',
        subject: 'user-1',
        category: 'audit-log',
        data: {},
      });
      // Accepted and enqueued; then the producer goes away before the job fails.
      const away = await EventWriter.open({ spoolDir: dir.path, redisUrl: redis.url, logger: log });
      await away.submit(event, 'archive');
      await eventually(
        async () => (await queue(QUEUES.archive).getJobState(event.id)) === 'waiting',
        'the job',
      );
      await away.close();
      await worker(QUEUES.archive, async () => {
        throw new UnrecoverableError('HOLDFAST_ERR_VALIDATION: not archivable');
      });
      await dead(QUEUES.archive, event.id);
      await dl.discard({ refs: [{ queue: 'archive', jobId: event.id }] }, { actor: 'ops@acme' });
      expect(await queue(QUEUES.archive).getJobState(event.id)).toBe('unknown');

      const back = await EventWriter.open({ spoolDir: dir.path, redisUrl: redis.url, logger: log });
      try {
        const report = await eventually(async () => {
          const r = await back.drain(0);
          return back.stats().backlog === 0 && r;
        }, 'the spool acknowledged');
        expect(report.requeued).toBe(0);
        expect(await queue(QUEUES.archive).getJobState(event.id)).toBe('unknown');
      } finally {
        await back.close();
      }
    } finally {
      await dir.remove();
    }
  });

  it('changes nothing in a dry run, and does not call beforeChange', async () => {
    let runs = 0;
    await worker(QUEUES.archive, async () => {
      runs++;
      throw new UnrecoverableError('HOLDFAST_ERR_PAYLOAD_HASH_MISMATCH: body differs');
    });
    await queue(QUEUES.archive).add(
      'archive',
      { event: { id: 'evt-dry' } },
      { ...keep, jobId: 'evt-dry', attempts: 3 },
    );
    const before = await dead(QUEUES.archive, 'evt-dry');
    const never = async () => {
      throw new Error('beforeChange must not be called in a dry run');
    };
    const selection = { filter: { queue: QUEUES.archive } };
    const replay = await dl.replay(selection, { dryRun: true, beforeChange: never });
    const discard = await dl.discard(selection, { dryRun: true, beforeChange: never });
    expect(replay).toMatchObject({
      dryRun: true,
      items: [{ jobId: 'evt-dry', action: 'retry', status: 'planned' }],
    });
    expect(discard).toMatchObject({
      dryRun: true,
      items: [{ jobId: 'evt-dry', action: 'discard', status: 'planned' }],
    });
    expect(await dl.show(QUEUES.archive, 'evt-dry')).toEqual(before);
    expect(runs).toBe(1);
  });

  it('lists with filters, counts per queue, and refuses a bad selection without changing anything', async () => {
    for (const [name, reason] of [
      [QUEUES.archive, 'HOLDFAST_ERR_VALIDATION: store refused the event'],
      [QUEUES.sendSms, 'Twilio 21610: the recipient unsubscribed'],
      [QUEUES.media, 'Meta 131052: media download error'],
    ] as const) {
      await worker(name, async () => {
        throw new UnrecoverableError(reason);
      });
      await queue(name).add('job', { eventId: `evt-${name}` }, { ...keep, jobId: `j-${name}`, attempts: 2 });
      await dead(name, `j-${name}`);
    }
    const ids = async (filter: Parameters<DeadLetters['list']>[0]) =>
      (await dl.list(filter)).map((e) => e.jobId);
    expect(await ids({})).toEqual(['j-archive', 'j-send-sms', 'j-media']);
    expect(await ids({ queue: QUEUES.sendSms })).toEqual(['j-send-sms']);
    expect(await ids({ reason: 'TWILIO 216' })).toEqual(['j-send-sms']);
    expect(await ids({ deadBefore: new Date(Date.now() - 3_600_000) })).toEqual([]);
    expect(await ids({ deadAfter: new Date(Date.now() - 3_600_000) })).toHaveLength(3);
    expect(await ids({ limit: 2 })).toEqual(['j-archive', 'j-send-sms']);
    const [summary] = await dl.list({ queue: QUEUES.media });
    expect(summary).not.toHaveProperty('data');
    expect(summary).toMatchObject({ eventId: 'evt-media', reason: 'Meta 131052: media download error' });
    expect(await dl.counts()).toEqual({
      archive: 1,
      'send-email': 0,
      'send-sms': 1,
      'send-whatsapp': 0,
      media: 1,
    });

    await expect(dl.list({ queue: 'nope' as QueueName })).rejects.toThrow(
      /queue: unknown queue "nope"; one of: archive/,
    );
    await expect(dl.list({ limit: 0 })).rejects.toThrow(/limit: must be a positive integer/);
    const missing = await dl
      .replay({
        refs: [
          { queue: 'archive', jobId: 'j-archive' },
          { queue: 'archive', jobId: 'nope' },
        ],
      })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(DeadLetterNotFoundError);
    expect((missing as DeadLetterNotFoundError).code).toBe('HOLDFAST_ERR_DEAD_LETTER_NOT_FOUND');
    expect((missing as Error).message).toMatch(/no dead letter archive nope/);
    expect(await dl.show(QUEUES.archive, 'j-archive')).toMatchObject({ status: 'dead', jobState: 'failed' });
  });

  it('stops recording when the worker is closed', async () => {
    const w = await worker(QUEUES.archive, async () => 'ok');
    expect(deadLetterWatchOf(w)).toBeDefined();
    await closeQueueWorker(w);
    workers.splice(workers.indexOf(w), 1);
    expect(deadLetterWatchOf(w)).toBeUndefined();
  });
});
