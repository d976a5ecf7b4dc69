import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalWormStore } from '../src/index.ts';
import { blobName, hostTag, keyDir, ownerTag, TMP_DIR } from '../src/local-layout.ts';
import { newVersionId } from '../src/version-id.ts';

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'holdfast-worm-crash-'));
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

function put(store: LocalWormStore, key: string, text: string) {
  const body = new TextEncoder().encode(text);
  return store.put({
    key,
    body,
    contentType: 'text/plain',
    sha256: createHash('sha256').update(body).digest('hex'),
    retainUntil: new Date(Date.now() + 86_400_000),
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** The pid of a process that has exited, as a crashed writer's would be. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  return pid!;
}

describe('LocalWormStore crash safety', () => {
  it('a writer killed with SIGKILL mid-put leaves no visible half object, keeps what it acknowledged, and the next put works', async () => {
    const fixture = join(import.meta.dirname, 'fixtures', 'crash-writer.ts');
    const child = spawn(process.execPath, [fixture, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const acked: { key: string; versionId: string }[] = [];
    const exited = new Promise((resolve) => child.once('exit', resolve));
    for await (const line of createInterface({ input: child.stdout! })) {
      acked.push(JSON.parse(line));
      // Kill it while it is busy writing the next object.
      if (acked.length === 8) {
        child.kill('SIGKILL');
        break;
      }
    }
    await exited;
    expect(acked).toHaveLength(8);

    const store = await LocalWormStore.open({ dir });
    try {
      // Everything acknowledged survived; everything visible is whole.
      for (const { key, versionId } of acked) {
        expect((await store.head(key))?.versionId).toBe(versionId);
      }
      const visible = await collect(store.listVersions('crash/'));
      expect(visible.length).toBeGreaterThanOrEqual(acked.length);
      for (const version of visible) {
        const { head, body } = await store.get(version.key, { versionId: version.versionId });
        expect(createHash('sha256').update(body).digest('hex')).toBe(head.sha256);
        expect(body.byteLength).toBe(256 * 1024);
      }
      // The dead writer's temp files were cleaned on open.
      expect(await readdir(join(dir, TMP_DIR))).toEqual([]);
      const next = await put(store, 'crash/after.txt', 'written after the crash');
      expect((await store.head('crash/after.txt'))?.versionId).toBe(next.versionId);
    } finally {
      await store.close();
    }
  });

  it('cleans temp files of a dead process on open, including a blob renamed into place without its manifest', async () => {
    const first = await LocalWormStore.open({ dir });
    await put(first, 'email/acme/out/kept.eml', 'a complete object');
    await first.close();

    // What a writer killed at each step of put leaves behind.
    const owner = ownerTag({ host: hostTag(hostname()), pid: deadPid(), startMs: Date.now() - 60_000 });
    const tmp = join(dir, TMP_DIR);
    const halfWritten = newVersionId();
    await writeFile(join(tmp, `${owner}.${halfWritten}.blob`), randomBytes(1000));
    const orphan = newVersionId();
    const orphanKey = 'email/acme/out/orphan.eml';
    const orphanManifest = {
      format: 1,
      key: orphanKey,
      versionId: orphan,
      size: 5,
      sha256: createHash('sha256').update('hello').digest('hex'),
      contentType: 'message/rfc822',
      metadata: {},
      mode: 'COMPLIANCE',
      retainUntil: new Date(Date.now() + 86_400_000).toISOString(),
      legalHold: false,
      lastModified: new Date().toISOString(),
    };
    await writeFile(join(tmp, `${owner}.${orphan}.manifest.json`), JSON.stringify(orphanManifest));
    await mkdir(keyDir(dir, orphanKey), { recursive: true });
    await writeFile(join(keyDir(dir, orphanKey), blobName(orphan)), 'hello');
    const torn = newVersionId();
    await writeFile(join(tmp, `${owner}.${torn}.manifest.json`), '{"format":1,"key":"ema');

    // A live process's temp file is left alone.
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    children.push(live);
    const liveFile = `${ownerTag({ host: hostTag(hostname()), pid: live.pid!, startMs: Date.now() })}.${newVersionId()}.blob`;
    await writeFile(join(tmp, liveFile), 'in flight');
    // Another host's (container's) pids cannot be checked: its files go only once clearly abandoned.
    const otherHost = hostTag(`not-${hostname()}`);
    const foreignFresh = `${ownerTag({ host: otherHost, pid: 1, startMs: Date.now() })}.${newVersionId()}.blob`;
    await writeFile(join(tmp, foreignFresh), 'maybe in flight');
    const foreignOld = `${ownerTag({ host: otherHost, pid: 1, startMs: Date.now() - 7_200_000 })}.${newVersionId()}.blob`;
    await writeFile(join(tmp, foreignOld), 'abandoned');
    const twoHoursAgo = new Date(Date.now() - 7_200_000);
    await utimes(join(tmp, foreignOld), twoHoursAgo, twoHoursAgo);

    const store = await LocalWormStore.open({ dir });
    try {
      expect((await readdir(tmp)).sort()).toEqual([foreignFresh, liveFile].sort());
      expect(await readdir(keyDir(dir, orphanKey))).toEqual([]);
      expect(await store.head(orphanKey)).toBeUndefined();
      expect((await collect(store.list('email/'))).map((e) => e.key)).toEqual(['email/acme/out/kept.eml']);
      await put(store, orphanKey, 'written after recovery');
      expect(Buffer.from((await store.get(orphanKey)).body).toString()).toBe('written after recovery');
    } finally {
      await store.close();
    }
  });
});

describe('LocalWormStore on disk', () => {
  it('keeps each key in its own directory with read-only (0444) bytes and manifest', async () => {
    const store = await LocalWormStore.open({ dir });
    try {
      const { versionId } = await put(store, 'records/tx/2031/03/01/a.json', '{"amount":1}');
      const node = keyDir(dir, 'records/tx/2031/03/01/a.json');
      expect(node).toBe(join(dir, 'objects', 'records', 'tx', '2031', '03', '01', 'a.json'));
      const names = (await readdir(node)).sort();
      expect(names).toEqual([`@${versionId}.0.json`, `@${versionId}.blob`]);
      for (const name of names) expect((await stat(join(node, name))).mode & 0o777).toBe(0o444);
      expect(keyDir(dir, '@x/%y')).toBe(join(dir, 'objects', '%@x', '%%y'));
    } finally {
      await store.close();
    }
  });

  it('detects bytes changed on disk with StoreCorruptError', async () => {
    const store = await LocalWormStore.open({ dir });
    try {
      const { versionId } = await put(store, 'audit/1.json', 'original');
      const blob = join(keyDir(dir, 'audit/1.json'), blobName(versionId));
      await rm(blob);
      await writeFile(blob, 'tampered');
      await expect(store.get('audit/1.json')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_STORE_CORRUPT' });
    } finally {
      await store.close();
    }
  });

  it('never shortens retention or loses a hold when two store instances change one version at once', async () => {
    const a = await LocalWormStore.open({ dir });
    const b = await LocalWormStore.open({ dir });
    try {
      const { versionId } = await put(a, 'contracts/c-1.pdf', 'signed');
      const base = Math.ceil(Date.now() / 1000) * 1000 + 2 * 86_400_000;
      const dates = Array.from({ length: 20 }, (_, i) => new Date(base + ((i * 7) % 20) * 1000));
      const results = await Promise.allSettled([
        ...dates.map((d, i) => (i % 2 ? a : b).extendRetention('contracts/c-1.pdf', versionId, d)),
        b.setLegalHold('contracts/c-1.pdf', versionId, true),
      ]);
      for (const r of results) {
        if (r.status === 'rejected')
          expect(r.reason).toMatchObject({ code: 'HOLDFAST_ERR_RETENTION_SHORTEN' });
      }
      const head = await b.head('contracts/c-1.pdf');
      expect(head?.retainUntil).toEqual(new Date(base + 19 * 1000));
      expect(head?.legalHold).toBe(true);
      const node = await readdir(keyDir(dir, 'contracts/c-1.pdf'));
      expect(node.filter((n) => n.endsWith('.json'))).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('refuses use after close with StoreClosedError', async () => {
    const store = await LocalWormStore.open({ dir });
    await store.close();
    await expect(store.head('a')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_STORE_CLOSED' });
  });

  it('refuses a directory holding another format', async () => {
    await writeFile(join(dir, 'holdfast-worm-store.json'), '{"format":"something-else","version":9}');
    await expect(LocalWormStore.open({ dir })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_INVALID_STORE_OPTIONS',
    });
  });
});
