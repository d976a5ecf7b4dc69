import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  ARCHIVE_BATCH_JOB,
  type ArchiveBatchJobData,
  type ArchiveBatchJobResult,
  archiveBatchJobId,
  archivedMarkerKey,
  createLogger,
  newEvent,
  QUEUE_PREFIX,
  QUEUES,
} from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { type Job, Queue, UnrecoverableError, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { archiveJobOptions, closeQueueWorker, EventWriter, startQueueWorker } from '../src/index.ts';
import { record, until } from './record-events.ts';

const log = createLogger({ name: 'event-writer-batches-test', level: 'silent' });

/*
 * Archive-only events (records, provider reports) acknowledged within a few milliseconds of each
 * other share one `archive-batch` job. These tests drive a real EventWriter against a real Redis, with a BullMQ worker
 * standing in for the archiver.
 */

describe('EventWriter archive batches', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let writer: EventWriter | undefined;
  let worker: Worker | undefined;
  let queue: Queue;

  beforeAll(async () => {
    redis = await startRedis();
    dir = await tempDir();
  });
  afterAll(async () => {
    await redis.stop();
    await dir.remove();
  });
  beforeEach(async () => {
    const raw = new Redis(redis.url);
    await raw.flushall();
    raw.disconnect();
    queue = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
  });
  afterEach(async () => {
    if (worker) await closeQueueWorker(worker);
    worker = undefined;
    await writer?.close();
    writer = undefined;
    await queue.close();
  });

  const open = (name: string) =>
    EventWriter.open({ spoolDir: join(dir.path, name), redisUrl: redis.url, drainIntervalMs: 60_000 });

  /**
   * A stand-in archiver (a Holdfast queue worker, which tells each job's writer it finished):
   * completes batches with `answer`, plain jobs with `plain`.
   */
  const consume = async (
    answer: (job: Job<ArchiveBatchJobData>) => Promise<ArchiveBatchJobResult>,
    plain: (job: Job) => Promise<unknown> = async () => ({ created: true }),
  ) => {
    worker = (await startQueueWorker({
      queue: QUEUES.archive,
      name: 'stand-in-archiver',
      redisUrl: redis.url,
      log,
      concurrency: 4,
      process: async (job: Job) => (job.name === ARCHIVE_BATCH_JOB ? answer(job) : plain(job)),
    })) as Worker;
  };

  /** The waiting jobs that carry any of `ids`, with the ids each carries. */
  const jobsHolding = async (ids: readonly string[]) => {
    const wanted = new Set(ids);
    return (await queue.getJobs(['waiting']))
      .flatMap((job) =>
        job.name === ARCHIVE_BATCH_JOB
          ? (job.data as ArchiveBatchJobData).events.map((e) => e.id)
          : [job.id!],
      )
      .filter((id) => wanted.has(id));
  };

  it('events submitted together go as one archive-batch job and are acknowledged when it completes', async () => {
    writer = await open('together');
    const events = Array.from({ length: 30 }, (_, i) => record(i));
    await Promise.all(events.map((e) => writer!.submit(e, 'archive')));
    // One job per group commit of the spool: a batch, or a plain job when a round held one event.
    const eventsIn = (job: Job) =>
      job.name === ARCHIVE_BATCH_JOB ? (job.data as ArchiveBatchJobData).events.map((e) => e.id) : [job.id!];
    let jobs: Job[] = [];
    await until('every event in a job', async () => {
      jobs = await queue.getJobs(['waiting']);
      return jobs.flatMap(eventsIn).length === events.length;
    });
    expect(jobs.flatMap(eventsIn).sort()).toEqual(events.map((e) => e.id).sort());
    const batches = jobs.filter((j) => j.name === ARCHIVE_BATCH_JOB);
    expect(batches.length).toBeGreaterThan(0);
    for (const batch of batches) {
      const ids = eventsIn(batch);
      expect(ids.length).toBeGreaterThan(1);
      expect(batch.id).toBe(archiveBatchJobId(ids));
    }
    for (const plain of jobs.filter((j) => j.name !== ARCHIVE_BATCH_JOB)) expect(plain.name).toBe('archive');
    expect(writer.stats().backlog).toBe(30);

    await consume(async (job) => ({ created: job.data.events.length, existing: 0, split: [] }));
    await until('every event acknowledged', () => writer!.stats().spool.unacked === 0);
    expect(writer.stats().backlog).toBe(0);
  });

  it('an event of a megabyte or more goes alone, and no batch carries more than about a megabyte', async () => {
    writer = await open('large');
    const big = newEvent({
      type: 'statement.issued',
      occurredAt: new Date(Date.UTC(2026, 10, 20, 9, 0, 0)),
      project: 'acme',
      channel: 'record',
      direction: 'internal',
      subject: 'account-1',
      category: 'audit-log',
      data: { lines: 'x'.repeat(1_200_000) },
    });
    const small = Array.from({ length: 40 }, (_, i) => ({
      ...record(i),
      data: { n: i, pad: 'y'.repeat(60_000) },
    }));
    const events = [...small.slice(0, 20), big, ...small.slice(20)];
    await Promise.all(events.map((e) => writer!.submit(e, 'archive')));
    const all = events.map((e) => e.id);
    await until('every event in a job', async () => (await jobsHolding(all)).length === events.length);

    const bounded = async () => {
      expect((await queue.getJob(big.id))?.name).toBe('archive');
      const batches = (await queue.getJobs(['waiting'])).filter((j) => j.name === ARCHIVE_BATCH_JOB);
      expect(batches.length).toBeGreaterThan(1);
      for (const batch of batches) {
        expect(JSON.stringify(batch.data).length).toBeLessThan(1024 * 1024 + 70_000);
        expect((batch.data as ArchiveBatchJobData).events.map((e) => e.id)).not.toContain(big.id);
      }
    };
    await bounded();
    // The drainer's batches keep the same bounds.
    for (const job of await queue.getJobs(['waiting'])) await job.remove();
    expect((await writer.drain(0)).requeued).toBe(events.length);
    await bounded();
  });

  // A sender's outcome events arrive one send after another, each its own group commit: the open
  // batch waits a few milliseconds for the next instead of going with one event.
  it('events submitted one after another, each awaited, still share a batch', async () => {
    writer = await open('one-by-one');
    const events = [record(1), record(2), record(3)];
    for (const event of events) await writer.submit(event, 'archive');
    const all = events.map((e) => e.id);
    await until('every event in a job', async () => (await jobsHolding(all)).length === events.length);
    const jobs = await queue.getJobs(['waiting']);
    expect(jobs.length).toBeLessThan(events.length);
    expect(jobs.some((j) => j.name === ARCHIVE_BATCH_JOB)).toBe(true);
  });

  it('a lone event is a plain archive job named by its event id', async () => {
    writer = await open('lone');
    const event = record(1);
    await writer.submit(event, 'archive');
    await until('its job', async () => (await queue.getJob(event.id)) !== undefined);
    expect((await queue.getJob(event.id))!.name).toBe('archive');
    expect(await queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
  });

  it('an event the batch split off is acknowledged by its own job, not by the batch', async () => {
    writer = await open('split');
    const events = Array.from({ length: 5 }, (_, i) => record(i));
    const bad = events[2]!;
    let releaseOwn: () => void = () => {};
    const ownMayFail = new Promise<void>((resolve) => {
      releaseOwn = resolve;
    });
    await consume(
      async (job) => {
        // As the archiver does: the split job is addressed to the batch's writer.
        await queue.add('archive', { event: bad, ackTo: job.data.ackTo }, archiveJobOptions(bad));
        return { created: job.data.events.length - 1, existing: 0, split: [bad.id] };
      },
      async () => {
        await ownMayFail;
        throw new UnrecoverableError('HOLDFAST_ERR_VALIDATION: bad');
      },
    );
    await Promise.all(events.map((e) => writer!.submit(e, 'archive')));
    try {
      await until('the rest acknowledged', () => writer!.stats().spool.unacked === 1);
      expect(writer.stats().backlog).toBe(1);
    } finally {
      releaseOwn();
    }
    // Failed for good is finished: its dead letter keeps it, and the spool lets it go.
    await until('the split event acknowledged', () => writer!.stats().backlog === 0);
    expect(await queue.getJobState(bad.id)).toBe('failed');
  });

  it('the drainer enqueues the events of a lost batch again', async () => {
    writer = await open('lost');
    const events = Array.from({ length: 8 }, (_, i) => record(i));
    await Promise.all(events.map((e) => writer!.submit(e, 'archive')));
    const all = events.map((e) => e.id);
    await until('every event in a job', async () => (await jobsHolding(all)).length === 8);
    // Redis loses them (a failover to a replica that never saw the adds).
    for (const job of await queue.getJobs(['waiting'])) await job.remove();

    const report = await writer.drain(0);
    expect(report).toMatchObject({ requeued: 8, acked: 0 });
    const again = await queue.getJob(archiveBatchJobId(all));
    expect((again!.data as ArchiveBatchJobData).events.map((e) => e.id)).toEqual(all);
    // A second pass finds that batch waiting and adds nothing.
    expect(await writer.drain(0)).toMatchObject({ requeued: 0, waiting: 8 });

    await consume(async (job) => ({ created: job.data.events.length, existing: 0, split: [] }));
    await until('every event acknowledged', () => writer!.stats().backlog === 0);
    expect(await queue.getJobCounts('completed', 'failed', 'waiting')).toEqual({
      completed: 1,
      failed: 0,
      waiting: 0,
    });
  });

  it('the drainer acknowledges a batch that finished while its completion event went unseen', async () => {
    writer = await open('unseen');
    const events = Array.from({ length: 6 }, (_, i) => record(i));
    await Promise.all(events.map((e) => writer!.submit(e, 'archive')));
    const all = events.map((e) => e.id);
    await until('every event in a job', async () => (await jobsHolding(all)).length === 6);
    const batch = (await queue.getJobs(['waiting'])).find((j) => j.name === ARCHIVE_BATCH_JOB)!;
    const inBatch = (batch.data as ArchiveBatchJobData).events.map((e) => e.id);
    const splitOff = inBatch.at(-1)!;
    // Marked finished behind this writer's back (its QueueEvents never hears of it), with one
    // event split off, as the archiver's result records it.
    const raw = new Redis(redis.url);
    await raw.hset(`${QUEUE_PREFIX}:${QUEUES.archive}:${batch.id}`, {
      finishedOn: String(Date.now()),
      returnvalue: JSON.stringify({ created: inBatch.length - 1, existing: 0, split: [splitOff] }),
    });
    raw.disconnect();

    const report = await writer.drain(0);
    expect(report.acked).toBe(inBatch.length - 1);
    expect(writer.stats().backlog).toBe(6 - report.acked);
    // The split event waits for a job of its own; none exists, so the next pass enqueues it.
    expect((await writer.drain(0)).requeued).toBe(1);
    expect((await queue.getJob(splitOff))?.name).toBe('archive');
  });

  it('the drainer acknowledges, without enqueueing again, events the archiver marked archived', async () => {
    const first = await open('marked');
    const events = Array.from({ length: 5 }, (_, i) => record(i));
    await Promise.all(events.map((e) => first.submit(e, 'archive')));
    const all = events.map((e) => e.id);
    await until('every event in a job', async () => (await jobsHolding(all)).length === 5);
    await first.close();
    // Three were archived, and their completed job has since been removed; two never ran.
    const raw = new Redis(redis.url);
    for (const e of events.slice(0, 3))
      await raw.set(archivedMarkerKey(e), JSON.stringify({ key: `k/${e.id}` }));
    // A claim in progress is not an archive.
    await raw.set(archivedMarkerKey(events[3]!), 'pending:some-job');
    raw.disconnect();
    for (const job of await queue.getJobs(['waiting'])) await job.remove();

    // Its first drain pass runs as soon as it is connected.
    writer = await open('marked');
    await until('the archived ones acknowledged', () => writer!.stats().spool.unacked === 2);
    await until('the others enqueued', async () => (await jobsHolding(all)).length === 2);
    expect((await jobsHolding(all)).sort()).toEqual(all.slice(3).sort());
    expect(await writer.drain(0)).toMatchObject({ acked: 0, requeued: 0, waiting: 2 });
  });

  it('a restarted writer acknowledges the batch its predecessor sent and the archiver already ran', async () => {
    const first = await open('ran');
    const events = Array.from({ length: 4 }, (_, i) => record(i));
    await Promise.all(events.map((e) => first.submit(e, 'archive')));
    const all = events.map((e) => e.id);
    await until('the batch', async () => (await queue.getJob(archiveBatchJobId(all))) !== undefined);
    await first.close();
    // Completed while no writer listened (its completion event is long gone).
    const raw = new Redis(redis.url);
    await raw.hset(`${QUEUE_PREFIX}:${QUEUES.archive}:${archiveBatchJobId(all)}`, {
      finishedOn: String(Date.now()),
      returnvalue: JSON.stringify({ created: 4, existing: 0, split: [] }),
    });
    raw.disconnect();

    // The restarted writer forms the same batch; adding it again does nothing, so it looks.
    writer = await open('ran');
    await until('every event acknowledged', () => writer!.stats().spool.unacked === 0);
  });

  it('a restarted writer has what its spool still holds archived and acknowledged', async () => {
    const first = await open('restart');
    const events = Array.from({ length: 4 }, (_, i) => record(i));
    await Promise.all(events.map((e) => first.submit(e, 'archive')));
    const all = events.map((e) => e.id);
    await until('every event in a job', async () => (await jobsHolding(all)).length === 4);
    await first.close();

    writer = await open('restart');
    expect(writer.stats().backlog).toBe(4);
    // It cannot know the old process's jobs: it enqueues everything again as one batch (the same
    // job when the old batch held the same events; otherwise both run, and the archiver's writes
    // are idempotent).
    await until('the batch', async () => (await queue.getJob(archiveBatchJobId(all))) !== undefined);
    await consume(async (job) => ({ created: 0, existing: job.data.events.length, split: [] }));
    await until('every event acknowledged', () => writer!.stats().backlog === 0);
  });
  it('a restarted writer enqueues again, at once, the whole of a large backlog that Redis lost', async () => {
    const first = await open('lost-backlog');
    const events = Array.from({ length: 5_000 }, (_, i) => record(i));
    await Promise.all(events.map((e) => first.submit(e, 'archive')));
    await first.close();
    const raw = new Redis(redis.url);
    await raw.flushall();
    raw.disconnect();

    // Redis is ready while the spool is still being read back; the next timed pass is a minute away.
    writer = await open('lost-backlog');
    const all = events.map((e) => e.id);
    await until('every event in a job again', async () => (await jobsHolding(all)).length === all.length);
  });

  it('close() enqueues what submits still appending when it began made durable, before it returns', async () => {
    writer = await open('closing');
    // Once an event is in a job, Redis is ready: submits enqueue at once.
    const first = record(100);
    await writer.submit(first, 'archive');
    await until('the first event in a job', async () => (await jobsHolding([first.id])).length === 1);
    const events = Array.from({ length: 5 }, (_, i) => record(i));
    // Each append waits for its fsync, so close() starts while all five are in flight.
    const submitted = Promise.all(events.map((e) => writer!.submit(e, 'archive')));
    await writer.close();
    await submitted;
    const all = [first, ...events].map((e) => e.id);
    expect((await jobsHolding(all)).sort()).toEqual(all.sort());
  });

  it('a second close() resolves only once the shutdown the first began has finished', async () => {
    writer = await open('close-twice');
    await writer.submit(record(1), 'archive');
    const first = writer.close();
    let firstDone = false;
    void first.then(() => {
      firstDone = true;
    });
    await writer.close();
    expect(firstDone).toBe(true);
    // The spool is closed and its directory free: the next writer on it opens at once.
    expect(existsSync(join(dir.path, 'close-twice', 'spool.lock'))).toBe(false);
    writer = await open('close-twice');
    expect(writer.stats().backlog).toBe(1);
  });
});
