import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalWormStore } from '../src/index.ts';
import { blobName, hostTag, INLINE_MAX_BYTES, keyDir, ownerTag, TMP_DIR } from '../src/local-layout.ts';
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
  it('keeps each key in its own directory, read-only (0444): a small version as its manifest alone, a larger one with a blob', async () => {
    const store = await LocalWormStore.open({ dir });
    try {
      const small = await put(store, 'records/tx/2031/03/01/a.json', '{"amount":1}');
      const node = keyDir(dir, 'records/tx/2031/03/01/a.json');
      expect(node).toBe(join(dir, 'objects', 'records', 'tx', '2031', '03', '01', 'a.json'));
      expect(await readdir(node)).toEqual([`@${small.versionId}.0.json`]);
      const manifest = JSON.parse(await readFile(join(node, `@${small.versionId}.0.json`), 'utf8'));
      expect(Buffer.from(manifest.inline, 'base64').toString()).toBe('{"amount":1}');

      const largeText = 'x'.repeat(INLINE_MAX_BYTES + 1);
      const large = await put(store, 'records/tx/2031/03/01/b.json', largeText);
      const largeNode = keyDir(dir, 'records/tx/2031/03/01/b.json');
      expect((await readdir(largeNode)).sort()).toEqual([
        `@${large.versionId}.0.json`,
        `@${large.versionId}.blob`,
      ]);
      expect(await readFile(join(largeNode, `@${large.versionId}.blob`), 'utf8')).toBe(largeText);
      expect(
        JSON.parse(await readFile(join(largeNode, `@${large.versionId}.0.json`), 'utf8')),
      ).not.toHaveProperty('inline');
      for (const [at, id] of [
        [node, small.versionId],
        [largeNode, large.versionId],
      ] as const) {
        for (const name of await readdir(at)) {
          expect(name.startsWith(`@${id}.`)).toBe(true);
          expect((await stat(join(at, name))).mode & 0o777).toBe(0o444);
        }
      }
      expect(keyDir(dir, '@x/%y')).toBe(join(dir, 'objects', '%@x', '%%y'));
    } finally {
      await store.close();
    }
  });

  it('detects bytes changed on disk with StoreCorruptError, in a blob or in a manifest', async () => {
    const store = await LocalWormStore.open({ dir });
    try {
      const large = await put(store, 'audit/1.json', 'original'.repeat(1000));
      const blob = join(keyDir(dir, 'audit/1.json'), blobName(large.versionId));
      await rm(blob);
      await writeFile(blob, 'tampered');
      await expect(store.get('audit/1.json')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_STORE_CORRUPT' });

      const small = await put(store, 'audit/2.json', 'original');
      const path = join(keyDir(dir, 'audit/2.json'), `@${small.versionId}.0.json`);
      const manifest = JSON.parse(await readFile(path, 'utf8'));
      await rm(path);
      await writeFile(
        path,
        JSON.stringify({ ...manifest, inline: Buffer.from('tampered').toString('base64') }),
      );
      await expect(store.get('audit/2.json')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_STORE_CORRUPT' });
    } finally {
      await store.close();
    }
  });

  it('keeps no bytes of a disposed version on disk, a small one held in its manifest included', async () => {
    let now = new Date('2031-01-01T00:00:00Z');
    const store = await LocalWormStore.open({ dir, clock: () => now });
    try {
      const body = new TextEncoder().encode('dispose of me');
      const { versionId } = await store.put({
        key: 'audit/3.json',
        body,
        contentType: 'text/plain',
        sha256: createHash('sha256').update(body).digest('hex'),
        retainUntil: new Date('2031-01-02T00:00:00Z'),
      });
      now = new Date('2031-01-03T00:00:00Z');
      await store.deleteVersion('audit/3.json', versionId);
      const node = keyDir(dir, 'audit/3.json');
      const left = await readdir(node).catch(() => []);
      for (const name of left)
        expect(await readFile(join(node, name), 'utf8')).not.toContain(Buffer.from(body).toString('base64'));
      await expect(store.get('audit/3.json')).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_OBJECT_NOT_FOUND',
      });
    } finally {
      await store.close();
    }
  });

  it('opens a format-1 store (bytes always in blobs) as it is, reads it, and marks it format 2', async () => {
    const store = await LocalWormStore.open({ dir });
    const large = await put(store, 'old/1.json', 'y'.repeat(INLINE_MAX_BYTES + 10));
    await store.close();
    // What format-1 code wrote for a small version: a blob and a manifest without the bytes.
    const node = keyDir(dir, 'old/1.json');
    const text = 'written by format 1';
    const manifest = JSON.parse(await readFile(join(node, `@${large.versionId}.0.json`), 'utf8'));
    const oldVersion = newVersionId();
    const oldNode = keyDir(dir, 'old/2.json');
    await mkdir(oldNode, { recursive: true });
    await writeFile(join(oldNode, `@${oldVersion}.blob`), text);
    await writeFile(
      join(oldNode, `@${oldVersion}.0.json`),
      JSON.stringify({
        ...manifest,
        key: 'old/2.json',
        versionId: oldVersion,
        size: text.length,
        sha256: createHash('sha256').update(text).digest('hex'),
      }),
    );
    const marker = join(dir, 'holdfast-worm-store.json');
    await rm(marker);
    await writeFile(marker, '{"format":"holdfast-local-worm-store","version":1}\n');

    const reopened = await LocalWormStore.open({ dir });
    try {
      expect(Buffer.from((await reopened.get('old/2.json')).body).toString()).toBe(text);
      expect((await reopened.get('old/1.json')).head.versionId).toBe(large.versionId);
      expect(JSON.parse(await readFile(marker, 'utf8'))).toEqual({
        format: 'holdfast-local-worm-store',
        version: 2,
      });
    } finally {
      await reopened.close();
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
