import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type EventEnvelope, newEvent, newEventId, QUEUE_PREFIX, QUEUES } from '@holdfast/core';
import { composeEmail, type RecordInput, validateEmail } from '@holdfast/producer';
import { LocalWormStore } from '@holdfast/worm-store';
import { FlowProducer, Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { type BenchFleet, startBenchFleet } from './bench-fleet.ts';
import { type CpuCost, countCpu } from './cpu.ts';
import { round } from './figures.ts';
import { fileCreateFloor } from './file-create-floor.ts';
import type { LatencySummary } from './histogram.ts';
import { type ClosedLoopResult, closedLoop, sleep, until } from './load.ts';
import { RssSampler, type RssStats } from './rss.ts';
import type { BenchContext } from './types.ts';

/** Concurrent callers of the SDK (request handlers of the application), same for the baselines. */
export const SUBMIT_CONCURRENCY = 64;
/** The archiver's and sender's default concurrency; the raw BullMQ workers get the same. */
export const ARCHIVER_CONCURRENCY = 16;
export const SENDER_CONCURRENCY = 8;
/** Give up when nothing completes for this long (a stuck pipeline, not a slow one). */
const STALL_MS = 60_000;

const MEMO = 'x'.repeat(600);

/** A ~1 KiB financial transaction record, as an application would record it. */
export function recordInput(i: number): RecordInput {
  return {
    category: 'financial-transaction',
    type: 'transaction.posted',
    subject: `acct-${i % 997}`,
    data: recordData(i),
  };
}

const recordData = (i: number) => ({ amount: `${(i % 100_000) / 100}`, currency: 'USD', seq: i, memo: MEMO });

/** The same event the producer would build, for the raw BullMQ baseline's job payload. */
function rawEvent(i: number) {
  return newEvent({
    type: 'transaction.posted',
    occurredAt: new Date(),
    project: 'bench',
    channel: 'record',
    direction: 'internal',
    subject: `acct-${i % 997}`,
    category: 'financial-transaction',
    data: recordData(i),
  });
}

export function emailInput(i: number) {
  return {
    from: 'Acme Alerts <alerts@acme.example>',
    to: [`customer-${i % 997}@customer.example`],
    subject: `Your statement #${i}`,
    text: `Hello,\n\nyour statement ${i} is ready.\n\n${MEMO}\n`,
    html: `<p>Hello,</p><p>your statement ${i} is ready.</p><p>${MEMO}</p>`,
    metadata: { ticket: `T-${i}` },
  };
}

/** Redis commands by name: calls and server CPU (µs), from INFO commandstats. */
async function redisCommandStats(url: string): Promise<Map<string, { calls: number; usec: number }>> {
  const client = new Redis(url);
  try {
    const text = await client.info('commandstats');
    const out = new Map<string, { calls: number; usec: number }>();
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
      out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    }
    return out;
  } finally {
    client.disconnect();
  }
}

export interface RedisCost {
  commandsPerItem: number;
  /** Redis server CPU per item, in µs (its own accounting of command execution). */
  redisUsecPerItem: number;
  /** Calls per item of every command called at least once per 100 items (script-internal ones included). */
  commandsPerItemByName: Record<string, number>;
}

/** What one item cost Redis between two snapshots. */
function redisCost(
  before: Map<string, { calls: number; usec: number }>,
  after: Map<string, { calls: number; usec: number }>,
  items: number,
): RedisCost {
  let calls = 0;
  let usec = 0;
  const per: [string, number, number][] = [];
  for (const [name, a] of after) {
    const b = before.get(name) ?? { calls: 0, usec: 0 };
    calls += a.calls - b.calls;
    usec += a.usec - b.usec;
    if (name !== 'info') per.push([name, a.calls - b.calls, a.usec - b.usec]);
  }
  per.sort((x, y) => y[1] - x[1]);
  return {
    commandsPerItem: round(calls / items, 2),
    redisUsecPerItem: round(usec / items, 1),
    commandsPerItemByName: Object.fromEntries(
      per.filter(([, c]) => c / items >= 0.01).map(([n, c]) => [n, round(c / items, 2)]),
    ),
  };
}

export interface ThroughputRun {
  count: number;
  /** From the first call until the last call resolved. */
  submitPerSecond: number;
  submitMs: number;
  /** From the first call until the last event was fully handled downstream. */
  endToEndPerSecond: number;
  endToEndMs: number;
  /** Latency of each call as its caller saw it. */
  callLatency: LatencySummary;
  failed: number;
  firstError?: string;
  redis?: RedisCost;
  /** CPU per item of every process taking part (the bench process, the workers, redis-server). */
  cpu?: CpuCost;
}

export interface ProgressPoint {
  atMs: number;
  submitted: number;
  handled: number;
}

export interface PipelineRun {
  holdfast: ThroughputRun & {
    /** Throughput between successive tenths of the events (archive growing as it goes). */
    windows: { fromEvent: number; toEvent: number; perSecond: number }[];
    spool: { appends: number; acks: number; fsyncs: number; recordsPerFsync: number };
    verified: { sampled: number; found: number };
  };
  baseline?: ThroughputRun;
  /** With the baseline: the disk's bare rate for the store's per-version file work, just before the run. */
  diskFileCreates?: { perSecond: number; objects: number };
  rssIdle: Record<string, RssStats>;
  rssLoad: Record<string, RssStats>;
}

function throughput(load: ClosedLoopResult, endToEndMs: number, count: number): ThroughputRun {
  return {
    count,
    submitPerSecond: round(load.done / (load.elapsedMs / 1000), 0),
    submitMs: round(load.elapsedMs, 0),
    endToEndPerSecond: round(count / (endToEndMs / 1000), 0),
    endToEndMs: round(endToEndMs, 0),
    callLatency: load.latency.summary(),
    failed: load.failed,
    ...(load.firstError ? { firstError: load.firstError } : {}),
  };
}

/**
 * Closed-loop load through `submit`, and the time until `handled()` reaches the count: the
 * end-to-end rate counts only work that finished downstream, not work merely accepted.
 */
async function drive(
  count: number,
  submit: (i: number) => Promise<unknown>,
  handled: () => number | Promise<number>,
  onProgress?: (point: ProgressPoint) => void,
): Promise<{ load: ClosedLoopResult; endToEndMs: number }> {
  const started = performance.now();
  let submitted = 0;
  let lastHandled = -1;
  let lastChange = started;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const h = await handled();
      const now = performance.now();
      if (h !== lastHandled) {
        lastHandled = h;
        lastChange = now;
      }
      onProgress?.({ atMs: now - started, submitted, handled: h });
      await sleep(100);
    }
  })();
  const load = await closedLoop(count, SUBMIT_CONCURRENCY, async (i) => {
    await submit(i);
    submitted++;
  });
  if (load.failed > 0) {
    sampling = false;
    await sampler;
    throw new Error(`${load.failed} of ${count} submits failed: ${load.firstError}`);
  }
  await until(
    'the pipeline to finish',
    async () => {
      if (performance.now() - lastChange > STALL_MS) {
        throw new Error(`no progress for ${STALL_MS / 1000} s (${lastHandled}/${count} handled)`);
      }
      return (await handled()) >= count;
    },
    Number.POSITIVE_INFINITY,
    10,
  );
  const endToEndMs = performance.now() - started;
  sampling = false;
  await sampler;
  onProgress?.({ atMs: endToEndMs, submitted, handled: count });
  return { load, endToEndMs };
}

/**
 * Counts completions of a queue's jobs from its QueueEvents stream, like the producer's own
 * acknowledgement listener. With `ids`, only jobs this run submitted count, once each: a
 * completion can arrive before the submit call returned its id, and a job the spool drainer
 * re-enqueued must not count twice.
 */
async function completionCounter(url: string, queue: string, prefix: string) {
  // From the start of the (capped) event stream: a listener starting at "$" misses whatever
  // completes between its connection and its first XREAD. Old entries are not ours, so they
  // do not count.
  const events = new QueueEvents(queue, { connection: { url }, prefix, lastEventId: '0-0' });
  const submitted = new Set<string>();
  const early = new Set<string>();
  const done = new Set<string>();
  events.on('completed', ({ jobId }) => {
    if (done.has(jobId)) return;
    if (submitted.has(jobId)) done.add(jobId);
    else early.add(jobId);
  });
  await events.waitUntilReady();
  return {
    /** Completions of jobs passed to `submitted`. */
    handled: () => done.size,
    submitted(id: string) {
      if (early.delete(id)) done.add(id);
      else submitted.add(id);
    },
    close: () => events.close(),
  };
}

/**
 * Waits until the Holdfast queues are empty (the sender's own `message.sent` events archived
 * too), so one measurement does not inherit the tail of the previous one.
 */
async function settle(fleet: BenchFleet, what: string): Promise<void> {
  const queues = [QUEUES.archive, QUEUES.sendEmail].map(
    (name) => new Queue(name, { connection: { url: fleet.redis.url }, prefix: QUEUE_PREFIX }),
  );
  try {
    await until(
      what,
      async () => {
        for (const q of queues) {
          const c = await q.getJobCounts('waiting', 'active', 'delayed', 'waiting-children', 'prioritized');
          if (Object.values(c).some((n) => n > 0)) return false;
        }
        return true;
      },
      120_000,
      100,
    );
  } finally {
    await Promise.all(queues.map((q) => q.close()));
  }
}

function windowsOf(points: ProgressPoint[], count: number) {
  const out: { fromEvent: number; toEvent: number; perSecond: number }[] = [];
  const step = Math.max(1, Math.floor(count / 10));
  const timeAt = (n: number) => points.find((p) => p.handled >= n)?.atMs;
  for (let from = 0; from + step <= count; from += step) {
    const t0 = from === 0 ? 0 : timeAt(from);
    const t1 = timeAt(from + step);
    if (t0 === undefined || t1 === undefined || t1 <= t0) continue;
    out.push({ fromEvent: from, toEvent: from + step, perSecond: round(step / ((t1 - t0) / 1000), 0) });
  }
  return out;
}

async function verifySample(storeDir: string, keys: string[]): Promise<{ sampled: number; found: number }> {
  const store = await LocalWormStore.open({ dir: storeDir });
  try {
    let found = 0;
    const step = Math.max(1, Math.floor(keys.length / 50));
    let sampled = 0;
    for (let i = 0; i < keys.length; i += step) {
      sampled++;
      if (await store.head(keys[i]!)) found++;
    }
    return { sampled, found };
  } finally {
    await store.close();
  }
}

async function idleRss(fleet: BenchFleet, ms: number): Promise<Record<string, RssStats>> {
  const sampler = new RssSampler(fleet.pids()).start();
  await sleep(ms);
  return sampler.stop();
}

/**
 * Scenario 2's measurement (shared with 5 and 6): `record()` -> spooled -> archived in the local
 * WORM store for `count` events, and, when asked, raw BullMQ (add + no-op worker) on the same
 * Redis with the same concurrency, just before it.
 */
export async function measureRecords(
  ctx: BenchContext,
  count: number,
  withBaseline: boolean,
): Promise<PipelineRun> {
  const fleet = await startBenchFleet({ services: ['archiver', 'sender'], profileDir: ctx.profileDir });
  try {
    const warm = ctx.quick ? 100 : 1000;
    ctx.log(`records ${count}: warm-up (${warm} events)`);
    await closedLoop(warm, SUBMIT_CONCURRENCY, (i) => fleet.producer.record(recordInput(i)));
    await settle(fleet, 'the warm-up to be archived');
    const rssIdle = await idleRss(fleet, ctx.quick ? 500 : 3000);

    let baseline: ThroughputRun | undefined;
    if (withBaseline) {
      ctx.log(`records ${count}: raw BullMQ baseline`);
      baseline = await rawBullmq(fleet, count, warm);
    }
    const floor = withBaseline
      ? await fileCreateFloor(join(fleet.dir, 'file-create-floor'), ctx.quick ? 0.5 : 2)
      : undefined;

    ctx.log(`records ${count}: Holdfast record() -> spool -> archive`);
    const before = fleet.producer.stats().spool;
    const sampler = new RssSampler(fleet.pids()).start();
    const points: ProgressPoint[] = [];
    const keys: string[] = [];
    let lastLog = 0;
    // Done means archived and acknowledged: the producer has let the event go from its spool.
    // (Records travel in archive-batch jobs, so job completions do not name their events.)
    const archived = () => fleet.producer.stats().spool.acks - before.acks;
    const redisBefore = await redisCommandStats(fleet.redis.url);
    const cpu = countCpu(fleet.pids());
    const { load, endToEndMs } = await drive(
      count,
      async (i) => {
        const accepted = await fleet.producer.record(recordInput(i));
        keys.push(accepted.archiveKey);
      },
      archived,
      (p) => {
        points.push(p);
        if (p.atMs - lastLog > 10_000) {
          lastLog = p.atMs;
          ctx.log(`  ${Math.round(p.atMs / 1000)} s: ${p.submitted} submitted, ${p.handled} archived`);
        }
      },
    );
    const rssLoad = sampler.stop();
    const cpuCost = cpu.stop(count);
    const redis = redisCost(redisBefore, await redisCommandStats(fleet.redis.url), count);
    // Not timed: let the producer acknowledge the last events, so the spool counters are whole.
    await until('the producer to acknowledge', () => fleet.producer.stats().backlog === 0, 30_000).catch(
      () => {},
    );
    const after = fleet.producer.stats().spool;
    const spool = {
      appends: after.appends - before.appends,
      acks: after.acks - before.acks,
      fsyncs: after.fsyncs - before.fsyncs,
      recordsPerFsync: round(
        (after.appends + after.acks - before.appends - before.acks) / (after.fsyncs - before.fsyncs),
      ),
    };
    const verified = await verifySample(fleet.storeDir, keys);
    if (verified.found !== verified.sampled) {
      throw new Error(`only ${verified.found} of ${verified.sampled} sampled archive keys are in the store`);
    }
    return {
      holdfast: {
        ...throughput(load, endToEndMs, count),
        redis,
        cpu: cpuCost,
        windows: windowsOf(points, count),
        spool,
        verified,
      },
      baseline,
      ...(floor ? { diskFileCreates: floor } : {}),
      rssIdle,
      rssLoad,
    };
  } finally {
    await fleet.close();
  }
}

async function rawBullmq(fleet: BenchFleet, count: number, warm: number): Promise<ThroughputRun> {
  const prefix = 'bench';
  const url = fleet.redis.url;
  const worker = await fleet.startNoop(
    'raw-worker',
    [{ queue: 'raw', concurrency: ARCHIVER_CONCURRENCY }],
    prefix,
  );
  const queue = new Queue('raw', { connection: { url }, prefix });
  const completed = await completionCounter(url, 'raw', prefix);
  // Same payload and job options as the archive jobs Holdfast enqueues, so the ratio shows
  // Holdfast's own work, not a difference in what BullMQ is asked to do.
  const add = async (i: number) => {
    const jobId = newEventId();
    await queue.add(
      'noop',
      { event: rawEvent(i) },
      {
        jobId,
        removeOnComplete: { age: 24 * 3600, count: 10_000 },
        removeOnFail: false,
      },
    );
    completed.submitted(jobId);
  };
  try {
    await closedLoop(warm, SUBMIT_CONCURRENCY, add);
    await until('the raw warm-up', () => completed.handled() >= warm, 60_000);
    const base = completed.handled();
    const redisBefore = await redisCommandStats(url);
    const cpu = countCpu({ ...fleet.pids(), 'raw-worker': worker.pid });
    const { load, endToEndMs } = await drive(count, add, () => completed.handled() - base);
    const cpuCost = cpu.stop(count);
    const redis = redisCost(redisBefore, await redisCommandStats(url), count);
    return { ...throughput(load, endToEndMs, count), redis, cpu: cpuCost };
  } finally {
    await completed.close();
    await queue.close();
    await worker.stop();
  }
}

export interface EmailRun {
  holdfast: ThroughputRun & { outboxFiles: number };
  baseline: ThroughputRun;
  /** The disk's bare rate for the store's per-version file work, just before the Holdfast run. */
  diskFileCreates: { perSecond: number; objects: number };
}

/**
 * Scenario 3: `sendEmail` -> spooled -> archived (.eml + sidecar) -> sent to the outbox, against
 * a raw BullMQ flow (one parent, one child, no-op workers in two processes, as the archiver and
 * sender are) on the same Redis with the same concurrency.
 */
export async function measureEmail(ctx: BenchContext, count: number): Promise<EmailRun> {
  const fleet = await startBenchFleet({ services: ['archiver', 'sender'], profileDir: ctx.profileDir });
  try {
    const warm = ctx.quick ? 50 : 500;
    ctx.log(`email ${count}: warm-up (${warm} emails)`);
    await closedLoop(warm, SUBMIT_CONCURRENCY, (i) => fleet.producer.sendEmail(emailInput(i)));
    await settle(fleet, 'the warm-up to be sent');

    ctx.log(`email ${count}: raw BullMQ flow baseline`);
    const baseline = await rawFlow(fleet, count, warm);
    // Each email archives four versions (the .eml, its sidecar, two outcome events): which state
    // the disk was in says how much of the run's cost was the kernel's.
    const diskFileCreates = await fileCreateFloor(join(fleet.dir, 'file-create-floor'), ctx.quick ? 0.5 : 2);

    ctx.log(`email ${count}: Holdfast sendEmail -> spool -> archive -> send`);
    let lastLog = 0;
    const sent = await completionCounter(fleet.redis.url, QUEUES.sendEmail, QUEUE_PREFIX);
    const redisBefore = await redisCommandStats(fleet.redis.url);
    const cpu = countCpu(fleet.pids());
    const { load, endToEndMs } = await drive(
      count,
      async (i) => {
        const accepted = await fleet.producer.sendEmail(emailInput(i));
        sent.submitted(accepted.id);
      },
      sent.handled,
      (p) => {
        if (p.atMs - lastLog > 10_000) {
          lastLog = p.atMs;
          ctx.log(`  ${Math.round(p.atMs / 1000)} s: ${p.submitted} submitted, ${p.handled} sent`);
        }
      },
    );
    const cpuCost = cpu.stop(count);
    const redis = redisCost(redisBefore, await redisCommandStats(fleet.redis.url), count);
    await sent.close();
    const outboxFiles = (await readdir(join(fleet.outboxDir))).filter((n) => n.endsWith('.eml')).length;
    if (outboxFiles < count + warm) {
      throw new Error(`outbox holds ${outboxFiles} emails, expected ${count + warm}`);
    }
    return {
      holdfast: { ...throughput(load, endToEndMs, count), redis, cpu: cpuCost, outboxFiles },
      baseline,
      diskFileCreates,
    };
  } finally {
    await fleet.close();
  }
}

/** An email event like the producer builds (same MIME size), with a fresh id per job. */
async function emailEventFactory(): Promise<(i: number) => EventEnvelope> {
  const now = new Date();
  const email = validateEmail(emailInput(0));
  const composed = await composeEmail(email, newEventId(), now);
  return () =>
    newEvent({
      type: 'message.submitted',
      occurredAt: now,
      project: 'bench',
      channel: 'email',
      direction: 'outbound',
      subject: 'bench',
      category: 'email-transactional',
      data: {
        ...composed,
        headers: { from: email.from[0]!, to: email.to, cc: [], bcc: [], subject: email.subject },
        kind: email.kind,
        failMode: 'closed',
        metadata: email.metadata,
      },
    });
}

async function rawFlow(fleet: BenchFleet, count: number, warm: number): Promise<ThroughputRun> {
  const prefix = 'bench';
  const emailEvent = await emailEventFactory();
  const url = fleet.redis.url;
  const child = await fleet.startNoop(
    'raw-child-worker',
    [{ queue: 'raw-archive', concurrency: ARCHIVER_CONCURRENCY }],
    prefix,
  );
  const parent = await fleet.startNoop(
    'raw-parent-worker',
    [{ queue: 'raw-send', concurrency: SENDER_CONCURRENCY }],
    prefix,
  );
  const flows = new FlowProducer({ connection: { url }, prefix });
  const completed = await completionCounter(url, 'raw-send', prefix);
  const keep = { removeOnComplete: { age: 24 * 3600, count: 10_000 }, removeOnFail: false };
  const add = async (i: number) => {
    const event = emailEvent(i);
    const jobId = newEventId();
    await flows.add({
      name: 'send',
      queueName: 'raw-send',
      data: { event },
      opts: { jobId, ...keep },
      children: [{ name: 'archive', queueName: 'raw-archive', data: { event }, opts: { jobId, ...keep } }],
    });
    completed.submitted(jobId);
  };
  try {
    await closedLoop(warm, SUBMIT_CONCURRENCY, add);
    await until('the raw flow warm-up', () => completed.handled() >= warm, 60_000);
    const base = completed.handled();
    const redisBefore = await redisCommandStats(url);
    const cpu = countCpu({ ...fleet.pids(), 'raw-child-worker': child.pid, 'raw-parent-worker': parent.pid });
    const { load, endToEndMs } = await drive(count, add, () => completed.handled() - base);
    const cpuCost = cpu.stop(count);
    const redis = redisCost(redisBefore, await redisCommandStats(url), count);
    return { ...throughput(load, endToEndMs, count), redis, cpu: cpuCost };
  } finally {
    await completed.close();
    await flows.close();
    await parent.stop();
    await child.stop();
  }
}
