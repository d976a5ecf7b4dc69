import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rename, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir, uptime } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalWormStore } from '../src/index.ts';
import { blobName, INLINE_MAX_BYTES, JOURNAL_DIR, keyDir, manifestName } from '../src/local-layout.ts';

let dir: string;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'holdfast-worm-journal-'));
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

interface Acked {
  key: string;
  versionId: string;
  body: string;
}

/** Runs the journal writer until it has acknowledged `count` puts, then kills it (SIGKILL). */
async function writeThenDie(count: number, mode?: 'then-overwrite'): Promise<Acked[]> {
  const fixture = join(import.meta.dirname, 'fixtures', 'journal-writer.ts');
  const expected = mode === 'then-overwrite' ? count + 1 : count;
  const child = spawn(process.execPath, [fixture, dir, String(count), ...(mode ? [mode] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const acked: Acked[] = [];
  for await (const line of createInterface({ input: child.stdout! })) {
    acked.push(JSON.parse(line));
    if (acked.length === expected) break;
  }
  child.kill('SIGKILL');
  await exited;
  return acked;
}

function put(store: LocalWormStore, key: string, text: string) {
  const body = new TextEncoder().encode(text);
  return store.put({
    key,
    body,
    contentType: 'text/plain',
    sha256: createHash('sha256').update(body).digest('hex'),
    retainUntil: new Date(Date.now() + 86_400_000),
    ifNoneMatch: true,
  });
}

describe('LocalWormStore journal', () => {
  it('brings back whole every acknowledged version a power loss tore or lost before the checkpoint', async () => {
    const acked = await writeThenDie(12);
    expect(await readdir(join(dir, JOURNAL_DIR))).toHaveLength(1);

    // What a power loss can do to writes that were never synced: lose or tear any of them. Small
    // versions keep their bytes in the manifest; larger ones have a blob as well.
    const small = acked.filter((a) => a.body.length <= INLINE_MAX_BYTES);
    const large = acked.filter((a) => a.body.length > INLINE_MAX_BYTES);
    expect([small.length, large.length]).toEqual([6, 6]);
    const [lostDir, lostManifest, tornManifest, cutManifest] = small;
    const [lostLargeDir, lostBlob, tornBlob, lostLargeManifest] = large;
    const manifestOf = (a: Acked) => join(keyDir(dir, a.key), manifestName(a.versionId, 0));
    const blobOf = (a: Acked) => join(keyDir(dir, a.key), blobName(a.versionId));
    for (const a of small) expect(await readdir(keyDir(dir, a.key))).toEqual([manifestName(a.versionId, 0)]);
    await rm(keyDir(dir, lostDir!.key), { recursive: true });
    await rm(keyDir(dir, lostLargeDir!.key), { recursive: true });
    await unlink(blobOf(lostBlob!));
    await unlink(manifestOf(lostManifest!));
    await unlink(manifestOf(lostLargeManifest!));
    await truncate(blobOf(tornBlob!), 100);
    await truncate(manifestOf(tornManifest!), 0);
    // Torn inside the bytes it holds: still JSON-looking up to there, but not whole.
    await truncate(manifestOf(cutManifest!), 600);

    const store = await LocalWormStore.open({ dir });
    try {
      for (const { key, versionId, body } of acked) {
        const got = await store.get(key);
        expect(got.head.versionId).toBe(versionId);
        expect(Buffer.from(got.body).toString()).toBe(body);
      }
      // Written back where the put placed them: small ones still without a blob.
      for (const a of small)
        expect(await readdir(keyDir(dir, a.key))).toEqual([manifestName(a.versionId, 0)]);
      for (const a of large)
        expect((await readdir(keyDir(dir, a.key))).sort()).toEqual(
          [manifestName(a.versionId, 0), blobName(a.versionId)].sort(),
        );
      // Replayed, made durable, dropped.
      expect(await readdir(join(dir, JOURNAL_DIR))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('drops a conditional put the crash cut short when another writer has put the key since', async () => {
    // The second object is large enough to have a blob, which the replay must remove.
    const [, cutShort] = await writeThenDie(2);
    // The crash lost the version's manifest: it was never visible, so the key still looks free.
    await unlink(join(keyDir(dir, cutShort!.key), manifestName(cutShort!.versionId, 0)));
    // Another process (here: a second instance that skips replay by being "alive") puts the key.
    const livePath = join(dir, JOURNAL_DIR);
    const [segment] = await readdir(livePath);
    const parked = join(dir, 'parked-segment');
    await writeFile(parked, await readFile(join(livePath, segment!)));
    await unlink(join(livePath, segment!));
    const other = await LocalWormStore.open({ dir });
    const winner = await put(other, cutShort!.key, 'the put that won');
    await other.close();
    await writeFile(join(livePath, segment!), await readFile(parked));

    const store = await LocalWormStore.open({ dir });
    try {
      const versions = [];
      for await (const v of store.listVersions(cutShort!.key)) versions.push(v.versionId);
      expect(versions).toEqual([winner.versionId]);
      expect(await readdir(keyDir(dir, cutShort!.key))).not.toContain(blobName(cutShort!.versionId));
    } finally {
      await store.close();
    }
  });

  it('keeps an acknowledged conditional put whose manifest a power loss lost, though the same writer put the key again', async () => {
    const [first, again] = await writeThenDie(1, 'then-overwrite');
    expect(again!.key).toBe(first!.key);
    // The later version's manifest survived; the first one's (written in place, unsynced) did not.
    await unlink(join(keyDir(dir, first!.key), manifestName(first!.versionId, 0)));

    const store = await LocalWormStore.open({ dir });
    try {
      const versions = [];
      for await (const v of store.listVersions(first!.key)) versions.push(v.versionId);
      expect(versions.sort()).toEqual([first!.versionId, again!.versionId].sort());
      expect(
        Buffer.from((await store.get(first!.key, { versionId: first!.versionId })).body).toString(),
      ).toBe(first!.body);
    } finally {
      await store.close();
    }
  });

  it('settles what format-1 code left beside a small version: an orphan blob goes, a torn blob its manifest names comes back', async () => {
    const acked = await writeThenDie(4);
    const [orphaned, blobbed] = acked.filter((a) => a.body.length <= INLINE_MAX_BYTES);
    const manifestOf = (a: Acked) => join(keyDir(dir, a.key), manifestName(a.versionId, 0));
    const blobOf = (a: Acked) => join(keyDir(dir, a.key), blobName(a.versionId));
    // Format-1 code wrote every version's bytes to a blob first; a power loss then tore the manifest.
    await writeFile(blobOf(orphaned!), orphaned!.body);
    await unlink(manifestOf(orphaned!));
    await writeFile(manifestOf(orphaned!), '{"format":1,"key"');
    // Or its manifest (no bytes inside) survived whole and the blob it points to was torn.
    const { inline: _bytes, ...format1 } = JSON.parse(await readFile(manifestOf(blobbed!), 'utf8'));
    await unlink(manifestOf(blobbed!));
    await writeFile(manifestOf(blobbed!), JSON.stringify(format1));
    await writeFile(blobOf(blobbed!), blobbed!.body.slice(0, 100));

    const store = await LocalWormStore.open({ dir });
    try {
      for (const { key, versionId, body } of [orphaned!, blobbed!]) {
        const got = await store.get(key);
        expect(got.head.versionId).toBe(versionId);
        expect(Buffer.from(got.body).toString()).toBe(body);
      }
      // Rewritten as a put now places it: the bytes in the manifest, the orphan gone.
      expect(await readdir(keyDir(dir, orphaned!.key))).toEqual([manifestName(orphaned!.versionId, 0)]);
      // The surviving manifest decides where the bytes live: its blob, whole again.
      expect(await readFile(blobOf(blobbed!), 'utf8')).toBe(blobbed!.body);
    } finally {
      await store.close();
    }
  });

  it.each([
    // A power loss rebooted the host: the writer started before this boot, whoever has its pid now.
    ['died before a reboot, its pid now a live process', (startMs: number) => startMs - 3_600_000 - uptime()],
    // Same boot: the pid was taken since by a process that started at another time (pid 1, at boot).
    ['died, its pid since taken by a live process', (startMs: number) => startMs],
  ])('replays the journal of a writer that %s', async (_case, ownerStart) => {
    const acked = await writeThenDie(2);
    const [segment] = await readdir(join(dir, JOURNAL_DIR));
    const [, host, , startMs, rest] = /^([0-9a-f]{8})-(\d+)-(\d+)\.(.+)$/.exec(segment!)!;
    // pid 1 is alive for as long as the host (or container) is.
    const renamed = `${host}-1-${Math.round(ownerStart(Number(startMs)))}.${rest}`;
    await rename(join(dir, JOURNAL_DIR, segment!), join(dir, JOURNAL_DIR, renamed));
    for (const { key } of acked) await rm(keyDir(dir, key), { recursive: true });

    const store = await LocalWormStore.open({ dir });
    try {
      for (const { key, versionId } of acked) expect((await store.head(key))?.versionId).toBe(versionId);
      expect(await readdir(join(dir, JOURNAL_DIR))).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('replays the entries before a torn tail and ignores the tail', async () => {
    const acked = await writeThenDie(3);
    const [segment] = await readdir(join(dir, JOURNAL_DIR));
    const path = join(dir, JOURNAL_DIR, segment!);
    // A crash mid-append: the last frame is only half there.
    const bytes = await readFile(path);
    await writeFile(path, bytes.subarray(0, bytes.byteLength - 500));
    for (const { key } of acked) await rm(keyDir(dir, key), { recursive: true });

    const store = await LocalWormStore.open({ dir });
    try {
      expect((await store.head(acked[0]!.key))?.versionId).toBe(acked[0]!.versionId);
      expect((await store.head(acked[1]!.key))?.versionId).toBe(acked[1]!.versionId);
      // Its put was never acknowledged-and-durable as a whole frame: it did not happen.
      expect(await store.head(acked[2]!.key)).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('checkpoints on its interval and on close, leaving no journal behind', async () => {
    const store = await LocalWormStore.open({ dir, checkpointMs: 20 });
    await put(store, 'journal/a.txt', 'a');
    await expect.poll(() => readdir(join(dir, JOURNAL_DIR)), { timeout: 5_000 }).toEqual([]);
    const slow = await LocalWormStore.open({ dir, checkpointMs: 3_600_000 });
    await put(slow, 'journal/b.txt', 'b');
    expect(await readdir(join(dir, JOURNAL_DIR))).toHaveLength(1);
    await slow.close();
    expect(await readdir(join(dir, JOURNAL_DIR))).toEqual([]);
    await store.close();
  });

  it('keeps the journals of two stores in one process apart', async () => {
    // `holdfast dev` runs the archiver and the media fetcher in one process, each with a store.
    const first = await LocalWormStore.open({ dir, checkpointMs: 3_600_000 });
    const second = await LocalWormStore.open({ dir, checkpointMs: 3_600_000 });
    try {
      const written = await Promise.all([
        put(first, 'journal/one.txt', 'one'),
        put(second, 'journal/two.txt', 'two'),
      ]);
      expect(await readdir(join(dir, JOURNAL_DIR))).toHaveLength(2);
      expect((await first.head('journal/two.txt'))?.versionId).toBe(written[1].versionId);
      expect((await second.head('journal/one.txt'))?.versionId).toBe(written[0].versionId);
    } finally {
      await first.close();
      await second.close();
    }
    expect(await readdir(join(dir, JOURNAL_DIR))).toEqual([]);
  });

  it('checkpoints before deleting a version, so a replay can never bring a deleted version back', async () => {
    let now = new Date();
    const store = await LocalWormStore.open({ dir, clock: () => now, checkpointMs: 3_600_000 });
    try {
      const body = new TextEncoder().encode('short-lived');
      const { versionId } = await store.put({
        key: 'journal/short.txt',
        body,
        contentType: 'text/plain',
        sha256: createHash('sha256').update(body).digest('hex'),
        retainUntil: new Date(now.getTime() + 60_000),
      });
      expect(await readdir(join(dir, JOURNAL_DIR))).toHaveLength(1);
      now = new Date(now.getTime() + 120_000);
      await store.deleteVersion('journal/short.txt', versionId);
      expect(await readdir(join(dir, JOURNAL_DIR))).toEqual([]);
      expect(await store.head('journal/short.txt')).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('checkpoints with an fsync per written path where the filesystem cannot be synced whole', async () => {
    // Without `sync -f` (no coreutils, or not Linux) the journal falls back to fsyncing every
    // directory and file it wrote; the outcome must be the same.
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'no-such-bin');
    try {
      const store = await LocalWormStore.open({ dir, checkpointMs: 3_600_000 });
      const written = await put(store, 'journal/deep/er/c.txt', 'c');
      expect(await readdir(join(dir, JOURNAL_DIR))).toHaveLength(1);
      await store.close();
      expect(await readdir(join(dir, JOURNAL_DIR))).toEqual([]);
      const reopened = await LocalWormStore.open({ dir });
      expect((await reopened.head('journal/deep/er/c.txt'))?.versionId).toBe(written.versionId);
      await reopened.close();
    } finally {
      process.env.PATH = path;
    }
  });

  it('refuses a checkpoint interval that is not a positive whole number', async () => {
    await expect(LocalWormStore.open({ dir, checkpointMs: 0 })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_INVALID_STORE_OPTIONS',
      message: expect.stringContaining('checkpointMs'),
    });
  });
});
