import { join } from 'node:path';
import {
  ARCHIVE_BATCH_JOB,
  type ArchiveBatchJobData,
  createLogger,
  type EventEnvelope,
  newEventId,
  QUEUE_PREFIX,
  QUEUES,
} from '@holdfast/core';
import { Spool } from '@holdfast/spool';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { type Job, Queue, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  closeQueueWorker,
  EventWriter,
  holdfastMetrics,
  observeSpool,
  startQueueWorker,
} from '../src/index.ts';
import { record, until } from './record-events.ts';

const log = createLogger({ name: 'event-writer-undecodable-test', level: 'silent' });

/** Stands for a message body: it must never reach a log line. */
const BODY = 'confidential-body-7f3a91';

/*
 * A spool record that cannot be read back as an event (written by an older version, or by a bug)
 * must neither keep the producer from starting nor stop the drainer: it is skipped, kept in the
 * spool unacknowledged, logged without its body and counted. A real EventWriter, spool and Redis.
 */
describe('EventWriter undecodable spool records', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
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
    const raw = new Redis(redis.url);
    await raw.flushall();
    raw.disconnect();
    queue = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
  });
  afterEach(async () => {
    if (worker) await closeQueueWorker(worker);
    worker = undefined;
    for (const w of writers.splice(0)) await w.close();
    await queue.close();
  });

  /** A writer whose log lines the test reads. */
  const open = async (spoolDir: string) => {
    const lines: { level: number; eventId?: string; msg: string }[] = [];
    const logger = createLogger(
      { name: 'undecodable-test', level: 'debug' },
      { write: (line: string) => void lines.push(JSON.parse(line)) },
    );
    const writer = await EventWriter.open({ spoolDir, redisUrl: redis.url, drainIntervalMs: 60_000, logger });
    writers.push(writer);
    return { writer, lines, errors: () => lines.filter((l) => l.level >= 50) };
  };

  /** A stand-in archiver (a Holdfast queue worker) that completes every archive job. */
  const archive = async () => {
    worker = (await startQueueWorker({
      queue: QUEUES.archive,
      name: 'stand-in-archiver',
      redisUrl: redis.url,
      log,
      concurrency: 4,
      process: async (job: Job) =>
        job.name === ARCHIVE_BATCH_JOB
          ? { created: (job.data as ArchiveBatchJobData).events.length, existing: 0, split: [] }
          : { created: true },
    })) as Worker;
  };

  /** The ids of `ids` that some waiting archive job carries. */
  const inJobs = async (ids: readonly string[]) => {
    const wanted = new Set(ids);
    return (await queue.getJobs(['waiting']))
      .flatMap((job) =>
        job.name === ARCHIVE_BATCH_JOB
          ? (job.data as ArchiveBatchJobData).events.map((e) => e.id)
          : [job.id!],
      )
      .filter((id) => wanted.has(id));
  };

  it('a writer opens over records it cannot decode: skips, keeps, logs without the body and counts them, and delivers the rest', async () => {
    const spoolDir = join(dir.path, 'open');
    const good = [record(1), record(2), record(3)];
    const bad = {
      // Cut off mid-write by a bug: a JSON parser's message would quote the text.
      notJson: [newEventId(), `{"route":"archive","event":{"data":{"text":"${BODY}`],
      // An event an older version wrote that today's schema refuses.
      invalid: [newEventId(), JSON.stringify({ route: 'archive', event: { ...record(4), data: BODY } })],
      unknownRoute: [newEventId(), JSON.stringify({ route: BODY, event: record(5) })],
    } as const;
    const spool = await Spool.open({ dir: spoolDir });
    const entries = [
      [good[0]!.id, JSON.stringify({ route: 'archive', event: good[0] })],
      bad.notJson,
      [good[1]!.id, JSON.stringify({ route: 'archive', event: good[1] })],
      bad.invalid,
      bad.unknownRoute,
      [good[2]!.id, JSON.stringify({ route: 'archive', event: good[2] })],
    ] as const;
    for (const [id, text] of entries) await spool.append(id, Buffer.from(text));
    await spool.close();
    const badIds = Object.values(bad).map(([id]) => id);

    const { writer, lines, errors } = await open(spoolDir);
    expect(writer.stats()).toMatchObject({ backlog: 3, undecodable: 3, spool: { unacked: 6 } });
    expect(
      errors()
        .map((l) => l.eventId)
        .sort(),
    ).toEqual([...badIds].sort());
    expect(JSON.stringify(lines)).not.toContain(BODY);
    const metrics = holdfastMetrics();
    const stop = observeSpool(metrics, 'tester', writer);
    expect(await metrics.registry.metrics()).toMatch(/holdfast_spool_undecodable\{service="tester"\} 3\n/);
    stop();

    await archive();
    await until('the others delivered and acknowledged', () => writer.stats().backlog === 0);
    expect(writer.stats().spool.unacked).toBe(3);
    await writer.close();
    writers = [];

    // Still there for a person after the next start, which opens as well.
    const again = await open(spoolDir);
    expect(again.writer.stats()).toMatchObject({ backlog: 0, undecodable: 3, spool: { unacked: 3 } });
    expect(again.errors()).toHaveLength(3);
  });

  it('a drain pass skips a record it cannot decode, logging it once without its body, and enqueues the rest again', async () => {
    const { writer, lines, errors } = await open(join(dir.path, 'drain'));
    // Once an event is in a job, Redis is ready: submits enqueue at once, not through a drain pass.
    const first = record(0);
    await writer.submit(first, 'archive');
    await until('the first event in a job', async () => (await inJobs([first.id])).length === 1);
    // Validated as an object, encoded as a string: submit does not parse what it spools (a
    // producer's validation is what keeps this from happening through its API).
    const bad = { ...record(1), data: { toJSON: () => BODY } } as unknown as EventEnvelope;
    const events = [first, bad, record(2), record(3)];
    for (const event of events.slice(1)) await writer.submit(event, 'archive');
    const all = events.map((e) => e.id);
    await until('every event in a job', async () => (await inJobs(all)).length === all.length);
    // Redis loses them (a failover to a replica that never saw the adds).
    for (const job of await queue.getJobs(['waiting'])) await job.remove();

    const report = await writer.drain(0);
    expect(report.requeued).toBe(3);
    const good = all.filter((id) => id !== bad.id);
    expect((await inJobs(all)).sort()).toEqual(good.sort());
    expect(writer.stats().undecodable).toBe(1);
    expect(errors().map((l) => l.eventId)).toEqual([bad.id]);
    // The next pass skips it again, quietly; it stays in the spool.
    await writer.drain(0);
    expect(errors()).toHaveLength(1);
    expect(JSON.stringify(lines)).not.toContain(BODY);
    await archive();
    await until('the others acknowledged', () => writer.stats().spool.unacked === 1);
  });
});
