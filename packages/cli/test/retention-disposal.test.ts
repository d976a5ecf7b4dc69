import { join } from 'node:path';
import { archiveEvent } from '@holdfast/archiver';
import { newEvent, RetentionPolicy, sha256Hex, sidecarKey } from '@holdfast/core';
import { startS3Server } from '@holdfast/testkit/s3-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore, type ObjectStore, RetentionShortenError, S3WormStore } from '@holdfast/worm-store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { executeDisposal, planDisposal } from '../src/dispose-command.ts';
import {
  extendSubjectRetention,
  findSubjectVersions,
  parseUntil,
  UnreadableObjectsError,
} from '../src/retention-commands.ts';

const DAY = 86_400_000;

interface Harness {
  store: ObjectStore;
  now(): Date;
  advance(ms: number): void;
  close(): Promise<void>;
}

/** Both stores, each with a clock the test moves (S3: the server's and the client's). */
const backends: { name: string; open(): Promise<Harness> }[] = [
  {
    name: 'LocalWormStore',
    async open() {
      const dir = await tempDir('holdfast-dispose-');
      let now = Date.now();
      const clock = () => new Date(now);
      const store = await LocalWormStore.open({ dir: join(dir.path, 'store'), clock });
      return {
        store,
        now: clock,
        advance: (ms) => {
          now += ms;
        },
        close: async () => {
          await store.close();
          await dir.remove();
        },
      };
    },
  },
  {
    name: 'S3WormStore (loopback S3 API)',
    async open() {
      let now = Date.now();
      const clock = () => new Date(now);
      const server = await startS3Server({ clock });
      const store = await S3WormStore.open({
        bucket: server.bucket,
        endpoint: server.endpoint,
        region: 'us-east-1',
        credentials: { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' },
        clock,
      });
      return {
        store,
        now: clock,
        advance: (ms) => {
          now += ms;
        },
        close: async () => {
          await store.close();
          await server.close();
        },
      };
    },
  },
];

/**
 * A real store that records the order of the operations that change it: the test can see that
 * the destruction log was written before the first delete. Everything else passes through.
 */
function recording(store: ObjectStore): { store: ObjectStore; ops: string[] } {
  const ops: string[] = [];
  const wrapped: ObjectStore = {
    description: store.description,
    put: async (input) => {
      const out = await store.put(input);
      ops.push(`put ${input.key}`);
      return out;
    },
    head: (key, opts) => store.head(key, opts),
    get: (key, opts) => store.get(key, opts),
    list: (prefix) => store.list(prefix),
    listVersions: (prefix) => store.listVersions(prefix),
    extendRetention: async (key, versionId, until) => {
      ops.push(`extend ${key}`);
      await store.extendRetention(key, versionId, until);
    },
    setLegalHold: (key, versionId, on) => store.setLegalHold(key, versionId, on),
    deleteVersion: async (key, versionId) => {
      ops.push(`delete ${key}`);
      await store.deleteVersion(key, versionId);
    },
    close: () => store.close(),
  };
  return { store: wrapped, ops };
}

/** Every version with what can change about it, to prove that nothing did. */
async function snapshot(store: ObjectStore): Promise<string[]> {
  const out: string[] = [];
  for await (const v of store.listVersions('')) {
    const head = await store.head(v.key, { versionId: v.versionId });
    out.push(`${v.key} ${v.versionId} ${head?.retainUntil?.toISOString()} ${head?.legalHold}`);
  }
  return out;
}

async function put(store: ObjectStore, key: string, retainUntil: Date) {
  const body = Buffer.from(`{"key":${JSON.stringify(key)}}`);
  return store.put({ key, body, sha256: sha256Hex(body), contentType: 'application/json', retainUntil });
}

interface StoredEvent {
  type: string;
  subject: string;
  category: string;
  data: Record<string, unknown>;
}

async function operatorRecords(
  store: ObjectStore,
  type: string,
): Promise<{ key: string; value: StoredEvent }[]> {
  const out: { key: string; value: StoredEvent }[] = [];
  for await (const o of store.list('records/audit-log-admin/')) {
    const value = JSON.parse(Buffer.from((await store.get(o.key)).body).toString('utf8'));
    if (value.type === type) out.push({ key: o.key, value });
  }
  return out;
}

const policy = RetentionPolicy.defaults();

describe('parseUntil', () => {
  const now = new Date('2026-11-22T12:00:00Z');
  it('reads a day (midnight UTC) or an instant with a zone', () => {
    expect(parseUntil('2040-12-31', now).toISOString()).toBe('2040-12-31T00:00:00.000Z');
    expect(parseUntil('2040-12-31T10:30:00+02:00', now).toISOString()).toBe('2040-12-31T08:30:00.000Z');
  });
  it.each([
    ['next tuesday', /"next tuesday" is not a date/],
    ['2040-02-30', /"2040-02-30" is not a valid calendar date/],
    ['2040-13-01', /"2040-13-01" is not a valid calendar date/],
    ['2040-12-31T10:30:00', /is not a date: use YYYY-MM-DD or an ISO 8601 instant with a zone/],
    ['2026-01-01', /2026-01-01T00:00:00.000Z is not in the future/],
  ])('refuses %j naming --until', (text, pattern) => {
    expect(() => parseUntil(text, now)).toThrow(pattern);
    expect(() => parseUntil(text, now)).toThrow(/--until/);
  });
});

describe.each(backends)('retention extend and disposal on $name', (backend) => {
  let h: Harness;
  beforeEach(async () => {
    h = await backend.open();
  });
  afterEach(async () => {
    await h.close();
  });

  /** A contract with a PDF (blob + sidecar) and a plain record, both about `subject`. */
  const archiveSubject = async (subject: string, occurredAt: Date) => {
    const pdf = Buffer.from(`%PDF-1.7 ${subject}`);
    const contract = await archiveEvent(
      h.store,
      policy,
      newEvent({
        type: 'contract.signed',
        occurredAt,
        project: 'acme',
        channel: 'record',
        direction: 'internal',
        subject,
        category: 'contract',
        data: {
          document: {
            contentType: 'application/pdf',
            sha256: sha256Hex(pdf),
            size: pdf.byteLength,
            base64: pdf.toString('base64'),
          },
        },
      }),
    );
    const audit = await archiveEvent(
      h.store,
      policy,
      newEvent({
        type: 'audit.viewed',
        occurredAt,
        project: 'acme',
        channel: 'record',
        direction: 'internal',
        subject,
        category: 'audit-log',
        data: { by: 'clerk' },
      }),
    );
    return { contract, audit };
  };

  it('extends every object about a subject, archiving the event first; refuses a shorter date changing nothing', async () => {
    const { contract, audit } = await archiveSubject('cust-9', h.now());
    await archiveSubject('cust-10', h.now());
    expect((await findSubjectVersions(h.store, { subject: 'cust-9' })).map((v) => v.key).sort()).toEqual(
      [contract.key, sidecarKey(contract.key), audit.key].sort(),
    );

    // Shorter than the contract's 7y: refused, naming the key retained longest and its date.
    const before = await snapshot(h.store);
    const shorter = new Date(h.now().getTime() + 5 * 365 * DAY);
    const refused = await extendSubjectRetention(h.store, policy, {
      subject: 'cust-9',
      until: shorter,
      actor: 'ops@acme',
    }).then(
      () => undefined,
      (e: unknown) => e as RetentionShortenError,
    );
    expect(refused).toBeInstanceOf(RetentionShortenError);
    expect(refused).toMatchObject({ code: 'HOLDFAST_ERR_RETENTION_SHORTEN' });
    expect([contract.key, sidecarKey(contract.key)]).toContain(refused!.key);
    expect(refused!.message).toContain(`retained until ${contract.retainUntil}`);
    expect(await snapshot(h.store)).toEqual(before);

    // An unknown category: a clear error, nothing changed.
    await expect(
      extendSubjectRetention(h.store, policy, {
        subject: 'cust-9',
        category: 'contracts',
        until: shorter,
        actor: 'ops@acme',
      }),
    ).rejects.toThrow(/unknown retention category "contracts".*contract/);
    await expect(
      extendSubjectRetention(h.store, policy, { subject: 'nobody', until: shorter, actor: 'ops@acme' }),
    ).rejects.toThrow(/no archived object has subject "nobody"/);
    expect(await snapshot(h.store)).toEqual(before);

    // Only the audit log (3y) to 5y: allowed, and recorded before any extension.
    const rec = recording(h.store);
    const report = await extendSubjectRetention(rec.store, policy, {
      subject: 'cust-9',
      category: 'audit-log',
      until: shorter,
      actor: 'ops@acme',
    });
    expect(report.extended).toEqual([
      expect.objectContaining({ key: audit.key, from: audit.retainUntil, to: shorter.toISOString() }),
    ]);
    expect(rec.ops).toEqual([`put ${report.event!.key}`, `extend ${audit.key}`]);
    expect((await h.store.head(audit.key))!.retainUntil!.toISOString()).toBe(shorter.toISOString());
    expect((await h.store.head(contract.key))!.retainUntil!.toISOString()).toBe(contract.retainUntil);
    const [event] = await operatorRecords(h.store, 'retention.extended');
    expect(event!.value).toMatchObject({
      subject: 'cust-9',
      data: { actor: 'ops@acme', until: shorter.toISOString(), objects: report.extended },
    });

    // Everything to 10y; the audit entry about cust-9 (retained 7y) is not the subject's data and
    // is left alone. The same request again is a no-op: nothing extended, nothing written.
    const longer = new Date(h.now().getTime() + 10 * 365 * DAY);
    const all = await extendSubjectRetention(h.store, policy, {
      subject: 'cust-9',
      until: longer,
      actor: 'ops@acme',
    });
    expect(all.extended.map((e) => e.key).sort()).toEqual(
      [contract.key, sidecarKey(contract.key), audit.key].sort(),
    );
    const again = await extendSubjectRetention(h.store, policy, {
      subject: 'cust-9',
      until: longer,
      actor: 'ops@acme',
    });
    expect(again).toMatchObject({ extended: [], event: null, matched: 3 });
    expect(await operatorRecords(h.store, 'retention.extended')).toHaveLength(2);
    expect(
      (await findSubjectVersions(h.store, { subject: 'cust-10' }))[0]!.retainUntil!.getTime(),
    ).toBeLessThan(longer.getTime());
  });

  it('refuses to extend while an object it cannot read may be about the subject, naming every such object and changing nothing', async () => {
    const { contract, audit } = await archiveSubject('cust-9', h.now());
    const other = await archiveSubject('cust-10', h.now());
    // The operator's role may list and head objects, but reads of these are denied (no key access).
    const denied = new Set([audit.key, other.audit.key]);
    const partlyReadable: ObjectStore = {
      description: h.store.description,
      head: (k, o) => h.store.head(k, o),
      get: async (k, o) => {
        if (denied.has(k))
          throw Object.assign(new Error('AccessDenied: not authorised to use the key'), { code: 'EACCES' });
        return h.store.get(k, o);
      },
      list: (p) => h.store.list(p),
      listVersions: (p) => h.store.listVersions(p),
      put: (input) => h.store.put(input),
      extendRetention: (k, id, until) => h.store.extendRetention(k, id, until),
      setLegalHold: (k, id, on) => h.store.setLegalHold(k, id, on),
      deleteVersion: (k, id) => h.store.deleteVersion(k, id),
      close: () => h.store.close(),
    };
    const before = await snapshot(h.store);
    const until = new Date(h.now().getTime() + 10 * 365 * DAY);
    const refused = await extendSubjectRetention(partlyReadable, policy, {
      subject: 'cust-9',
      until,
      actor: 'ops@acme',
    }).then(
      () => undefined,
      (e: unknown) => e as UnreadableObjectsError,
    );
    expect(refused).toMatchObject({ code: 'HOLDFAST_ERR_OBJECTS_UNREADABLE', subject: 'cust-9' });
    expect(refused).toBeInstanceOf(UnreadableObjectsError);
    expect(refused!.objects.map((o) => o.key).sort()).toEqual([...denied].sort());
    expect(refused!.objects[0]!.error).toBe('EACCES: AccessDenied: not authorised to use the key');
    for (const key of denied) expect(refused!.message).toContain(key);
    // Nothing extended, nothing recorded: the readable contract was not extended without its audit log.
    expect(await snapshot(h.store)).toEqual(before);
    expect(await operatorRecords(h.store, 'retention.extended')).toEqual([]);

    // Readable again, the same request extends all three and records them.
    const report = await extendSubjectRetention(h.store, policy, {
      subject: 'cust-9',
      until,
      actor: 'ops@acme',
    });
    expect(report.extended.map((e) => e.key).sort()).toEqual(
      [contract.key, sidecarKey(contract.key), audit.key].sort(),
    );
    expect(await operatorRecords(h.store, 'retention.extended')).toHaveLength(1);
  });

  it('finds a document named .json whose bytes are not JSON through its sidecar, and is not stopped by it', async () => {
    const bytes = Buffer.from('{"truncated": ');
    const archived = await archiveEvent(
      h.store,
      policy,
      newEvent({
        type: 'statement.issued',
        occurredAt: h.now(),
        project: 'acme',
        channel: 'record',
        direction: 'internal',
        subject: 'cust-11',
        category: 'contract',
        data: {
          document: {
            contentType: 'application/json',
            sha256: sha256Hex(bytes),
            size: bytes.byteLength,
            base64: bytes.toString('base64'),
          },
        },
      }),
    );
    expect(archived.key).toMatch(/\.json$/);
    expect((await findSubjectVersions(h.store, { subject: 'cust-11' })).map((v) => v.key).sort()).toEqual(
      [archived.key, sidecarKey(archived.key)].sort(),
    );
  });

  it('disposes of exactly what a dry run lists, writing the destruction log before the first delete', async () => {
    const soon = new Date(h.now().getTime() + DAY);
    const a = await put(h.store, 'records/audit-log/a.json', soon);
    const b = await put(h.store, 'records/audit-log/b.json', soon);
    await put(h.store, 'records/audit-log/kept.json', new Date(h.now().getTime() + 30 * DAY));
    h.advance(2 * DAY);

    const dry = await planDisposal(h.store, { now: h.now() });
    expect(dry.candidates.map((c) => c.key)).toEqual([
      'records/audit-log/a.json',
      'records/audit-log/b.json',
    ]);
    expect(dry.retained).toBe(1);

    const rec = recording(h.store);
    const report = await executeDisposal(rec.store, policy, { actor: 'ops@acme', now: h.now() });
    expect(report.deleted).toEqual(dry.candidates);
    expect(report.failed).toEqual([]);
    const log = report.destructionLog!;
    // The log entry is the first thing written, and every delete comes after it.
    expect(rec.ops).toEqual([`put ${log.key}`, `delete ${a.key}`, `delete ${b.key}`]);
    const [entry] = await operatorRecords(h.store, 'disposal.executed');
    expect(entry!.key).toBe(log.key);
    expect(entry!.value).toMatchObject({
      type: 'disposal.executed',
      category: 'audit-log-admin',
      data: {
        actor: 'ops@acme',
        policy: { source: 'built-in defaults', sha256: policy.fingerprint() },
        count: 2,
        objects: [
          {
            key: a.key,
            versionId: a.versionId,
            sha256: a.sha256,
            size: expect.any(Number),
            retainUntil: soon.toISOString(),
          },
          {
            key: b.key,
            versionId: b.versionId,
            sha256: b.sha256,
            size: expect.any(Number),
            retainUntil: soon.toISOString(),
          },
        ],
      },
    });
    expect(await h.store.head(a.key, { versionId: a.versionId })).toBeUndefined();
    expect(await h.store.head('records/audit-log/kept.json')).toBeDefined();
    // Nothing further is due: a second execute writes nothing.
    expect(await executeDisposal(h.store, policy, { actor: 'ops@acme', now: h.now() })).toMatchObject({
      deleted: [],
      destructionLog: null,
    });
    expect(await operatorRecords(h.store, 'disposal.executed')).toHaveLength(1);

    // Long after, when even the destruction log's own retention has run out, it is still kept.
    h.advance(8 * 365 * DAY);
    const later = await planDisposal(h.store, { now: h.now() });
    expect(later.candidates.map((c) => c.key)).not.toContain(log.key);
    expect(later.skipped).toContainEqual({
      key: log.key,
      versionId: log.versionId,
      reason: 'destruction-log',
    });
  });

  it('keeps a record it cannot read, since it cannot tell it is not a destruction log', async () => {
    const soon = new Date(h.now().getTime() + DAY);
    await put(h.store, 'records/audit-log/a.json', soon);
    h.advance(2 * DAY);
    await executeDisposal(h.store, policy, { actor: 'ops@acme', now: h.now() });
    const [log] = await operatorRecords(h.store, 'disposal.executed');
    h.advance(8 * 365 * DAY);
    // The disposal role may head objects but not read them (no key access), or a read is throttled.
    const unreadable: ObjectStore = {
      description: h.store.description,
      head: (k, o) => h.store.head(k, o),
      get: async () => {
        throw Object.assign(new Error('AccessDenied: not authorised to use the key'), { code: 'EACCES' });
      },
      list: (p) => h.store.list(p),
      listVersions: (p) => h.store.listVersions(p),
      put: (input) => h.store.put(input),
      extendRetention: (k, id, until) => h.store.extendRetention(k, id, until),
      setLegalHold: (k, id, on) => h.store.setLegalHold(k, id, on),
      deleteVersion: (k, id) => h.store.deleteVersion(k, id),
      close: () => h.store.close(),
    };
    const plan = await planDisposal(unreadable, { now: h.now() });
    expect(plan.candidates.map((c) => c.key)).not.toContain(log!.key);
    expect(plan.skipped).toContainEqual(
      expect.objectContaining({
        key: log!.key,
        reason: 'error',
        detail: expect.stringContaining('AccessDenied'),
      }),
    );
  });

  it('keeps a held version after its retention ends, and disposes of it once the hold is released', async () => {
    const held = await put(h.store, 'records/audit-log/held.json', new Date(h.now().getTime() + DAY));
    await h.store.setLegalHold(held.key, held.versionId, true);
    h.advance(2 * DAY);

    const plan = await planDisposal(h.store, { now: h.now() });
    expect(plan.candidates).toEqual([]);
    expect(plan.skipped).toEqual([{ key: held.key, versionId: held.versionId, reason: 'legal-hold' }]);
    const first = await executeDisposal(h.store, policy, { actor: 'ops@acme', now: h.now() });
    expect(first).toMatchObject({ deleted: [], destructionLog: null });
    expect(await h.store.head(held.key, { versionId: held.versionId })).toBeDefined();

    // A matter registry that still holds it keeps it too, even with the flag off.
    await h.store.setLegalHold(held.key, held.versionId, false);
    const byMatter = await planDisposal(h.store, {
      now: h.now(),
      heldByMatter: async (key) => (key === held.key ? ['matter-7'] : []),
    });
    expect(byMatter.skipped).toEqual([
      { key: held.key, versionId: held.versionId, reason: 'matter', detail: 'matter-7' },
    ]);

    const released = await executeDisposal(h.store, policy, { actor: 'ops@acme', now: h.now() });
    expect(released.deleted.map((d) => d.key)).toEqual([held.key]);
    expect(await h.store.head(held.key, { versionId: held.versionId })).toBeUndefined();
  });

  it('reports a version the store refuses as not deleted, and records the exception', async () => {
    const v = await put(h.store, 'records/audit-log/late.json', new Date(h.now().getTime() + DAY));
    h.advance(2 * DAY);
    // Our clock says it is due; the hold placed after the plan (by the store's own rule) refuses it.
    const racing: ObjectStore = {
      description: h.store.description,
      head: (k, o) => h.store.head(k, o),
      get: (k, o) => h.store.get(k, o),
      list: (p) => h.store.list(p),
      listVersions: (p) => h.store.listVersions(p),
      put: async (input) => {
        const out = await h.store.put(input);
        await h.store.setLegalHold(v.key, v.versionId, true);
        return out;
      },
      extendRetention: (k, id, until) => h.store.extendRetention(k, id, until),
      setLegalHold: (k, id, on) => h.store.setLegalHold(k, id, on),
      deleteVersion: (k, id) => h.store.deleteVersion(k, id),
      close: () => h.store.close(),
    };
    const report = await executeDisposal(racing, policy, { actor: 'ops@acme', now: h.now() });
    expect(report.deleted).toEqual([]);
    expect(report.failed).toEqual([
      expect.objectContaining({ key: v.key, versionId: v.versionId, reason: 'held' }),
    ]);
    expect(await h.store.head(v.key, { versionId: v.versionId })).toBeDefined();
    const [completed] = await operatorRecords(h.store, 'disposal.completed');
    expect(completed!.value.data).toMatchObject({
      destructionLog: report.destructionLog,
      deleted: 0,
      notDeleted: [expect.objectContaining({ key: v.key, reason: 'held' })],
    });
  });
});
