import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ackStreamKeyOf, createLogger, loadConfig, QUEUE_PREFIX, QUEUES } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { type Job, Queue, UnrecoverableError, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  closeQueueWorker,
  createProducer,
  EventWriter,
  MAX_EVENT_BYTES,
  startQueueWorker,
} from '../src/index.ts';
import { record, until } from './record-events.ts';

const log = createLogger({ name: 'ack-stream-test', level: 'silent' });

/*
 * Workers tell the writer that added a job that it finished, on that writer's own stream. The
 * writers here run with their drainer a minute away, so an acknowledgement within a test can only
 * have come through the stream.
 */
describe('ack streams', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let raw: Redis;
  let queue: Queue;
  let writers: EventWriter[] = [];
  let worker: Worker | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    dir = await tempDir();
  });
  afterAll(async () => {
    await redis.stop();
    await dir.remove();
  });
  beforeEach(async () => {
    raw = new Redis(redis.url);
    await raw.flushall();
    queue = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
  });
  afterEach(async () => {
    if (worker) await closeQueueWorker(worker);
    worker = undefined;
    for (const w of writers.splice(0)) await w.close();
    await queue.close();
    raw.disconnect();
  });

  const open = async (name: string) => {
    const writer = await EventWriter.open({
      spoolDir: join(dir.path, name),
      redisUrl: redis.url,
      drainIntervalMs: 60_000,
      redeliverAfterMs: 60_000,
    });
    writers.push(writer);
    return writer;
  };

  /** A Holdfast queue worker standing in for the archiver. */
  const archiver = async (process: (job: Job) => Promise<unknown>) => {
    worker = (await startQueueWorker({
      queue: QUEUES.archive,
      name: 'stand-in-archiver',
      redisUrl: redis.url,
      log,
      concurrency: 4,
      retryBaseMs: 10,
      retryCapMs: 20,
      process,
    })) as Worker;
  };
  const completeAll = (job: Job) =>
    Promise.resolve(
      job.name === 'archive-batch'
        ? { created: (job.data as { events: unknown[] }).events.length, existing: 0, split: [] }
        : { created: true },
    );

  /** The job ids reported on a stream, in order (its keep-alive entries name no job). */
  const reportedJobs = async (key: string) =>
    (await raw.xrange(key, '-', '+')).flatMap(([, fields]) => {
      const at = fields.indexOf('job');
      return at >= 0 && at % 2 === 0 ? [fields[at + 1]!] : [];
    });

  it('each writer hears only of the jobs it added', async () => {
    const a = await open('a');
    const b = await open('b');
    const ofA = Array.from({ length: 20 }, (_, i) => record(i));
    const ofB = Array.from({ length: 20 }, (_, i) => record(100 + i));
    await Promise.all([...ofA.map((e) => a.submit(e, 'archive')), ...ofB.map((e) => b.submit(e, 'archive'))]);
    await archiver(completeAll);
    await until('both backlogs acknowledged', () => a.stats().backlog === 0 && b.stats().backlog === 0);

    // The completed jobs by the address they carry, with the events each holds.
    const byAddress = new Map<string, { jobs: string[]; events: string[] }>();
    for (const job of await queue.getJobs(['completed'])) {
      const data = job.data as { ackTo: string; event?: { id: string }; events?: { id: string }[] };
      const group = byAddress.get(data.ackTo) ?? { jobs: [], events: [] };
      group.jobs.push(job.id!);
      group.events.push(...(data.events ?? [data.event!]).map((e) => e.id));
      byAddress.set(data.ackTo, group);
    }
    const eventSets = [...byAddress.values()].map((g) => g.events.sort().join());
    expect(eventSets.sort()).toEqual(
      [ofA, ofB]
        .map((es) =>
          es
            .map((e) => e.id)
            .sort()
            .join(),
        )
        .sort(),
    );
    expect((await raw.keys(`${QUEUE_PREFIX}:acks:*`)).sort()).toEqual(
      [...byAddress.keys()].map(ackStreamKeyOf).sort(),
    );
    // Every job was reported once, on the stream of the writer that added it, and nowhere else.
    for (const [address, { jobs }] of byAddress)
      expect((await reportedJobs(ackStreamKeyOf(address))).sort()).toEqual(jobs.sort());
  });

  it('a job whose writer is gone is not reported anywhere: no stream is made for it', async () => {
    await archiver(completeAll);
    const event = record(1);
    await queue.add('archive', { event, ackTo: 'no-such-writer' }, { jobId: event.id });
    await until('the job completed', async () => (await queue.getJobState(event.id)) === 'completed');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await raw.exists(ackStreamKeyOf('no-such-writer'))).toBe(0);
  });

  it('a restarted writer is told of the jobs its earlier run added', async () => {
    const before = await open('restart');
    const events = Array.from({ length: 6 }, (_, i) => record(i));
    // One at a time, so each goes as a plain job of its own (job id = event id): the restarted
    // writer finds them queued and waits for them rather than enqueueing them again.
    for (const event of events) {
      await before.submit(event, 'archive');
      await until('its job enqueued', async () => (await queue.getJob(event.id)) !== undefined);
    }
    await before.close();
    writers = writers.filter((w) => w !== before);

    const after = await open('restart');
    expect(after.stats().backlog).toBe(6);
    expect(await queue.getWaitingCount()).toBe(6);
    await archiver(completeAll);
    await until('the earlier run acknowledged', () => after.stats().backlog === 0);
    expect(after.stats().spool.unacked).toBe(0);
  });

  it('a job is reported once its work is done, before it is marked completed: a crash in between loses no ack', async () => {
    const writer = await open('before-completion');
    const event = record(1);
    // The worker loses the job's lock as the work finishes, so BullMQ cannot mark it completed:
    // what a worker killed between the work and the completion leaves behind.
    await archiver(async (job) => {
      await raw.del(`${QUEUE_PREFIX}:${QUEUES.archive}:${job.id}:lock`);
      return { created: true };
    });
    await writer.submit(event, 'archive');
    await until('the event acknowledged', () => writer.stats().backlog === 0);
    expect(await queue.getJobState(event.id)).not.toBe('completed');
  });

  it('a job is reported when it failed for good, not when a failed attempt will be retried', async () => {
    const writer = await open('failures');
    const flaky = record(1);
    const broken = record(2);
    let flakyCalls = 0;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    await archiver(async (job) => {
      if (job.id === broken.id) throw new UnrecoverableError('HOLDFAST_ERR_VALIDATION: broken');
      flakyCalls++;
      if (flakyCalls === 1) throw new Error('store unavailable');
      await released;
      return { created: true };
    });
    // One at a time, so each goes as a plain job of its own.
    await writer.submit(flaky, 'archive');
    await until('the flaky job enqueued', async () => (await queue.getJob(flaky.id)) !== undefined);
    await writer.submit(broken, 'archive');

    try {
      // Its spool ack is written after the writer drops it from its backlog: wait for both.
      await until(
        'the broken event acknowledged',
        () => writer.stats().backlog === 1 && writer.stats().spool.unacked === 1,
      );
      await until('the flaky job retried', () => flakyCalls === 2);
      expect(writer.stats().spool.unacked).toBe(1);
      const key = ackStreamKeyOf((await queue.getJob(flaky.id))!.data.ackTo);
      expect(await reportedJobs(key)).toEqual([broken.id]);

      release();
      await until('the flaky event acknowledged', () => writer.stats().backlog === 0);
      expect(await reportedJobs(key)).toEqual([broken.id, flaky.id]);
    } finally {
      release();
    }
  });

  it('a fail-closed message whose archive write failed for good is reported: its send failed with it', async () => {
    let stopSender = async () => {};
    const producer = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'fail-closed'),
      channels: loadConfig({}).channels,
      drainIntervalMs: 60_000,
      redeliverAfterMs: 60_000,
    });
    try {
      await archiver(async () => {
        throw new UnrecoverableError('HOLDFAST_ERR_ARCHIVE_CONFLICT: a different object is at the key');
      });
      let sends = 0;
      const sender = await startQueueWorker({
        queue: QUEUES.sendEmail,
        name: 'stand-in-sender',
        redisUrl: redis.url,
        log,
        concurrency: 1,
        process: async () => {
          sends++;
        },
      });
      stopSender = () => closeQueueWorker(sender as Worker);
      const { id } = await producer.sendEmail({
        from: 'a@acme.example',
        to: 'b@customer.example',
        subject: 'hi',
        text: 'hello',
      });
      // The send worker fails the parent without running it, and reports it like any other failure.
      await until('the email acknowledged', () => producer.stats().backlog === 0);
      const sendQueue = new Queue(QUEUES.sendEmail, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
      try {
        expect(await sendQueue.getJobState(id)).toBe('failed');
      } finally {
        await sendQueue.close();
      }
      expect(sends).toBe(0);
    } finally {
      await stopSender();
      await producer.close();
    }
  });

  // A real write failure: the event fills its segment, so the ack needs a new one, and a directory
  // stands where that segment's file would go. The spool then refuses writes until reopened.
  it('an event whose spool ack failed stays pending: the drainer still sees it and the job it waits for', async () => {
    const spoolDir = join(dir.path, 'ack-fails');
    const writer = await open('ack-fails');
    const small = record(1);
    const unpadded = Buffer.byteLength(JSON.stringify({ route: 'archive', event: small }));
    // Its spool record (`,"pad":"…"` adds 9 bytes and the pad) ends 17 bytes short of the cap, which
    // is also a segment's size: the segment has no room left for an ack record (about 60 bytes).
    const pad = 'p'.repeat(MAX_EVENT_BYTES - 17 - 9 - unpadded);
    const event = { ...small, data: { ...small.data, pad } };
    await mkdir(join(spoolDir, 'segments', '0000000000000002.log'));
    await writer.submit(event, 'archive');
    await until('its job', async () => (await queue.getJobCounts('waiting')).waiting === 1);

    // Its job reported done, as a worker reports it.
    const [stream] = await raw.keys(`${QUEUE_PREFIX}:acks:*`);
    await raw.xadd(stream!, '*', 'queue', QUEUES.archive, 'job', event.id);
    await until('the ack refused', () => writer.stats().spool.failed);
    expect(writer.stats()).toMatchObject({ backlog: 1, spool: { unacked: 1 } });
    expect(await writer.drain(0)).toMatchObject({ waiting: 1, acked: 0 });
  });
});

describe('ack streams while Redis is away', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  beforeEach(async () => {
    redis = await startRedis();
    dir = await tempDir();
  });
  afterEach(async () => {
    await redis.stop();
    await dir.remove();
  });

  // Its read was queued on a connection that is reconnecting; cutting that connection does not
  // settle it. A service told to stop during an outage must still stop.
  it('a writer closes while Redis is down, its read of the stream still pending', {
    timeout: 20_000,
  }, async () => {
    const writer = await EventWriter.open({
      spoolDir: dir.path,
      redisUrl: redis.url,
      drainIntervalMs: 60_000,
    });
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Accepted during the outage: spooled, its enqueue left to the drainer.
    await writer.submit(record(1), 'archive');
    await writer.close();
    const reopened = await EventWriter.open({
      spoolDir: dir.path,
      redisUrl: redis.url,
      drainIntervalMs: 60_000,
    });
    try {
      expect(reopened.stats().spool.unacked).toBe(1);
    } finally {
      await reopened.close();
    }
  });
});
