/**
 * The one ObjectStore contract, run against every adapter (see the `*-contract.test.ts` files).
 * Each test gets a fresh store from the factory and works under its own key prefix, so the suite
 * can also run against a shared real bucket.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ObjectStore, ObjectVersionSummary, PutObjectInput } from '../src/index.ts';

export interface ContractContext {
  store: ObjectStore;
  /** The "now" the store (and its server) use. */
  now(): Date;
  /** Moves that "now" forward; absent where time cannot be moved (a real S3 endpoint). */
  advance?: (ms: number) => void;
  /** Unique per test, ends with `/`. */
  prefix: string;
  close(): Promise<void>;
}

export interface ContractOptions {
  /** Tests that must move past a retain-until date run only when the factory can move time. */
  canAdvanceClock: boolean;
  /** Skip the whole block (e.g. no real endpoint configured). */
  skip?: boolean;
}

// Short retentions: objects written to a real endpoint stay locked for at most six hours.
const HOUR = 3_600_000;

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Whole seconds, so servers that keep retain-until to the second round-trip it exactly. */
export function secondsFrom(now: Date, ms: number): Date {
  return new Date(Math.ceil((now.getTime() + ms) / 1000) * 1000);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function objectStoreContract(
  name: string,
  open: () => Promise<ContractContext>,
  options: ContractOptions,
): void {
  describe.skipIf(options.skip ?? false)(`ObjectStore contract: ${name}`, () => {
    let ctx: ContractContext;
    let files: string;

    beforeEach(async () => {
      ctx = await open();
      files = await mkdtemp(join(tmpdir(), 'holdfast-contract-files-'));
    });

    afterEach(async () => {
      await ctx?.close();
      await rm(files, { recursive: true, force: true });
    });

    /** A file of `bytes` for a file-body put. */
    const file = async (name: string, bytes: Uint8Array) => {
      const path = join(files, name);
      await writeFile(path, bytes);
      return { path, size: bytes.byteLength };
    };

    const key = (name: string) => `${ctx.prefix}${name}`;
    const input = (name: string, text: string, extra: Partial<PutObjectInput> = {}): PutObjectInput => {
      const body = new TextEncoder().encode(text);
      return {
        key: key(name),
        body,
        contentType: 'text/plain',
        sha256: sha256(body),
        retainUntil: secondsFrom(ctx.now(), 2 * HOUR),
        ...extra,
      };
    };

    it('round-trips bytes, sha256, content type, metadata and COMPLIANCE retention through put, head and get', async () => {
      const retainUntil = secondsFrom(ctx.now(), 5 * HOUR);
      const put = input('msg/one.eml', 'Subject: hello\r\n\r\nbody', {
        contentType: 'message/rfc822',
        retainUntil,
        metadata: { project: 'acme', 'event-id': '0190a6f1' },
      });
      const written = await ctx.store.put(put);
      expect(written).toEqual({ key: put.key, versionId: expect.any(String), sha256: put.sha256 });

      const head = await ctx.store.head(put.key);
      expect(head).toEqual({
        key: put.key,
        versionId: written.versionId,
        size: (put.body as Uint8Array).byteLength,
        sha256: put.sha256,
        contentType: 'message/rfc822',
        mode: 'COMPLIANCE',
        retainUntil,
        legalHold: false,
        lastModified: expect.any(Date),
        metadata: { project: 'acme', 'event-id': '0190a6f1' },
      });

      const got = await ctx.store.get(put.key, { versionId: written.versionId });
      expect(Buffer.from(got.body).toString()).toBe('Subject: hello\r\n\r\nbody');
      expect(got.head).toEqual(head);
    });

    it('reports an absent key as undefined from head and ObjectNotFoundError from get', async () => {
      expect(await ctx.store.head(key('absent'))).toBeUndefined();
      await expect(ctx.store.get(key('absent'))).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_OBJECT_NOT_FOUND',
        name: 'ObjectNotFoundError',
      });
    });

    it('creates a new version on every put; head and get without a versionId see the latest', async () => {
      const first = await ctx.store.put(input('doc', 'v1'));
      const second = await ctx.store.put(input('doc', 'v2'));
      expect(second.versionId).not.toBe(first.versionId);
      expect((await ctx.store.head(key('doc')))?.versionId).toBe(second.versionId);
      expect(Buffer.from((await ctx.store.get(key('doc'))).body).toString()).toBe('v2');
      expect(
        Buffer.from((await ctx.store.get(key('doc'), { versionId: first.versionId })).body).toString(),
      ).toBe('v1');
    });

    it('refuses a conditional put on an existing key with ObjectExistsError and writes nothing', async () => {
      await ctx.store.put(input('once', 'first', { ifNoneMatch: true }));
      await expect(ctx.store.put(input('once', 'second', { ifNoneMatch: true }))).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_OBJECT_EXISTS',
        name: 'ObjectExistsError',
      });
      const versions = await collect(ctx.store.listVersions(key('once')));
      expect(versions).toHaveLength(1);
      expect(Buffer.from((await ctx.store.get(key('once'))).body).toString()).toBe('first');
    });

    it('refuses a body whose sha256 does not match with ChecksumMismatchError and writes nothing', async () => {
      const bad = input('tampered', 'the real body', {
        sha256: sha256(new TextEncoder().encode('another body')),
      });
      await expect(ctx.store.put(bad)).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_CHECKSUM_MISMATCH',
        name: 'ChecksumMismatchError',
      });
      expect(await ctx.store.head(bad.key)).toBeUndefined();
    });

    it('streams a file body (several read chunks long) and round-trips its bytes, size and sha256', async () => {
      // Larger than a file stream's 64 KiB chunks, and not a multiple of them.
      const bytes = randomBytes(3 * 65_536 + 1234);
      const body = await file('media.bin', bytes);
      const retainUntil = secondsFrom(ctx.now(), 2 * HOUR);
      const written = await ctx.store.put({
        key: key('media/clip.bin'),
        body,
        contentType: 'video/mp4',
        sha256: sha256(bytes),
        retainUntil,
        ifNoneMatch: true,
        metadata: { 'media-index': '0' },
      });
      expect(written).toEqual({
        key: key('media/clip.bin'),
        versionId: expect.any(String),
        sha256: sha256(bytes),
      });
      const head = await ctx.store.head(key('media/clip.bin'));
      expect(head).toMatchObject({
        versionId: written.versionId,
        size: bytes.byteLength,
        sha256: sha256(bytes),
        contentType: 'video/mp4',
        mode: 'COMPLIANCE',
        retainUntil,
        legalHold: false,
        metadata: { 'media-index': '0' },
      });
      const got = await ctx.store.get(key('media/clip.bin'));
      expect(Buffer.compare(Buffer.from(got.body), bytes)).toBe(0);
    });

    it('places a legal hold on a file body at put time and refuses a second conditional put of it', async () => {
      const bytes = randomBytes(1000);
      const body = await file('held.bin', bytes);
      const put: PutObjectInput = {
        key: key('held-file'),
        body,
        contentType: 'application/octet-stream',
        sha256: sha256(bytes),
        retainUntil: secondsFrom(ctx.now(), 2 * HOUR),
        legalHold: true,
        ifNoneMatch: true,
      };
      await ctx.store.put(put);
      expect((await ctx.store.head(key('held-file')))?.legalHold).toBe(true);
      await expect(ctx.store.put(put)).rejects.toMatchObject({ code: 'HOLDFAST_ERR_OBJECT_EXISTS' });
      expect(await collect(ctx.store.listVersions(key('held-file')))).toHaveLength(1);
    });

    it('refuses a file body whose sha256 does not match with ChecksumMismatchError and writes nothing', async () => {
      const bytes = randomBytes(2 * 65_536);
      const body = await file('tampered.bin', bytes);
      await expect(
        ctx.store.put({
          key: key('tampered-file'),
          body,
          contentType: 'application/octet-stream',
          sha256: sha256(randomBytes(16)),
          retainUntil: secondsFrom(ctx.now(), 2 * HOUR),
        }),
      ).rejects.toMatchObject({ code: 'HOLDFAST_ERR_CHECKSUM_MISMATCH', name: 'ChecksumMismatchError' });
      expect(await ctx.store.head(key('tampered-file'))).toBeUndefined();
    });

    it('refuses a file body that is missing or not of the declared size before writing anything', async () => {
      const bytes = randomBytes(100);
      const body = await file('sized.bin', bytes);
      const put = (b: { path: string; size: number }) =>
        ctx.store.put({
          key: key('sized-file'),
          body: b,
          contentType: 'application/octet-stream',
          sha256: sha256(bytes),
          retainUntil: secondsFrom(ctx.now(), 2 * HOUR),
        });
      await expect(put({ path: body.path, size: 99 })).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_INVALID_OBJECT_INPUT',
        field: 'body.size',
      });
      await expect(put({ path: join(files, 'absent.bin'), size: 100 })).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_INVALID_OBJECT_INPUT',
        field: 'body.path',
      });
      await expect(put({ path: body.path, size: -1 })).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_INVALID_OBJECT_INPUT',
        field: 'body.size',
      });
      expect(await ctx.store.head(key('sized-file'))).toBeUndefined();
    });

    it('refuses to delete a retained version with ObjectRetainedError naming the retain-until date', async () => {
      const retainUntil = secondsFrom(ctx.now(), 2 * HOUR);
      const { versionId } = await ctx.store.put(input('kept', 'keep me', { retainUntil }));
      const err = await ctx.store.deleteVersion(key('kept'), versionId).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'HOLDFAST_ERR_OBJECT_RETAINED', name: 'ObjectRetainedError' });
      expect((err as Error).message).toContain(retainUntil.toISOString());
      expect((await ctx.store.head(key('kept'), { versionId }))?.versionId).toBe(versionId);
    });

    it('extends retention, treats an equal date as a no-op and refuses shortening with RetentionShortenError naming the current date', async () => {
      const { versionId } = await ctx.store.put(input('contract.pdf', 'signed'));
      const extended = secondsFrom(ctx.now(), 6 * HOUR);
      await ctx.store.extendRetention(key('contract.pdf'), versionId, extended);
      expect((await ctx.store.head(key('contract.pdf')))?.retainUntil).toEqual(extended);

      await ctx.store.extendRetention(key('contract.pdf'), versionId, new Date(extended));
      expect((await ctx.store.head(key('contract.pdf')))?.retainUntil).toEqual(extended);

      const shorter = secondsFrom(ctx.now(), 3 * HOUR);
      const err = await ctx.store
        .extendRetention(key('contract.pdf'), versionId, shorter)
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'HOLDFAST_ERR_RETENTION_SHORTEN', name: 'RetentionShortenError' });
      expect((err as Error).message).toContain(extended.toISOString());
      expect((await ctx.store.head(key('contract.pdf')))?.retainUntil).toEqual(extended);
    });

    it('records a legal hold placed at put time and reports it released', async () => {
      const { versionId } = await ctx.store.put(input('held-at-put', 'evidence', { legalHold: true }));
      expect((await ctx.store.head(key('held-at-put')))?.legalHold).toBe(true);
      await ctx.store.setLegalHold(key('held-at-put'), versionId, false);
      expect((await ctx.store.head(key('held-at-put')))?.legalHold).toBe(false);
    });

    it.skipIf(!options.canAdvanceClock)(
      'keeps a held version after its retention ends, and deletes it once the hold is released',
      async () => {
        const retainUntil = secondsFrom(ctx.now(), HOUR);
        const { versionId } = await ctx.store.put(input('litigation', 'evidence', { retainUntil }));
        await ctx.store.setLegalHold(key('litigation'), versionId, true);
        expect((await ctx.store.head(key('litigation')))?.legalHold).toBe(true);

        ctx.advance!(2 * HOUR);
        await expect(ctx.store.deleteVersion(key('litigation'), versionId)).rejects.toMatchObject({
          code: 'HOLDFAST_ERR_OBJECT_HELD',
          name: 'ObjectHeldError',
        });
        expect(await ctx.store.head(key('litigation'), { versionId })).toBeDefined();

        await ctx.store.setLegalHold(key('litigation'), versionId, false);
        await ctx.store.deleteVersion(key('litigation'), versionId);
        expect(await ctx.store.head(key('litigation'), { versionId })).toBeUndefined();
      },
    );

    it.skipIf(!options.canAdvanceClock)(
      'deletes an unheld version once its retention has passed, and the previous version becomes current',
      async () => {
        const older = await ctx.store.put(
          input('expiring', 'old', { retainUntil: secondsFrom(ctx.now(), 3 * HOUR) }),
        );
        const newer = await ctx.store.put(
          input('expiring', 'new', { retainUntil: secondsFrom(ctx.now(), HOUR) }),
        );
        ctx.advance!(2 * HOUR);
        await ctx.store.deleteVersion(key('expiring'), newer.versionId);
        expect(await ctx.store.head(key('expiring'), { versionId: newer.versionId })).toBeUndefined();
        expect((await ctx.store.head(key('expiring')))?.versionId).toBe(older.versionId);
        await expect(ctx.store.deleteVersion(key('expiring'), older.versionId)).rejects.toMatchObject({
          code: 'HOLDFAST_ERR_OBJECT_RETAINED',
        });
        // Deleting what is already gone succeeds, as on S3.
        await ctx.store.deleteVersion(key('expiring'), newer.versionId);
      },
    );

    it('lists current objects under a prefix in lexicographic key order', async () => {
      for (const name of ['b', 'a/2', 'a/1', 'a-c', 'ab', 'a', '@at/x', '%pct']) {
        await ctx.store.put(input(`list/${name}`, `body of ${name}`));
      }
      await ctx.store.put(input('list/a/1', 'second version of a/1'));
      await ctx.store.put(input('other/x', 'not under the prefix'));

      const all = await collect(ctx.store.list(key('list/')));
      expect(all.map((e) => e.key.slice(ctx.prefix.length))).toEqual([
        'list/%pct',
        'list/@at/x',
        'list/a',
        'list/a-c',
        'list/a/1',
        'list/a/2',
        'list/ab',
        'list/b',
      ]);
      const a1 = all.find((e) => e.key === key('list/a/1'));
      expect(a1).toEqual({
        key: key('list/a/1'),
        size: 'second version of a/1'.length,
        lastModified: expect.any(Date),
      });

      const partial = await collect(ctx.store.list(key('list/a')));
      expect(partial.map((e) => e.key.slice(ctx.prefix.length))).toEqual([
        'list/a',
        'list/a-c',
        'list/a/1',
        'list/a/2',
        'list/ab',
      ]);
      const folder = await collect(ctx.store.list(key('list/a/')));
      expect(folder.map((e) => e.key.slice(ctx.prefix.length))).toEqual(['list/a/1', 'list/a/2']);
      expect(await collect(ctx.store.list(key('nothing-here/')))).toEqual([]);
    });

    it('lists every version under a prefix, keys in order and the newest version of each first', async () => {
      const x1 = await ctx.store.put(input('versions/x', 'x1'));
      const y1 = await ctx.store.put(input('versions/y', 'y1'));
      const x2 = await ctx.store.put(input('versions/x', 'x2 is longer'));
      await ctx.store.put(input('elsewhere/x', 'not listed'));

      const versions = await collect(ctx.store.listVersions(key('versions/')));
      const expected: ObjectVersionSummary[] = [
        {
          key: key('versions/x'),
          versionId: x2.versionId,
          size: 12,
          lastModified: expect.any(Date),
          isLatest: true,
          deleteMarker: false,
        },
        {
          key: key('versions/x'),
          versionId: x1.versionId,
          size: 2,
          lastModified: expect.any(Date),
          isLatest: false,
          deleteMarker: false,
        },
        {
          key: key('versions/y'),
          versionId: y1.versionId,
          size: 2,
          lastModified: expect.any(Date),
          isLatest: true,
          deleteMarker: false,
        },
      ];
      expect(versions).toEqual(expected);
    });

    it('refuses invalid keys, dates and digests with typed errors before writing anything', async () => {
      for (const bad of ['', '/abs', 'a/../b', 'a//b', 'trailing/', 'ctl\u0007char', 'nul\u0000']) {
        await expect(
          ctx.store.put({ ...input('x', 'x'), key: bad }),
          JSON.stringify(bad),
        ).rejects.toMatchObject({
          code: 'HOLDFAST_ERR_INVALID_KEY',
        });
      }
      await expect(ctx.store.put(input('bad-digest', 'x', { sha256: 'ABC' }))).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_INVALID_OBJECT_INPUT',
        field: 'sha256',
      });
      await expect(
        ctx.store.put(input('past', 'x', { retainUntil: new Date(ctx.now().getTime() - 1000) })),
      ).rejects.toMatchObject({ code: 'HOLDFAST_ERR_INVALID_OBJECT_INPUT', field: 'retainUntil' });
      await expect(
        ctx.store.put(input('nan', 'x', { retainUntil: new Date(Number.NaN) })),
      ).rejects.toMatchObject({
        code: 'HOLDFAST_ERR_INVALID_OBJECT_INPUT',
        field: 'retainUntil',
      });
      await expect(ctx.store.head('../escape')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_INVALID_KEY' });
      expect(await collect(ctx.store.list(ctx.prefix))).toEqual([]);
    });
  });
}
