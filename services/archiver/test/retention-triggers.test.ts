import { join } from 'node:path';
import {
  type ArchiveJobData,
  createLogger,
  loadConfig,
  QUEUE_PREFIX,
  QUEUES,
  RetentionPolicy,
  sidecarKey,
} from '@holdfast/core';
import { createProducer, type Producer } from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { type S3Server, startS3Server } from '@holdfast/testkit/s3-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore, type ObjectStore, S3WormStore } from '@holdfast/worm-store';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ArchiverHandle, start } from '../src/index.ts';
import { applyRetentionTriggers, POLICY_KEY, TRIGGER_ACTOR } from '../src/retention-triggers.ts';
import { rebuildSubjectIndex, subjectIndexKey, subjectVersions } from '../src/subject-index.ts';

const DAY = 86_400_000;
const logger = createLogger({ name: 'test', level: 'silent' });

interface Backend {
  name: string;
  open(dir: string): Promise<{ store: ObjectStore; close(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'LocalWormStore',
    async open(dir) {
      const store = await LocalWormStore.open({ dir: join(dir, 'store') });
      return { store, close: () => store.close() };
    },
  },
  {
    name: 'S3WormStore (loopback S3 API)',
    async open() {
      const server: S3Server = await startS3Server();
      const store = await S3WormStore.open({
        bucket: server.bucket,
        endpoint: server.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' },
      });
      return {
        store,
        close: async () => {
          await store.close();
          await server.close();
        },
      };
    },
  },
];

async function readJson(store: ObjectStore, key: string): Promise<Record<string, unknown>> {
  return JSON.parse(Buffer.from((await store.get(key)).body).toString('utf8'));
}

/** Operator actions (audit-log-admin records) of one type, oldest first. */
async function operatorActions(store: ObjectStore, type: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const o of store.list('records/audit-log-admin/')) {
    const value = await readJson(store, o.key);
    if (value.type === type) out.push(value);
  }
  return out;
}

async function retainUntil(store: ObjectStore, key: string): Promise<string | undefined> {
  return (await store.head(key))?.retainUntil?.toISOString();
}

const plusYears = (iso: string, years: number): string => {
  const d = new Date(iso);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.toISOString();
};

describe.each(backends)('retention by category and trigger, archiver on $name', (backend) => {
  let redis: TestRedis;
  let client: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let opened: { store: ObjectStore; close(): Promise<void> };
  let store: ObjectStore;
  let archiver: ArchiverHandle | undefined;
  let producer: Producer;
  let queue: Queue<ArchiveJobData>;
  const policy = RetentionPolicy.defaults();

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
    dir = await tempDir('holdfast-retention-');
    opened = await backend.open(dir.path);
    store = opened.store;
    queue = new Queue(QUEUES.archive, { connection: { url: redis.url }, prefix: QUEUE_PREFIX });
    producer = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'spool'),
      logger,
      retentionPolicy: policy,
    });
  });
  afterEach(async () => {
    await producer.close();
    await archiver?.close();
    archiver = undefined;
    await queue.close();
    await opened.close();
    await dir.remove();
  });

  const startArchiver = async (p: RetentionPolicy = policy) => {
    await archiver?.close();
    const config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'unused')}`,
      HOLDFAST_LOG_LEVEL: 'silent',
    });
    archiver = await start(config, { store, policy: p, logger, retryBaseMs: 50, retryCapMs: 200 });
    return archiver;
  };

  /** Wait until the archive job of event `id` completed (and fail loudly if it failed). */
  const archived = async (id: string): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const job = await queue.getJob(id);
      const state = job ? await job.getState() : 'unknown';
      if (state === 'completed') return;
      if (state === 'failed') throw new Error(`archive job ${id} failed: ${job?.failedReason}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`archive job ${id} did not complete`);
  };

  const record = async (input: Parameters<Producer['record']>[0]) => {
    const accepted = await producer.record(input);
    await archived(accepted.id);
    return accepted;
  };

  it('writes every object with retain-until counted from its own date, per category, and records the policy at start', async () => {
    await startArchiver();
    const now = Date.now();
    const cases = [
      { category: 'financial-transaction', type: 'transaction.posted', years: 7, ago: 400 },
      { category: 'audit-log', type: 'audit.login', years: 3, ago: 100 },
      { category: 'audit-log-admin', type: 'audit.admin-login', years: 7, ago: 30 },
      { category: 'contract', type: 'contract.signed', years: 7, ago: 10 },
    ];
    for (const c of cases) {
      const occurredAt = new Date(now - c.ago * DAY).toISOString();
      const { archiveKey } = await record({
        category: c.category,
        type: c.type,
        subject: 'acct-1',
        occurredAt,
        data: { n: c.ago },
        ...(c.category === 'contract'
          ? { document: { content: Buffer.from('%PDF-1.7 contract'), contentType: 'application/pdf' } }
          : {}),
      });
      expect(await retainUntil(store, archiveKey)).toBe(plusYears(occurredAt, c.years));
      if (c.category === 'contract')
        expect(await retainUntil(store, sidecarKey(archiveKey))).toBe(plusYears(occurredAt, c.years));
    }
    // An email's date is when it was composed: its sidecar says so.
    const { archiveKey, id } = await producer.sendEmail({
      from: 'a@acme.example',
      to: 'b@x.example',
      subject: 'statement',
      text: 'attached',
    });
    await archived(id);
    const sidecar = await readJson(store, sidecarKey(archiveKey));
    expect(await retainUntil(store, archiveKey)).toBe(plusYears(String(sidecar.occurredAt), 7));

    // The policy in force is on record (first start), and only once while it does not change.
    const changes = await operatorActions(store, 'policy.changed');
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      subject: 'built-in defaults',
      category: 'audit-log-admin',
      data: {
        actor: 'system:archiver',
        source: 'built-in defaults',
        old: null,
        new: { sha256: policy.fingerprint(), categories: policy.describe().categories },
      },
    });
    await startArchiver();
    expect(await operatorActions(store, 'policy.changed')).toHaveLength(1);
    const stricter = new RetentionPolicy(
      { ...Object.fromEntries([...policy.categories].map(([k, v]) => [k, v.text])), 'audit-log': '5y' },
      '/etc/holdfast/policy.yaml',
    );
    await startArchiver(stricter);
    const after = await operatorActions(store, 'policy.changed');
    expect(after).toHaveLength(2);
    const change = after.find((e) => e.subject === '/etc/holdfast/policy.yaml')!;
    expect(change.data).toMatchObject({
      old: { sha256: policy.fingerprint(), source: 'built-in defaults' },
      new: { sha256: stricter.fingerprint(), source: '/etc/holdfast/policy.yaml' },
    });
    expect(JSON.parse((await client.get(POLICY_KEY))!)).toMatchObject({ sha256: stricter.fingerprint() });
  });

  it('extends a contract (blob and sidecar) to relationship.ended + 7y, once: a re-delivered end changes nothing', async () => {
    await startArchiver();
    const now = Date.now();
    const signed = new Date(now - 60 * DAY).toISOString();
    const contract = await record({
      category: 'contract',
      type: 'contract.signed',
      subject: 'cust-1',
      occurredAt: signed,
      document: { content: Buffer.from('%PDF-1.7 cust-1'), contentType: 'application/pdf' },
    });
    const plain = await record({
      category: 'contract',
      type: 'contract.amended',
      subject: 'cust-1',
      occurredAt: signed,
    });
    const other = await record({
      category: 'contract',
      type: 'contract.signed',
      subject: 'cust-2',
      occurredAt: signed,
    });
    const audit = await record({
      category: 'audit-log',
      type: 'audit.viewed',
      subject: 'cust-1',
      occurredAt: signed,
    });
    expect(await retainUntil(store, contract.archiveKey)).toBe(plusYears(signed, 7));

    const endedAt = new Date(now - DAY).toISOString();
    const ended = await record({
      category: 'audit-log',
      type: 'relationship.ended',
      subject: 'cust-1',
      occurredAt: endedAt,
    });
    const extended = plusYears(endedAt, 7);
    expect(await retainUntil(store, contract.archiveKey)).toBe(extended);
    expect(await retainUntil(store, sidecarKey(contract.archiveKey))).toBe(extended);
    expect(await retainUntil(store, plain.archiveKey)).toBe(extended);
    // Another subject's contract, and the same subject's other categories, are untouched.
    expect(await retainUntil(store, other.archiveKey)).toBe(plusYears(signed, 7));
    expect(await retainUntil(store, audit.archiveKey)).toBe(plusYears(signed, 3));
    expect(await retainUntil(store, ended.archiveKey)).toBe(plusYears(endedAt, 3));

    const actions = await operatorActions(store, 'retention.extended');
    expect(actions).toHaveLength(1);
    const data = actions[0]!.data as Record<string, unknown>;
    expect(actions[0]).toMatchObject({ subject: 'cust-1', project: 'acme' });
    expect(data).toMatchObject({
      actor: TRIGGER_ACTOR,
      category: 'contract',
      until: extended,
      trigger: { type: 'relationship.ended', occurredAt: endedAt, eventId: ended.id },
    });
    const blobHead = (await store.head(contract.archiveKey))!;
    expect(data.objects).toEqual(
      expect.arrayContaining([
        {
          key: contract.archiveKey,
          versionId: blobHead.versionId,
          sha256: blobHead.sha256,
          from: plusYears(signed, 7),
          to: extended,
        },
      ]),
    );
    expect(data.objects).toHaveLength(3);

    // The same end delivered again (a new event, the same date): nothing changes, nothing is written.
    const again = await record({
      category: 'audit-log',
      type: 'relationship.ended',
      subject: 'cust-1',
      occurredAt: endedAt,
    });
    expect(again.archiveKey).not.toBe(ended.archiveKey);
    expect(await operatorActions(store, 'retention.extended')).toHaveLength(1);
    expect(await retainUntil(store, contract.archiveKey)).toBe(extended);
    // And the trigger run directly on the first event once more: still nothing to do.
    const endedEvent = await readJson(store, ended.archiveKey);
    const rerun = await applyRetentionTriggers(
      { redis: client, store, policy },
      endedEvent as never,
      (await store.head(ended.archiveKey))!,
    );
    expect(rerun.extended).toEqual([]);
    expect(await operatorActions(store, 'retention.extended')).toHaveLength(1);
  });

  it('extends a contract archived after its relationship ended as it is written, and rebuilds the index from the archive', async () => {
    await startArchiver();
    const now = Date.now();
    const endedAt = new Date(now - 2 * DAY).toISOString();
    await record({
      category: 'audit-log',
      type: 'relationship.ended',
      subject: 'cust-3',
      occurredAt: endedAt,
    });
    const signed = new Date(now - 900 * DAY).toISOString();
    const late = await record({
      category: 'contract',
      type: 'contract.signed',
      subject: 'cust-3',
      occurredAt: signed,
      document: { content: Buffer.from('%PDF-1.7 cust-3'), contentType: 'application/pdf' },
    });
    expect(await retainUntil(store, late.archiveKey)).toBe(plusYears(endedAt, 7));
    expect(await retainUntil(store, sidecarKey(late.archiveKey))).toBe(plusYears(endedAt, 7));
    expect(await operatorActions(store, 'retention.extended')).toEqual([
      expect.objectContaining({
        subject: 'cust-3',
        data: expect.objectContaining({ trigger: expect.objectContaining({ type: 'relationship.ended' }) }),
      }),
    ]);

    // Redis lost: the index and the markers come back from the archive alone.
    const indexed = await subjectVersions(client, 'acme', 'contract', 'cust-3');
    await client.flushall();
    expect(await client.exists(subjectIndexKey('acme', 'contract', 'cust-3'))).toBe(0);
    const rebuilt = await rebuildSubjectIndex(store, client, policy);
    expect(rebuilt).toEqual({ objects: 2, triggers: 1 });
    expect(await subjectVersions(client, 'acme', 'contract', 'cust-3')).toEqual(indexed);
  });
});
