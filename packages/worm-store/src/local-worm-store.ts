import { randomUUID } from 'node:crypto';
import { type Dirent, readFileSync, writeFile as writeFileCallback } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { HoldfastError } from '@holdfast/core';
import { copyFileSynced, fsyncDir, mkdirDurable, READ_ONLY, writeFileSynced } from './durable-fs.ts';
import {
  ChecksumMismatchError,
  InvalidKeyError,
  InvalidObjectInputError,
  InvalidStoreOptionsError,
  ObjectExistsError,
  ObjectHeldError,
  ObjectNotFoundError,
  ObjectRetainedError,
  RetentionShortenError,
  StoreClosedError,
  StoreCorruptError,
  StoreUnavailableError,
} from './errors.ts';
import { checkFileBody, isFileBody } from './file-body.ts';
import { KeyedMutex } from './keyed-mutex.ts';
import { type JournalEntry, readJournal, StoreJournal } from './local-journal.ts';
import {
  blobName,
  decodeSegment,
  FORMAT,
  FORMAT_FILE,
  hostTag,
  INLINE_MAX_BYTES,
  JOURNAL_DIR,
  keyDir,
  manifestName,
  OBJECTS_DIR,
  ownerTag,
  parseEntryName,
  parseManifest,
  parseTempName,
  type TempOwner,
  TMP_DIR,
  UPGRADABLE_FORMAT_VERSION,
  type VersionManifest,
} from './local-layout.ts';
import type {
  ObjectHead,
  ObjectListEntry,
  ObjectStore,
  ObjectVersionOptions,
  ObjectVersionSummary,
  PutObjectInput,
  PutObjectResult,
} from './object-store.ts';
import { sha256Hex } from './sha256.ts';
import {
  validateDate,
  validateFutureDate,
  validateKey,
  validatePrefix,
  validatePutInput,
  validateVersionId,
} from './validate.ts';
import { isVersionId, newVersionId } from './version-id.ts';

export interface LocalWormStoreOptions {
  /** Directory holding the store; created (with parents) when missing. */
  dir: string;
  /**
   * Source of "now" for retention checks and Last-Modified; tests inject one to move past
   * retain-until dates.
   * @defaultValue `() => new Date()`
   */
  clock?: () => Date;
  /**
   * How often (ms) versions written through the journal are made durable in place and the
   * journal segment holding them is dropped. Acknowledged puts are durable either way (they are in
   * the journal); this bounds how much a restart after a power loss has to replay.
   * @defaultValue 1000
   */
  checkpointMs?: number;
}

interface ResolvedOptions {
  readonly dir: string;
  readonly clock: () => Date;
  readonly checkpointMs: number;
}

interface NodeVersion {
  generations: number[];
  blob: boolean;
}

/**
 * `fs.writeFile` with a callback, promisified: for the two small files of a journaled put it
 * costs about a third less CPU than `fs/promises` (no FileHandle object to build, close and
 * collect), measured at 40–49 µs against 56–71 µs per file.
 */
const writeSmallFile = promisify(writeFileCallback);

// A racing writer can replace a manifest between our readdir and our read; retry a few times.

const RACE_RETRIES = 16;
// Other threads of this process report the same start time to within a few ms.
const SAME_PROCESS_SLACK_MS = 5_000;

// A temp file of another host (a container sharing the directory) cannot be checked for a live
// owner, so it is only removed once it is clearly abandoned.
const FOREIGN_TEMP_MAX_AGE_MS = 3_600_000;

const OWNER: TempOwner = {
  host: hostTag(hostname()),
  pid: process.pid,
  startMs: Math.round(Date.now() - process.uptime() * 1000),
};

function isErrno(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

function isAlive(owner: TempOwner): boolean {
  if (owner.pid === OWNER.pid) return Math.abs(owner.startMs - OWNER.startMs) < SAME_PROCESS_SLACK_MS;
  // A power loss reboots the host, and the dead owner's pid may then belong to a live process.
  const bootMs = bootTimeMs();
  if (bootMs !== undefined && owner.startMs < bootMs - SAME_PROCESS_SLACK_MS) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    return !isErrno(err, 'ESRCH');
  }
  // Alive, but perhaps another process that took the pid since: its start time tells.
  const startedMs = processStartMs(owner.pid, bootMs);
  return startedMs === undefined || Math.abs(startedMs - owner.startMs) < PID_REUSE_SLACK_MS;
}

// /proc reports process start times in USER_HZ ticks since boot; USER_HZ is 100 on Linux's ABI.
const USER_HZ = 100;
// Wide: a clock step between the owner's start and now must not make a live owner look dead.
const PID_REUSE_SLACK_MS = 60_000;

/** When this host booted (Linux `/proc/stat` btime), or undefined where that is not known. */
function bootTimeMs(): number | undefined {
  try {
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'latin1'));
    return btime ? Number(btime[1]) * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** When process `pid` started (Linux `/proc/<pid>/stat`), or undefined where that is not known. */
function processStartMs(pid: number, bootMs: number | undefined): number | undefined {
  if (bootMs === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command name, which is in parentheses and may hold spaces; starttime is field 22.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isFinite(ticks) ? bootMs + (ticks * 1000) / USER_HZ : undefined;
  } catch {
    return undefined;
  }
}

/** A temp file or journal segment whose writer is gone: dead here, or long silent elsewhere. */
async function isAbandoned(owner: TempOwner, path: string): Promise<boolean> {
  if (owner.host === OWNER.host) return !isAlive(owner);
  return Date.now() - (await stat(path)).mtimeMs >= FOREIGN_TEMP_MAX_AGE_MS;
}

function ignoreMissing(err: unknown): void {
  if (!isErrno(err, 'ENOENT')) throw err;
}

/**
 * Where a journaled version's bytes go: into its manifest when small (no blob file to create),
 * else a blob file of their own.
 */
function placement(
  manifest: VersionManifest,
  body: Uint8Array,
): { manifest: VersionManifest; blob: Uint8Array | undefined } {
  if (body.byteLength > INLINE_MAX_BYTES) return { manifest, blob: body };
  return { manifest: { ...manifest, inline: Buffer.from(body).toString('base64') }, blob: undefined };
}

/** Whether `path` holds exactly the version's bytes (a crash can leave it missing or torn). */
async function holdsBytes(path: string, manifest: VersionManifest): Promise<boolean> {
  let body: Buffer;
  try {
    body = await readFile(path);
  } catch (err) {
    ignoreMissing(err);
    return false;
  }
  return body.byteLength === manifest.size && sha256Hex(body) === manifest.sha256;
}

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function toHead(m: VersionManifest): ObjectHead {
  return {
    key: m.key,
    versionId: m.versionId,
    size: m.size,
    sha256: m.sha256,
    contentType: m.contentType,
    mode: m.mode,
    retainUntil: new Date(m.retainUntil),
    legalHold: m.legalHold,
    lastModified: new Date(m.lastModified),
    metadata: { ...m.metadata },
  };
}

function validateOptions(options: LocalWormStoreOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidStoreOptionsError('options', 'must be an object');
  }
  if (typeof options.dir !== 'string' || options.dir.trim() === '') {
    throw new InvalidStoreOptionsError('dir', 'must be a non-empty path');
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new InvalidStoreOptionsError('clock', 'must be a function returning a Date');
  }
  const checkpointMs = options.checkpointMs ?? 1000;
  if (!Number.isSafeInteger(checkpointMs) || checkpointMs < 1) {
    throw new InvalidStoreOptionsError('checkpointMs', 'must be a positive whole number of milliseconds');
  }
  return Object.freeze({
    dir: resolve(options.dir),
    clock: options.clock ?? (() => new Date()),
    checkpointMs,
  });
}

/**
 * The embedded default store: a directory on the local filesystem that enforces the same rules as
 * S3 Object Lock in COMPLIANCE mode — versions are immutable, retention only extends, a retained or
 * held version cannot be deleted.
 *
 * The rules are enforced **in-process only**: anyone with write access to the directory (root
 * included) can remove the files. Stored files are made read-only (0444) as a guard against
 * accidents, not as protection. True WORM needs S3 Object Lock (`s3://<bucket>`).
 *
 * Crash safety: a version is visible only once its manifest is in place, and its bytes are always
 * placed first, so no reader sees a half object. A put from memory is first appended to this
 * process's journal (group commit: one `fdatasync` for all puts waiting on it, see
 * `local-journal.ts`), then written in place without a sync of its own; a checkpoint makes those
 * writes durable in bulk, and journal segments a power loss left behind are replayed on open. A put
 * from a file (large media) is written to temp files that are fsynced, the bytes renamed into
 * place, then the manifest, each rename made durable with a directory fsync; temp leftovers of dead
 * processes are cleaned on open. Retention and hold
 * changes write a new manifest generation with `link` (which fails if that generation already
 * exists), so concurrent changes — even from several processes — cannot overwrite each other.
 * See `local-layout.ts` for the file layout.
 */
export class LocalWormStore implements ObjectStore {
  readonly description: string;
  readonly #root: string;
  readonly #objects: string;
  readonly #tmp: string;
  readonly #journalDir: string;
  readonly #clock: () => Date;
  readonly #checkpointMs: number;
  #journal!: StoreJournal;
  readonly #mutex = new KeyedMutex();
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;
  #closing: Promise<void> | undefined;

  private constructor(options: ResolvedOptions) {
    this.#root = options.dir;
    this.#objects = join(options.dir, OBJECTS_DIR);
    this.#tmp = join(options.dir, TMP_DIR);
    this.#journalDir = join(options.dir, JOURNAL_DIR);
    this.#clock = options.clock;
    this.#checkpointMs = options.checkpointMs;
    this.description = `local:${options.dir}`;
  }

  static async open(options: LocalWormStoreOptions): Promise<LocalWormStore> {
    const resolved = validateOptions(options);
    const store = new LocalWormStore(resolved);
    try {
      await mkdirDurable(store.#objects);
      await mkdirDurable(store.#tmp);
      await mkdirDurable(store.#journalDir);
      await store.#checkFormat();
      store.#journal = await StoreJournal.open({
        dir: store.#journalDir,
        root: store.#root,
        owner: ownerTag(OWNER),
        checkpointMs: store.#checkpointMs,
      });
      // Journals first: a replayed version must exist before temp cleanup looks for orphans.
      await store.#recoverJournals();
      await store.#recoverTemp();
    } catch (err) {
      if (err instanceof HoldfastError) throw err;
      throw new StoreUnavailableError(store.description, 'open', { cause: err });
    }
    return store;
  }

  put(input: PutObjectInput): Promise<PutObjectResult> {
    return this.#op('put', async () => {
      const v = validatePutInput(input, this.#clock());
      const body = v.body;
      if (isFileBody(body)) {
        // A file's hash is checked while it is copied in, so it is read once and never held whole.
        await checkFileBody(body);
      } else {
        const actual = sha256Hex(body);
        if (actual !== v.sha256) {
          throw new ChecksumMismatchError(v.key, `body SHA-256 is ${actual} but ${v.sha256} was declared`);
        }
      }
      const dir = keyDir(this.#root, v.key);
      return this.#mutex.run(v.key, async () => {
        const journaled = !isFileBody(body);
        // A key directory this put created holds no version yet: nothing to look for.
        const created = journaled ? await mkdir(dir, { recursive: true }) : undefined;
        if (v.ifNoneMatch && created === undefined && (await this.#resolve(v.key, undefined)) !== undefined) {
          throw new ObjectExistsError(v.key);
        }
        const versionId = newVersionId();
        const manifest: VersionManifest = {
          format: 1,
          key: v.key,
          versionId,
          size: isFileBody(body) ? body.size : body.byteLength,
          sha256: v.sha256,
          contentType: v.contentType,
          metadata: v.metadata,
          mode: 'COMPLIANCE',
          retainUntil: v.retainUntil.toISOString(),
          legalHold: v.legalHold,
          lastModified: this.#clock().toISOString(),
        };
        if (journaled) {
          const placed = placement(manifest, body);
          await this.#journal.write({ manifest, ifNoneMatch: v.ifNoneMatch === true, body }, () =>
            this.#place(dir, created, placed.manifest, placed.blob, true),
          );
          return { key: v.key, versionId, sha256: v.sha256 };
        }
        await mkdirDurable(dir);
        // The temp manifest doubles as the intent record recovery uses to find an orphaned blob.
        const tmpBlob = join(this.#tmp, `${ownerTag(OWNER)}.${versionId}.blob`);
        const tmpManifest = join(this.#tmp, `${ownerTag(OWNER)}.${versionId}.manifest.json`);
        const finalBlob = join(dir, blobName(versionId));
        let blobPlaced = false;
        let committed = false;
        try {
          const copied = await copyFileSynced(body.path, tmpBlob);
          if (copied.size !== body.size || copied.sha256 !== v.sha256) {
            throw new ChecksumMismatchError(
              v.key,
              `file ${body.path} has ${copied.size} bytes with SHA-256 ${copied.sha256}; ` +
                `${body.size} bytes with SHA-256 ${v.sha256} were declared`,
            );
          }
          await writeFileSynced(tmpManifest, JSON.stringify(manifest));
          await rename(tmpBlob, finalBlob);
          blobPlaced = true;
          // The bytes must be durable in place before a manifest can point at them.
          await fsyncDir(dir);
          await rename(tmpManifest, join(dir, manifestName(versionId, 0)));
          committed = true;
          await fsyncDir(dir);
        } finally {
          if (!committed) {
            await unlink(tmpBlob).catch(() => undefined);
            await unlink(tmpManifest).catch(() => undefined);
            if (blobPlaced) await unlink(finalBlob).catch(() => undefined);
          }
        }
        return { key: v.key, versionId, sha256: v.sha256 };
      });
    });
  }

  head(key: string, opts?: ObjectVersionOptions): Promise<ObjectHead | undefined> {
    return this.#op('head', async () => {
      validateKey(key);
      const versionId = opts?.versionId === undefined ? undefined : validateVersionId(opts.versionId);
      const found = await this.#resolve(key, versionId);
      return found && toHead(found.manifest);
    });
  }

  get(key: string, opts?: ObjectVersionOptions): Promise<{ head: ObjectHead; body: Uint8Array }> {
    return this.#op('get', async () => {
      validateKey(key);
      const versionId = opts?.versionId === undefined ? undefined : validateVersionId(opts.versionId);
      for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
        const found = await this.#resolve(key, versionId);
        if (!found) break;
        let body: Buffer;
        if (found.manifest.inline !== undefined) body = Buffer.from(found.manifest.inline, 'base64');
        else {
          try {
            body = await readFile(join(found.dir, blobName(found.manifest.versionId)));
          } catch (err) {
            // Deleted between reading the manifest and the bytes: look again.
            if (isErrno(err, 'ENOENT')) continue;
            throw err;
          }
        }
        const actual = sha256Hex(body);
        if (body.byteLength !== found.manifest.size || actual !== found.manifest.sha256) {
          throw new StoreCorruptError(
            key,
            `version ${found.manifest.versionId} has ${body.byteLength} bytes with SHA-256 ${actual}; ` +
              `${found.manifest.size} bytes with SHA-256 ${found.manifest.sha256} were written`,
          );
        }
        return {
          head: toHead(found.manifest),
          body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
        };
      }
      throw new ObjectNotFoundError(key, versionId);
    });
  }

  async *list(prefix: string): AsyncIterable<ObjectListEntry> {
    for await (const versions of this.#keysUnder('list', prefix)) {
      const latest = versions[0]!;
      yield { key: latest.key, size: latest.size, lastModified: new Date(latest.lastModified) };
    }
  }

  async *listVersions(prefix: string): AsyncIterable<ObjectVersionSummary> {
    for await (const versions of this.#keysUnder('listVersions', prefix)) {
      for (const [i, m] of versions.entries()) {
        yield {
          key: m.key,
          versionId: m.versionId,
          size: m.size,
          lastModified: new Date(m.lastModified),
          isLatest: i === 0,
          deleteMarker: false,
        };
      }
    }
  }

  extendRetention(key: string, versionId: string, until: Date): Promise<void> {
    return this.#op('extendRetention', async () => {
      validateDate(until, 'until');
      await this.#update(key, versionId, (m) => {
        const current = new Date(m.retainUntil);
        if (until.getTime() < current.getTime()) {
          throw new RetentionShortenError(key, m.versionId, current, until);
        }
        if (until.getTime() === current.getTime()) return undefined;
        validateFutureDate(until, 'until', this.#clock());
        return { ...m, retainUntil: until.toISOString() };
      });
    });
  }

  setLegalHold(key: string, versionId: string, on: boolean): Promise<void> {
    return this.#op('setLegalHold', async () => {
      if (typeof on !== 'boolean')
        throw new InvalidObjectInputError('on', 'the legal hold state must be a boolean');
      await this.#update(key, versionId, (m) => (m.legalHold === on ? undefined : { ...m, legalHold: on }));
    });
  }

  deleteVersion(key: string, versionId: string): Promise<void> {
    return this.#op('deleteVersion', async () => {
      // A version still in this process's journal would come back if a power loss replayed it.
      await this.#journal.checkpoint();
      const tombstone = await this.#update(
        key,
        versionId,
        (m) => {
          const now = this.#clock();
          const retainUntil = new Date(m.retainUntil);
          if (now.getTime() < retainUntil.getTime()) {
            throw new ObjectRetainedError(key, m.versionId, retainUntil, m.legalHold);
          }
          if (m.legalHold) throw new ObjectHeldError(key, m.versionId);
          // The tombstone must not carry the bytes it disposes of.
          const { inline: _disposed, ...kept } = m;
          return { ...kept, deletedAt: now.toISOString() };
        },
        { missingIsOk: true },
      );
      if (tombstone) await this.#removeVersionFiles(keyDir(this.#root, key), tombstone.versionId);
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      // If the last checkpoint fails, the segments stay and the next open replays them.
      await this.#journal?.close().catch(() => undefined);
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreClosedError(this.description);
  }

  /** Runs one operation: refuses after close, lets close wait for it, maps raw I/O errors. */
  async #op<T>(operation: string, work: () => Promise<T>): Promise<T> {
    this.#assertOpen();
    const running = work();
    this.#inFlight.add(running);
    try {
      return await running;
    } catch (err) {
      if (err instanceof HoldfastError) throw err;
      throw new StoreUnavailableError(this.description, operation, { cause: err });
    } finally {
      this.#inFlight.delete(running);
    }
  }

  async #checkFormat(): Promise<void> {
    const path = join(this.#root, FORMAT_FILE);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      ignoreMissing(err);
    }
    const write = async () => {
      const tmp = join(this.#tmp, `${ownerTag(OWNER)}.${randomUUID()}.format.json`);
      await writeFileSynced(tmp, `${JSON.stringify(FORMAT)}\n`);
      await rename(tmp, path);
      await fsyncDir(this.#root);
    };
    if (text === undefined) return write();
    let format: unknown;
    try {
      format = JSON.parse(text);
    } catch {
      format = undefined;
    }
    const f = format as { format?: unknown; version?: unknown } | undefined;
    // Marked before this process writes a manifest holding bytes, which format-1 code cannot read.
    if (f?.format === FORMAT.format && f.version === UPGRADABLE_FORMAT_VERSION) return write();
    if (f?.format !== FORMAT.format || f.version !== FORMAT.version) {
      throw new InvalidStoreOptionsError(
        'dir',
        `${this.#root} holds ${FORMAT_FILE} for an unsupported format (${text.trim().slice(0, 80)})`,
      );
    }
  }

  /** Removes temp files of dead processes, and the blob a put left without its manifest. */
  /**
   * Writes a journaled version in place, unsynced: the blob first (unless `body` is undefined:
   * the bytes are in the manifest, or their blob is intact), then the manifest by rename so it
   * appears whole. Returns the paths a checkpoint must make durable.
   */
  async #place(
    dir: string,
    created: string | undefined,
    manifest: VersionManifest,
    body: Uint8Array | undefined,
    writeManifest: boolean,
  ): Promise<string[]> {
    const touched = [dir];
    if (created !== undefined) {
      for (let d = dir; ; d = dirname(d)) {
        touched.push(dirname(d));
        if (d === created || dirname(d) === d) break;
      }
    }
    const blob = join(dir, blobName(manifest.versionId));
    const final = join(dir, manifestName(manifest.versionId, 0));
    touched.push(final);
    if (manifest.inline === undefined) touched.push(blob);
    const tmp = join(this.#tmp, `${ownerTag(OWNER)}.${manifest.versionId}.journaled.json`);
    let blobWritten = false;
    try {
      if (body !== undefined) {
        await writeSmallFile(blob, body, { flag: 'wx', mode: READ_ONLY });
        blobWritten = true;
      }
      if (writeManifest) {
        await writeSmallFile(tmp, JSON.stringify(manifest), { flag: 'wx', mode: READ_ONLY });
        await rename(tmp, final);
      }
    } catch (err) {
      await rm(tmp, { force: true });
      if (blobWritten) await rm(blob, { force: true });
      throw err;
    }
    return touched;
  }

  /** Generation 0 of the version as the crash left it, if whole (bytes it holds included). */
  async #intactManifest(dir: string, manifest: VersionManifest): Promise<VersionManifest | undefined> {
    let placed: VersionManifest | undefined;
    try {
      placed = await this.#readManifest(dir, manifest.versionId, 0);
    } catch (err) {
      if (err instanceof StoreCorruptError) return undefined;
      throw err;
    }
    if (placed?.sha256 !== manifest.sha256) return undefined;
    if (placed.inline !== undefined && sha256Hex(Buffer.from(placed.inline, 'base64')) !== manifest.sha256)
      return undefined;
    return placed;
  }

  /** Replays the journal segments of processes that died before their checkpoint. */
  async #recoverJournals(): Promise<void> {
    const claimed: string[] = [];
    for (const name of await readdir(this.#journalDir)) {
      const parsed = parseTempName(name);
      if (!parsed?.rest.endsWith('.journal')) continue;
      const path = join(this.#journalDir, name);
      if (!(await isAbandoned(parsed.owner, path))) continue;
      // Claim it by renaming it to one of ours: of two processes opening at once, one replays it.
      const segment = this.#journal.nextSegmentPath();
      try {
        await rename(path, segment);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue;
        throw err;
      }
      claimed.push(segment);
    }
    if (claimed.length === 0) return;
    const entries: JournalEntry[] = [];
    for (const segment of claimed) entries.push(...(await readJournal(segment)));
    // What the dead writers put themselves: a version of theirs is no other writer's put since.
    const journaled = new Set(entries.map((e) => e.manifest.versionId));
    const touched: string[] = [];
    for (const entry of entries) touched.push(...(await this.#replay(entry, journaled)));
    await this.#journal.makeDurable(touched);
    for (const segment of claimed) await unlink(segment);
    // A segment that came back after a power loss would be replayed over later deletes.
    await fsyncDir(this.#journalDir);
  }

  async #replay(
    { manifest, ifNoneMatch, body }: JournalEntry,
    journaled: ReadonlySet<string>,
  ): Promise<string[]> {
    const dir = keyDir(this.#root, manifest.key);
    const node = await this.#readNode(dir);
    const version = node.get(manifest.versionId) ?? { generations: [], blob: false };
    // Later generations are written with a directory fsync, so only generation 0 can be torn.
    const durable = version.generations.some((g) => g > 0);
    let current: VersionManifest | undefined;
    if (version.generations.length === 0) {
      const other = [...node].some(
        ([id, v]) => id !== manifest.versionId && v.generations.length > 0 && !journaled.has(id),
      );
      // Perhaps never acknowledged, and another writer has put the key since the crash: this
      // conditional put did not happen. A version the same dead writers journaled is no such
      // writer (it may well have come after this put was acknowledged).
      if (ifNoneMatch && other) {
        await unlink(join(dir, blobName(manifest.versionId))).catch(ignoreMissing);
        return [dir];
      }
    } else {
      current = await this.#readManifest(dir, manifest.versionId, Math.max(...version.generations)).catch(
        () => undefined,
      );
      if (current?.deletedAt !== undefined) return [];
    }
    // Keep what survived intact; write again what the crash lost or tore.
    const created = await mkdir(dir, { recursive: true });
    const intact = durable ? current : await this.#intactManifest(dir, manifest);
    // The bytes stay where the surviving manifest says they are; a manifest written anew decides
    // by their size, as the put did.
    const placed = intact
      ? { manifest: intact, blob: intact.inline === undefined ? body : undefined }
      : durable
        ? { manifest, blob: body }
        : placement(manifest, body);
    let blob = placed.blob;
    const blobPath = join(dir, blobName(manifest.versionId));
    // Bytes kept in the manifest need no blob; one left by format-1 code before a torn manifest
    // would only be an orphan.
    if (blob === undefined || !(await holdsBytes(blobPath, manifest)))
      await unlink(blobPath).catch(ignoreMissing);
    else blob = undefined;
    return this.#place(dir, created, placed.manifest, blob, !durable && intact === undefined);
  }

  async #recoverTemp(): Promise<void> {
    for (const name of await readdir(this.#tmp)) {
      const parsed = parseTempName(name);
      if (!parsed) continue;
      const path = join(this.#tmp, name);
      if (!(await isAbandoned(parsed.owner, path))) continue;
      const intent = /^([0-9A-Z]{26})\.manifest\.json$/.exec(parsed.rest);
      if (intent) {
        let manifest: VersionManifest | undefined;
        try {
          manifest = parseManifest(await readFile(path, 'utf8'), path);
        } catch {
          // A manifest torn by the crash was never renamed, so the blob (if any) is not either.
          manifest = undefined;
        }
        if (manifest) {
          const dir = keyDir(this.#root, manifest.key);
          const node = await this.#readNode(dir);
          if ((node.get(manifest.versionId)?.generations.length ?? 0) === 0) {
            await unlink(join(dir, blobName(manifest.versionId))).catch(ignoreMissing);
          }
        }
      }
      await unlink(path).catch(ignoreMissing);
    }
  }

  async #readNode(dir: string): Promise<Map<string, NodeVersion>> {
    const node = new Map<string, NodeVersion>();
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return node;
      throw err;
    }
    for (const name of names) {
      const entry = parseEntryName(name);
      if (!entry) continue;
      let version = node.get(entry.versionId);
      if (!version) {
        version = { generations: [], blob: false };
        node.set(entry.versionId, version);
      }
      if (entry.kind === 'blob') version.blob = true;
      else version.generations.push(entry.generation);
    }
    return node;
  }

  /** The current manifest generation of a version; `undefined` if it vanished under us. */
  async #readManifest(
    dir: string,
    versionId: string,
    generation: number,
  ): Promise<VersionManifest | undefined> {
    const path = join(dir, manifestName(versionId, generation));
    try {
      return parseManifest(await readFile(path, 'utf8'), path);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** Visible (non-deleted) versions in a key node, newest first; retried while writers race. */
  async #visibleVersions(dir: string): Promise<VersionManifest[]> {
    for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
      const node = await this.#readNode(dir);
      const out: VersionManifest[] = [];
      let raced = false;
      for (const versionId of [...node.keys()].sort().reverse()) {
        const generations = node.get(versionId)!.generations;
        if (generations.length === 0) continue;
        const manifest = await this.#readManifest(dir, versionId, Math.max(...generations));
        if (!manifest) {
          raced = true;
          break;
        }
        if (manifest.deletedAt !== undefined) {
          await this.#removeVersionFiles(dir, versionId).catch(() => undefined);
          continue;
        }
        out.push(manifest);
      }
      if (!raced) return out;
    }
    throw new StoreUnavailableError(this.description, 'read', { cause: new Error(`${dir} keeps changing`) });
  }

  async #resolve(
    key: string,
    versionId: string | undefined,
  ): Promise<{ dir: string; manifest: VersionManifest } | undefined> {
    if (versionId !== undefined && !isVersionId(versionId)) return undefined;
    const dir = keyDir(this.#root, key);
    // The key check guards case-insensitive filesystems, where two keys can share a directory.
    const manifest = (await this.#visibleVersions(dir)).find(
      (m) => m.key === key && (versionId === undefined || m.versionId === versionId),
    );
    return manifest && { dir, manifest };
  }

  /** Visible versions of a node grouped by key (normally one key), keys in byte order. */
  async #versionsByKey(dir: string): Promise<VersionManifest[][]> {
    const groups = new Map<string, VersionManifest[]>();
    for (const m of await this.#visibleVersions(dir)) {
      const group = groups.get(m.key);
      if (group) group.push(m);
      else groups.set(m.key, [m]);
    }
    return [...groups.entries()].sort(([a], [b]) => compareUtf8(a, b)).map(([, versions]) => versions);
  }

  /**
   * Writes the next manifest generation computed by `change` (undefined = nothing to do). `link`
   * refuses to replace an existing generation, so a concurrent change makes us re-read and retry
   * instead of overwriting it: retention can never be shortened by a lost update.
   */
  async #update(
    key: string,
    versionId: string,
    change: (current: VersionManifest) => VersionManifest | undefined,
    { missingIsOk = false } = {},
  ): Promise<VersionManifest | undefined> {
    validateKey(key);
    validateVersionId(versionId);
    const missing = () => {
      if (missingIsOk) return undefined;
      throw new ObjectNotFoundError(key, versionId);
    };
    if (!isVersionId(versionId)) return missing();
    const dir = keyDir(this.#root, key);
    return this.#mutex.run(`${key}\u0000${versionId}`, async () => {
      for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
        const generations = (await this.#readNode(dir)).get(versionId)?.generations ?? [];
        if (generations.length === 0) return missing();
        const generation = Math.max(...generations);
        const current = await this.#readManifest(dir, versionId, generation);
        if (!current) continue;
        if (current.deletedAt !== undefined || current.key !== key) return missing();
        const next = change(current);
        if (next === undefined) return undefined;
        const tmp = join(this.#tmp, `${ownerTag(OWNER)}.${randomUUID()}.update.json`);
        await writeFileSynced(tmp, JSON.stringify(next));
        try {
          await link(tmp, join(dir, manifestName(versionId, generation + 1)));
        } catch (err) {
          if (isErrno(err, 'EEXIST')) continue;
          throw err;
        } finally {
          await unlink(tmp).catch(() => undefined);
        }
        await fsyncDir(dir);
        for (const old of generations) {
          await unlink(join(dir, manifestName(versionId, old))).catch(() => undefined);
        }
        return next;
      }
      throw new StoreUnavailableError(this.description, 'update', {
        cause: new Error(`too many concurrent changes to "${key}" version ${versionId}`),
      });
    });
  }

  /** After a tombstone: bytes first, then manifests, the tombstone (highest generation) last. */
  async #removeVersionFiles(dir: string, versionId: string): Promise<void> {
    await unlink(join(dir, blobName(versionId))).catch(ignoreMissing);
    const generations = ((await this.#readNode(dir)).get(versionId)?.generations ?? []).sort((a, b) => a - b);
    for (const generation of generations) {
      await unlink(join(dir, manifestName(versionId, generation))).catch(ignoreMissing);
    }
    await fsyncDir(dir);
  }

  /** The visible versions (newest first) of each key under `prefix`, keys in byte order. */
  async *#keysUnder(operation: string, prefix: string): AsyncGenerator<VersionManifest[]> {
    this.#assertOpen();
    validatePrefix(prefix);
    try {
      for await (const node of this.#walk(prefix)) yield* await this.#versionsByKey(node);
    } catch (err) {
      if (err instanceof HoldfastError) throw err;
      throw new StoreUnavailableError(this.description, operation, { cause: err });
    }
  }

  /** Key nodes under `prefix` in key (UTF-8 byte) order, descending only into matching subtrees. */
  async *#walk(prefix: string): AsyncGenerator<string> {
    const slash = prefix.lastIndexOf('/');
    const parentKey = slash < 0 ? '' : prefix.slice(0, slash);
    const partial = prefix.slice(slash + 1);
    if (parentKey !== '' && parentKey.split('/').some((s) => s === '' || s === '.')) return;
    let start: string;
    try {
      start = parentKey === '' ? this.#objects : keyDir(this.#root, parentKey);
    } catch (err) {
      if (err instanceof InvalidKeyError) return;
      throw err;
    }
    yield* this.#walkChildren(start, parentKey, partial);
  }

  async *#walkChildren(dir: string, parentKey: string, partial: string): AsyncGenerator<string> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return;
      throw err;
    }
    // A child contributes its own key ("a") and its subtree ("a/…"); other names can sort
    // between the two ("a-b" < "a/"), so both are ordered together.
    const items: { order: Buffer; key: string; dir: string; subtree: boolean }[] = [];
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('@')) continue;
      const segment = decodeSegment(entry.name);
      if (!segment.startsWith(partial)) continue;
      const key = parentKey === '' ? segment : `${parentKey}/${segment}`;
      const childDir = join(dir, entry.name);
      items.push({ order: Buffer.from(key), key, dir: childDir, subtree: false });
      items.push({ order: Buffer.from(`${key}/`), key, dir: childDir, subtree: true });
    }
    items.sort((a, b) => Buffer.compare(a.order, b.order));
    for (const item of items) {
      if (item.subtree) yield* this.#walkChildren(item.dir, item.key, '');
      else yield item.dir;
    }
  }
}
