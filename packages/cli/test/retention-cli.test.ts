import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { archiveEvent } from '@holdfast/archiver';
import { newEvent, RetentionPolicy, sha256Hex } from '@holdfast/core';
import { startS3Server } from '@holdfast/testkit/s3-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore, S3WormStore } from '@holdfast/worm-store';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const MAIN = resolve(import.meta.dirname, '../src/main.ts');
const DAY = 86_400_000;

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, HOLDFAST_LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

describe('holdfast retention extend / dispose (spawned; local store, loopback S3)', () => {
  let dir: { path: string; remove(): Promise<void> };
  let storeDir: string;
  let env: Record<string, string>;
  beforeEach(async () => {
    dir = await tempDir('holdfast-cli-retention-');
    storeDir = join(dir.path, 'store');
    env = { HOLDFAST_STORE: `local:${storeDir}` };
  });
  afterEach(async () => {
    await dir.remove();
  });

  /** Open the store for a moment (the CLI opens it itself; the local store allows both). */
  const withStore = async <T>(fn: (store: LocalWormStore) => Promise<T>): Promise<T> => {
    const store = await LocalWormStore.open({ dir: storeDir });
    try {
      return await fn(store);
    } finally {
      await store.close();
    }
  };

  const snapshot = () =>
    withStore(async (store) => {
      const out: string[] = [];
      for await (const v of store.listVersions('')) {
        const head = await store.head(v.key, { versionId: v.versionId });
        out.push(`${v.key} ${v.versionId} ${head?.retainUntil?.toISOString()} ${head?.legalHold}`);
      }
      return out;
    });

  it('extends a subject with --json, refuses a shorter date naming the object and its date, and refuses bad input changing nothing', async () => {
    const occurredAt = new Date(Date.now() - 10 * DAY);
    const archived = await withStore((store) =>
      archiveEvent(
        store,
        RetentionPolicy.defaults(),
        newEvent({
          type: 'transaction.posted',
          occurredAt,
          project: 'acme',
          channel: 'record',
          direction: 'internal',
          subject: 'acct-77',
          category: 'financial-transaction',
          data: { amount: '10.00' },
        }),
      ),
    );
    const current = archived.retainUntil;
    await writeFile(join(dir.path, 'broken.yaml'), 'categories: [\n');
    const before = await snapshot();

    const [shorter, badDate, noActor, unknownCategory, malformed, noMode, executeNoActor] = await Promise.all(
      [
        run(['retention', 'extend', '--subject', 'acct-77', '--until', '2030-01-01', '--actor', 'ops'], env),
        run(
          ['retention', 'extend', '--subject', 'acct-77', '--until', 'next tuesday', '--actor', 'ops'],
          env,
        ),
        run(['retention', 'extend', '--subject', 'acct-77', '--until', '2040-01-01'], env),
        run(
          [
            'retention',
            'extend',
            '--subject',
            'acct-77',
            '--until',
            '2040-01-01',
            '--category',
            'nope',
            '--actor',
            'ops',
          ],
          env,
        ),
        run(['retention', 'extend', '--subject', 'acct-77', '--until', '2040-01-01', '--actor', 'ops'], {
          ...env,
          HOLDFAST_RETENTION_POLICY: join(dir.path, 'broken.yaml'),
        }),
        run(['dispose'], env),
        run(['dispose', '--execute'], env),
      ],
    );

    expect(shorter.code).toBe(1);
    expect(shorter.stderr).toContain(archived.key);
    expect(shorter.stderr).toContain(`retained until ${current}`);
    expect(shorter.stderr).toContain('HOLDFAST_ERR_RETENTION_SHORTEN');
    expect(badDate.code).toBe(1);
    expect(badDate.stderr).toMatch(/--until: "next tuesday" is not a date.*HOLDFAST_ERR_VALIDATION/);
    expect(noActor.code).toBe(1);
    expect(noActor.stderr).toMatch(/--actor: required \(or set HOLDFAST_ACTOR\).*HOLDFAST_ERR_VALIDATION/);
    expect(unknownCategory.stderr).toMatch(
      /--category: unknown retention category "nope" \(policy built-in defaults has: .*financial-transaction/,
    );
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(
      /retention policy .*broken\.yaml is not valid YAML[\s\S]*HOLDFAST_ERR_RETENTION_POLICY/,
    );
    expect(noMode.stderr).toMatch(/give exactly one: --dry-run to list, --execute to delete/);
    expect(executeNoActor.stderr).toMatch(/--actor: required/);
    for (const r of [badDate, noActor, unknownCategory, malformed, noMode, executeNoActor])
      expect(r.code).toBe(1);
    expect(await snapshot()).toEqual(before);

    const ok = await run(['retention', 'extend', '--subject', 'acct-77', '--until', '2045-06-30', '--json'], {
      ...env,
      HOLDFAST_ACTOR: 'compliance@acme',
    });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout);
    expect(report).toMatchObject({
      subject: 'acct-77',
      until: '2045-06-30T00:00:00.000Z',
      actor: 'compliance@acme',
      matched: 1,
      extended: [
        { key: archived.key, versionId: archived.versionId, from: current, to: '2045-06-30T00:00:00.000Z' },
      ],
    });
    await withStore(async (store) => {
      expect((await store.head(archived.key))!.retainUntil!.toISOString()).toBe('2045-06-30T00:00:00.000Z');
      const event = JSON.parse(Buffer.from((await store.get(report.event.key)).body).toString('utf8'));
      expect(event).toMatchObject({
        type: 'retention.extended',
        subject: 'acct-77',
        data: { actor: 'compliance@acme', until: '2045-06-30T00:00:00.000Z' },
      });
    });
  });

  it('extend fails with exit 1 naming the objects S3 refuses to read, and changes nothing', async () => {
    const server = await startS3Server();
    const credentials = { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' };
    const s3 = await S3WormStore.open({
      bucket: server.bucket,
      endpoint: server.endpoint,
      region: 'us-east-1',
      credentials,
    });
    try {
      const archived = await archiveEvent(
        s3,
        RetentionPolicy.defaults(),
        newEvent({
          type: 'transaction.posted',
          occurredAt: new Date(Date.now() - 10 * DAY),
          project: 'acme',
          channel: 'record',
          direction: 'internal',
          subject: 'acct-77',
          category: 'financial-transaction',
          data: { amount: '10.00' },
        }),
      );
      // The operator's role lacks s3:GetObject: no object can be read to see what it is about.
      server.setDeniedOperations(['GetObject']);
      const before = server.storedVersions().map((v) => `${v.key} ${v.versionId}`);
      const result = await run(
        ['retention', 'extend', '--subject', 'acct-77', '--until', '2045-06-30', '--actor', 'ops'],
        {
          HOLDFAST_STORE: `s3://${server.bucket}`,
          HOLDFAST_S3_ENDPOINT: server.endpoint,
          AWS_REGION: 'us-east-1',
          AWS_ACCESS_KEY_ID: credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        },
      );
      expect(result.stdout).toBe('');
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^holdfast: 1 archived object\(s\) could not be read, so whether they are about subject "acct-77" is unknown; nothing was changed: /,
      );
      expect(result.stderr).toContain(archived.key);
      expect(result.stderr).toContain('(HOLDFAST_ERR_OBJECTS_UNREADABLE)');
      server.setDeniedOperations([]);
      // No retention.extended record, and the object keeps its retention.
      expect(server.storedVersions().map((v) => `${v.key} ${v.versionId}`)).toEqual(before);
      expect((await s3.head(archived.key))!.retainUntil!.toISOString()).toBe(archived.retainUntil);
    } finally {
      await s3.close();
      await server.close();
    }
  });

  it('dispose --dry-run lists exactly what --execute deletes; a held version is kept', async () => {
    // Short retention written straight to the store, then waited out: real time, no clock hooks.
    const due = new Date(Date.now() + 1500);
    const written = await withStore(async (store) => {
      const out = [];
      for (const name of ['a', 'b', 'held']) {
        const body = Buffer.from(`{"n":"${name}"}`);
        out.push(
          await store.put({
            key: `records/audit-log/2026/01/01/${name}.json`,
            body,
            sha256: sha256Hex(body),
            contentType: 'application/json',
            retainUntil: due,
          }),
        );
      }
      await store.setLegalHold(out[2]!.key, out[2]!.versionId, true);
      return out;
    });
    await new Promise((r) => setTimeout(r, Math.max(0, due.getTime() - Date.now() + 50)));

    const dry = await run(['dispose', '--dry-run', '--json'], env);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.mode).toBe('dry-run');
    expect(plan.candidates.map((c: { key: string }) => c.key)).toEqual([written[0]!.key, written[1]!.key]);
    expect(plan.skipped).toEqual([
      { key: written[2]!.key, versionId: written[2]!.versionId, reason: 'legal-hold' },
    ]);
    expect(plan.destructionLog).toBeNull();

    const exec = await run(['dispose', '--execute', '--actor', 'records-officer', '--json'], env);
    expect(exec.code).toBe(0);
    const done = JSON.parse(exec.stdout);
    expect(done.deleted).toEqual(plan.candidates);
    expect(done.destructionLog.key).toMatch(/^records\/audit-log-admin\//);
    await withStore(async (store) => {
      expect(await store.head(written[0]!.key)).toBeUndefined();
      expect(await store.head(written[1]!.key)).toBeUndefined();
      expect((await store.head(written[2]!.key))!.legalHold).toBe(true);
      const log = JSON.parse(Buffer.from((await store.get(done.destructionLog.key)).body).toString('utf8'));
      expect(log).toMatchObject({
        type: 'disposal.executed',
        data: { actor: 'records-officer', count: 2, policy: { source: 'built-in defaults' } },
      });
      expect(log.data.objects).toEqual(plan.candidates);
    });

    const human = await run(['dispose', '--dry-run'], env);
    expect(human.stdout).toContain('dry run: 0 object version(s) would be deleted');
    expect(human.stdout).toContain(`kept ${written[2]!.key}`);
  });
});
