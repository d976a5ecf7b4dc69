import { join } from 'node:path';
import {
  type ArchiveJobData,
  createLogger,
  type EventEnvelope,
  loadConfig,
  newEvent,
  QUEUE_PREFIX,
  QUEUES,
  RetentionPolicy,
} from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore, type ObjectStore } from '@holdfast/worm-store';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type ArchiverHandle,
  clearPause,
  countEvent,
  type EmailPause,
  listPauses,
  pauseEmail,
  pauseKey,
  REPUTATION_ACTOR,
  type ReputationThresholds,
  readPause,
  reputationOf,
  start,
} from '../src/index.ts';

const logger = createLogger({ name: 'test', level: 'silent' });
const policy = RetentionPolicy.defaults();
const HOUR = 3_600_000;
/** Small minSends keeps each case at a few dozen archive jobs; the rates are SES's defaults. */
const MIN_SENDS = 20;
const thresholds: ReputationThresholds = {
  bounceRate: 0.05,
  complaintRate: 0.001,
  windowHours: 24,
  minSends: MIN_SENDS,
};

let seq = 0;
const nextId = () => `0100019a-${String(++seq).padStart(6, '0')}-${Math.random().toString(36).slice(2, 10)}`;

/** The sender's own record of a message handed to SES. */
function sent(project: string, providerMessageId = nextId(), at = new Date()): EventEnvelope {
  return newEvent({
    type: 'message.sent',
    occurredAt: at,
    project,
    channel: 'email',
    direction: 'outbound',
    subject: `msg-${providerMessageId}`,
    category: 'email-transactional',
    data: { transport: 'ses', providerMessageId, attempt: 1 },
  });
}

/** What ingest makes of an SES Bounce / Complaint notification. */
function sesEvent(
  project: string,
  kind: 'Bounce' | 'Complaint',
  providerMessageId: string,
  options: { permanent?: boolean; recipient?: string; at?: Date } = {},
): EventEnvelope {
  const at = options.at ?? new Date();
  const recipient = options.recipient ?? 'someone@example.net';
  return newEvent({
    type: kind === 'Bounce' ? 'message.bounced' : 'message.complained',
    occurredAt: at,
    project,
    channel: 'email',
    direction: 'outbound',
    subject: `email:${providerMessageId}`,
    category: 'email-transactional',
    data: {
      sesType: kind,
      recipients: [recipient],
      ...(kind === 'Bounce' ? { permanent: options.permanent ?? true } : {}),
      provider: 'ses',
      providerEventId: `${providerMessageId}:${kind}:${at.toISOString()}:${recipient}`,
      providerMessageId,
    },
  });
}

async function readJson(store: ObjectStore, key: string): Promise<Record<string, unknown>> {
  return JSON.parse(Buffer.from((await store.get(key)).body).toString('utf8'));
}

/** Operator actions (audit-log-admin records) of one type. */
async function operatorActions(store: ObjectStore, type: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const o of store.list('records/audit-log-admin/')) {
    const value = await readJson(store, o.key);
    if (value.type === type) out.push({ ...value, key: o.key });
  }
  return out;
}

describe('reputation pause for outbound email (real archiver, real Redis, local WORM store)', () => {
  let redis: TestRedis;
  let client: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let store: LocalWormStore;
  let queue: Queue<ArchiveJobData>;
  let archiver: ArchiverHandle | undefined;

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
  });
  beforeEach(async () => {
    await client.flushall();
    dir = await tempDir('holdfast-reputation-');
    store = await LocalWormStore.open({ dir: join(dir.path, 'store') });
    queue = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
  });
  afterEach(async () => {
    await archiver?.close();
    archiver = undefined;
    await queue.close();
    await store.close();
    await dir.remove();
  });

  const startArchiver = async () => {
    await archiver?.close();
    const config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'unused')}`,
      HOLDFAST_LOG_LEVEL: 'silent',
      HOLDFAST_METRICS_PORT: '0',
      HOLDFAST_REPUTATION_MIN_SENDS: String(MIN_SENDS),
    });
    expect(config.reputation).toEqual(thresholds);
    archiver = await start(config, { store, policy, logger, retryBaseMs: 50, retryCapMs: 200 });
    return archiver;
  };

  /** Enqueue as the producer does (jobId = event id) and wait until every job completed. */
  const archive = async (events: EventEnvelope[], jobId = (e: EventEnvelope) => e.id): Promise<void> => {
    await queue.addBulk(
      events.map((event) => ({ name: event.type, data: { event }, opts: { jobId: jobId(event) } })),
    );
    const deadline = Date.now() + 20_000;
    for (const event of events) {
      for (;;) {
        const job = await queue.getJob(jobId(event));
        const state = job ? await job.getState() : 'unknown';
        if (state === 'completed') break;
        if (state === 'failed') throw new Error(`archive job ${job?.id} failed: ${job?.failedReason}`);
        if (Date.now() > deadline) throw new Error(`archive job ${jobId(event)} did not complete`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };

  const sends = (project: string, n: number) => Array.from({ length: n }, () => sent(project));

  it('counts each message once per kind: redeliveries, reprocessing, several notices per message', async () => {
    await startArchiver();
    const messages = sends('acme', 3);
    await archive(messages);
    const pmid = messages[0]!.data.providerMessageId as string;
    const bounce = sesEvent('acme', 'Bounce', pmid);
    await archive([bounce]);

    // The archiver processes the same event a second time (its job crashed after counting, before
    // it marked the event archived): the object is already there, and nothing counts twice.
    await client.del(`${QUEUE_PREFIX}:archived:ses:${bounce.data.providerEventId}`);
    await client.del(`${QUEUE_PREFIX}:archived:${messages[1]!.id}`);
    await archive([bounce, messages[1]!], (e) => `${e.id}-again`);
    // A second hard bounce notice for the same message (another recipient) is the same bounced message.
    await archive([sesEvent('acme', 'Bounce', pmid, { recipient: 'other@example.net' })]);
    // Soft bounces and provider-reported "sent" statuses are not counted.
    const softly = messages[2]!.data.providerMessageId as string;
    await archive([sesEvent('acme', 'Bounce', softly, { permanent: false })]);

    const report = await reputationOf(client, 'acme', thresholds);
    expect(report).toMatchObject({ sends: 3, bounces: 1, complaints: 0, bounceRate: 1 / 3, exceeded: [] });

    // Directly: the first count of an event is new, the second is not.
    const fresh = sent('acme');
    expect(await countEvent(client, fresh, thresholds)).toEqual({ kind: 'sends', counted: true });
    expect(await countEvent(client, fresh, thresholds)).toEqual({ kind: 'sends', counted: false });
    // An event already outside the window changes nothing.
    expect(
      await countEvent(client, sent('acme', nextId(), new Date(Date.now() - 25 * HOUR)), thresholds),
    ).toEqual({
      kind: 'sends',
      counted: false,
    });
    expect((await reputationOf(client, 'acme', thresholds)).sends).toBe(4);
    // The window rolls: 24 hours on, none of it counts.
    const later = await reputationOf(client, 'acme', thresholds, new Date(Date.now() + 25 * HOUR));
    expect(later).toMatchObject({ sends: 0, bounces: 0, bounceRate: null });
  });

  it('pauses nothing below minSends, however high the rates', async () => {
    await startArchiver();
    const messages = sends('acme', MIN_SENDS - 1);
    await archive(messages);
    await archive(
      messages.slice(0, 10).map((m) => sesEvent('acme', 'Bounce', m.data.providerMessageId as string)),
    );
    await archive([sesEvent('acme', 'Complaint', messages[15]!.data.providerMessageId as string)]);
    expect(await readPause(client, 'acme')).toBeUndefined();
    expect(await reputationOf(client, 'acme', thresholds)).toMatchObject({
      sends: MIN_SENDS - 1,
      bounces: 10,
      complaints: 1,
      exceeded: [],
    });
    expect(await operatorActions(store, 'reputation.paused')).toEqual([]);
  });

  it('pauses on crossing the bounce rate, archives reputation.paused once, and the pause survives a restart', async () => {
    await startArchiver();
    const messages = sends('acme', MIN_SENDS);
    await archive(messages);
    // 1 of 20 is 5%: at the threshold, not over it.
    await archive([sesEvent('acme', 'Bounce', messages[0]!.data.providerMessageId as string)]);
    expect(await readPause(client, 'acme')).toBeUndefined();

    await archive([sesEvent('acme', 'Bounce', messages[1]!.data.providerMessageId as string)]);
    const pause = (await readPause(client, 'acme'))!;
    expect(pause).toMatchObject({
      project: 'acme',
      channel: 'email',
      trigger: 'reputation',
      pausedBy: REPUTATION_ACTOR,
      exceeded: ['bounceRate'],
      archived: true,
      figures: {
        sends: 20,
        bounces: 2,
        complaints: 0,
        bounceRate: 0.1,
        thresholds: { bounceRate: 0.05, minSends: 20 },
      },
    });
    expect(pause.reason).toMatch(
      /hard-bounce rate 10\.00% \(2 of 20 sends\) exceeds 5\.00% over the last 24h/,
    );
    expect(pause.pending).toBeUndefined();

    const events = await operatorActions(store, 'reputation.paused');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      id: pause.eventId,
      key: pause.eventKey,
      project: 'acme',
      category: 'audit-log-admin',
      channel: 'record',
      data: {
        actor: REPUTATION_ACTOR,
        trigger: 'reputation',
        since: pause.since,
        exceeded: ['bounceRate'],
        figures: { sends: 20, bounces: 2, bounceRate: 0.1 },
      },
    });
    expect((await store.head(pause.eventKey!))!.mode).toBe('COMPLIANCE');

    // More bounces while paused: still one pause, one event.
    await archive(
      messages.slice(2, 6).map((m) => sesEvent('acme', 'Bounce', m.data.providerMessageId as string)),
    );
    expect((await readPause(client, 'acme'))!.eventId).toBe(pause.eventId);
    expect(await operatorActions(store, 'reputation.paused')).toHaveLength(1);

    // The pause lives in Redis, not in the process: a restarted archiver (and a restarted Redis,
    // from its AOF) keeps it, and writes nothing more.
    await archiver!.close();
    archiver = undefined;
    await redis.restart();
    await startArchiver();
    await archive([sesEvent('acme', 'Bounce', messages[7]!.data.providerMessageId as string)]);
    expect(await readPause(client, 'acme')).toEqual({ ...pause });
    expect(await operatorActions(store, 'reputation.paused')).toHaveLength(1);
  });

  it('pauses on crossing the complaint rate', async () => {
    await startArchiver();
    const messages = sends('acme', MIN_SENDS * 2);
    await archive(messages);
    expect(await readPause(client, 'acme')).toBeUndefined();
    await archive([sesEvent('acme', 'Complaint', messages[3]!.data.providerMessageId as string)]);
    const pause = (await readPause(client, 'acme'))!;
    expect(pause).toMatchObject({
      exceeded: ['complaintRate'],
      archived: true,
      figures: { sends: 40, bounces: 0, complaints: 1, complaintRate: 1 / 40 },
    });
    expect(pause.reason).toMatch(/complaint rate 2\.50% \(1 of 40 sends\) exceeds 0\.10%/);
    const events = await operatorActions(store, 'reputation.paused');
    expect(events).toHaveLength(1);
    expect(events[0]!.data).toMatchObject({ exceeded: ['complaintRate'], figures: { complaints: 1 } });
  });

  it('keeps rates per project: one project paused, the other not', async () => {
    await startArchiver();
    const bad = sends('bad', MIN_SENDS);
    const good = sends('good', MIN_SENDS);
    await archive([...bad, ...good]);
    // The good project's single bounce (5%) stays at the threshold; the bad one's 3 (15%) cross it.
    await archive([
      ...bad.slice(0, 3).map((m) => sesEvent('bad', 'Bounce', m.data.providerMessageId as string)),
      sesEvent('good', 'Bounce', good[0]!.data.providerMessageId as string),
    ]);
    expect((await readPause(client, 'bad'))?.exceeded).toEqual(['bounceRate']);
    expect(await readPause(client, 'good')).toBeUndefined();
    expect(await reputationOf(client, 'good', thresholds)).toMatchObject({
      sends: 20,
      bounces: 1,
      exceeded: [],
    });
    const events = await operatorActions(store, 'reputation.paused');
    expect(events.map((e) => e.project)).toEqual(['bad']);
  });

  it('finishes a pause whose event a crash left unarchived, exactly once, at the next run', async () => {
    // The store goes away between the pause record and its event (a crash at that point).
    await store.close();
    const broken = { redis: client, store, policy, thresholds, log: logger };
    const failed = await pauseEmail(broken, {
      project: 'acme',
      reason: 'bad list',
      actor: 'oncall@acme',
    }).catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: 'HOLDFAST_ERR_STORE_CLOSED' });
    // The pause is in force already: the sender sees it (sends wait).
    const pending = (await readPause(client, 'acme'))!;
    expect(pending).toMatchObject({ archived: false, trigger: 'manual', pausedBy: 'oncall@acme' });
    expect(pending.pending?.id).toBe(pending.eventId);

    store = await LocalWormStore.open({ dir: join(dir.path, 'store') });
    expect(await operatorActions(store, 'reputation.paused')).toEqual([]);
    // The next archiver run records it...
    await startArchiver();
    const done = (await readPause(client, 'acme'))!;
    expect(done).toMatchObject({ archived: true, eventId: pending.eventId, since: pending.since });
    expect(done.pending).toBeUndefined();
    const events = await operatorActions(store, 'reputation.paused');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      id: pending.eventId,
      key: done.eventKey,
      data: { actor: 'oncall@acme', reason: 'bad list' },
    });
    // ...and runs after it add nothing.
    await startArchiver();
    expect(await operatorActions(store, 'reputation.paused')).toHaveLength(1);
  });

  it('finishes a pause whose event was archived but not marked, without a second object', async () => {
    await startArchiver();
    const messages = sends('acme', MIN_SENDS);
    await archive(messages);
    // The crash came after the archive write, before the record was marked.
    const { pause } = await pauseEmail(
      { redis: client, store, policy, thresholds },
      { project: 'acme', reason: 'r', actor: 'a' },
    );
    const { eventKey: _key, ...rest } = pause;
    const unmarked: EmailPause = {
      ...rest,
      archived: false,
      pending: (await readJson(store, pause.eventKey!)) as unknown as EventEnvelope,
    };
    await client.set(pauseKey('acme'), JSON.stringify(unmarked));
    // The next evaluation of the project (a bounce through the archiver) finishes it.
    await archive([sesEvent('acme', 'Bounce', messages[0]!.data.providerMessageId as string)]);
    expect(await readPause(client, 'acme')).toMatchObject({ archived: true, eventKey: pause.eventKey });
    expect(await operatorActions(store, 'reputation.paused')).toHaveLength(1);
  });

  it('clears: the cleared event is archived before the pause lifts, and a fresh window starts', async () => {
    await startArchiver();
    const messages = sends('acme', MIN_SENDS);
    await archive(messages);
    const bounces = messages
      .slice(0, 4)
      .map((m) => sesEvent('acme', 'Bounce', m.data.providerMessageId as string));
    await archive(bounces);
    const pause = (await readPause(client, 'acme'))!;
    expect(pause.exceeded).toEqual(['bounceRate']);

    const ctx = { redis: client, store, policy, thresholds };
    const cleared = await clearPause(ctx, { project: 'acme', actor: 'oncall@acme', reason: 'list cleaned' });
    expect(await readPause(client, 'acme')).toBeUndefined();
    const events = await operatorActions(store, 'reputation.cleared');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      key: cleared.eventKey,
      data: {
        actor: 'oncall@acme',
        reason: 'list cleaned',
        pause: { eventId: pause.eventId, pausedBy: REPUTATION_ACTOR },
        figures: { sends: 20, bounces: 4 },
      },
    });
    const freshFrom = (events[0]!.data as { freshWindowFrom: string }).freshWindowFrom;
    expect(cleared.report).toMatchObject({
      sends: 0,
      bounces: 0,
      window: { from: freshFrom, freshSince: freshFrom },
    });

    // The old bounces, processed again, and late notices of bounces from before the clear, count
    // for nothing and re-pause nothing.
    for (const b of bounces)
      await client.del(`${QUEUE_PREFIX}:archived:ses:${b.data.providerEventId as string}`);
    const before = new Date(Date.parse(freshFrom) - 60_000);
    const late = messages
      .slice(4, 8)
      .map((m) => sesEvent('acme', 'Bounce', m.data.providerMessageId as string, { at: before }));
    await archive([...bounces, ...late], (e) => `${e.id}-after-clear`);
    expect(await readPause(client, 'acme')).toBeUndefined();
    expect(await reputationOf(client, 'acme', thresholds)).toMatchObject({ sends: 0, bounces: 0 });

    // New sends and new bounces can pause it again, once minSends is reached afresh.
    const more = sends('acme', MIN_SENDS);
    await archive(more);
    await archive(
      more.slice(0, 2).map((m) => sesEvent('acme', 'Bounce', m.data.providerMessageId as string)),
    );
    expect((await readPause(client, 'acme'))?.eventId).not.toBe(pause.eventId);
    expect(await operatorActions(store, 'reputation.paused')).toHaveLength(2);

    // Clearing what is not paused is an error that names the project.
    await clearPause(ctx, { project: 'acme', actor: 'a' });
    await expect(clearPause(ctx, { project: 'acme', actor: 'a' })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_NOT_PAUSED',
    });
  });

  it('listPauses and readPause report a pause key set by hand to a non-record as an unreadable pause, sorted by the project in the key', async () => {
    await client.set(pauseKey('zeta'), 'paused');
    await client.set(pauseKey('acme'), '{"since":"2026-01-01T00:00:00.000Z"}');
    await client.set(pauseKey('beta'), '[1]');
    const ctx = { redis: client, store, policy, thresholds };
    const { pause: real } = await pauseEmail(ctx, { project: 'mid', reason: 'by hand', actor: 'oncall' });

    const all = await listPauses(client);
    expect(all.map((p) => [p.project, p.unreadable])).toEqual([
      ['acme', 'no project, reason, trigger, pausedBy, exceeded, figures, eventId, archived'],
      ['beta', 'not a JSON object'],
      ['mid', undefined],
      ['zeta', 'not JSON'],
    ]);
    expect(all[2]).toEqual(real);
    const zeta = (await readPause(client, 'zeta'))!;
    expect(zeta).toMatchObject({
      project: 'zeta',
      since: '',
      trigger: 'manual',
      pausedBy: 'unknown',
      archived: true,
      eventId: expect.stringMatching(/^unreadable:[0-9a-f]{40}$/),
    });
    expect(zeta.reason).toBe(`unreadable record (not JSON); the key ${pauseKey('zeta')} alone pauses email`);
    // What a partial record does say is kept.
    expect(all[0]!.since).toBe('2026-01-01T00:00:00.000Z');
  });

  it('keeps an unreadable pause standing through bounces: the archive jobs complete and nothing is re-paused', async () => {
    await startArchiver();
    await client.set(pauseKey('acme'), 'paused');
    const messages = sends('acme', MIN_SENDS);
    await archive(messages);
    // Each bounce evaluates the project (reading its pause) inside its archive job.
    await archive(
      messages.slice(0, 4).map((m) => sesEvent('acme', 'Bounce', m.data.providerMessageId as string)),
    );
    expect(await client.get(pauseKey('acme'))).toBe('paused');
    expect(await operatorActions(store, 'reputation.paused')).toEqual([]);
  });

  it('clears a pause key set by hand, archiving the clear', async () => {
    const ctx = { redis: client, store, policy, thresholds };
    await client.set(pauseKey('acme'), 'paused');
    const cleared = await clearPause(ctx, { project: 'acme', actor: 'oncall@acme', reason: 'set by hand' });
    expect(await client.exists(pauseKey('acme'))).toBe(0);
    expect(cleared.cleared.unreadable).toBe('not JSON');
    const [event] = await operatorActions(store, 'reputation.cleared');
    expect(event).toMatchObject({
      key: cleared.eventKey,
      data: {
        actor: 'oncall@acme',
        pause: { eventId: cleared.cleared.eventId, eventKey: null, pausedBy: 'unknown' },
      },
    });
  });
});
