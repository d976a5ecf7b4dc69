import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { fsyncDir } from './durable-fs.ts';
import type { VersionManifest } from './local-layout.ts';

/** One put as the journal keeps it: enough to write the version again after a power loss. */
export interface JournalEntry {
  manifest: VersionManifest;
  /** A conditional put that finds another version at its key on replay never happened. */
  ifNoneMatch: boolean;
  body: Uint8Array;
}

export interface StoreJournalOptions {
  /** The journal's directory (`<store>/journal`). */
  dir: string;
  /** The store's root: the filesystem a checkpoint makes durable. */
  root: string;
  /** This process's owner tag; segment files are named `<owner>.<instance>-<seq>.journal`. */
  owner: string;
  /**
   * How often written versions are made durable in place and their journal segment dropped.
   * @defaultValue 1000
   */
  checkpointMs?: number;
}

// Frame: u32 payload length, u32 CRC-32 of the payload; payload: u32 header length, header JSON, body.
const FRAME_HEADER = 8;
const MAX_FRAME = 0x7fff_ffff;

interface Segment {
  readonly path: string;
  readonly handle: FileHandle;
  records: number;
  /** Records appended whose version is not yet materialized (written in place, unsynced). */
  open: number;
  /** Paths to fsync at checkpoint when the filesystem cannot be synced whole. */
  readonly touched: string[];
  closed: boolean;
  whenIdle?: () => void;
}

interface Pending {
  frame: Buffer;
  resolve: (segment: Segment) => void;
  reject: (err: unknown) => void;
}

/**
 * The local store's write-ahead journal: it lets a small put cost a share of one `fdatasync`
 * instead of five `fsync`s of its own.
 *
 * A put appends its manifest and bytes to this process's journal segment (group commit: every put
 * waiting while an `fdatasync` runs shares the next one), then writes the version in place
 * without syncing it, and only then resolves. Once a second (`checkpointMs`), the segment is
 * rotated, every version written from it is made durable in place at once (`syncfs(2)` through
 * `sync -f`, or an fsync per file where that is unavailable), and the segment is deleted. After a
 * power loss, the segments left behind are replayed on open, rewriting whatever the crash tore.
 */
export class StoreJournal {
  readonly #dir: string;
  readonly #root: string;
  readonly #owner: string;
  readonly #wholeFilesystemSync: boolean;
  readonly #queue: Pending[] = [];
  readonly #sealed: Segment[] = [];
  readonly #timer: NodeJS.Timeout;
  // Several stores can share one process (and so one owner tag): `holdfast dev` runs the archiver
  // and the media fetcher side by side. Each journal names its segments apart.
  readonly #instance = randomBytes(4).toString('hex');
  #seq = 0;
  #current: Segment | undefined;
  #flushing = false;
  #checkpointing: Promise<void> | undefined;

  private constructor(options: Required<StoreJournalOptions>, wholeFilesystemSync: boolean) {
    this.#dir = options.dir;
    this.#root = options.root;
    this.#owner = options.owner;
    this.#wholeFilesystemSync = wholeFilesystemSync;
    this.#timer = setInterval(() => {
      if (this.#current?.records || this.#sealed.length > 0) this.checkpoint().catch(() => undefined);
    }, options.checkpointMs);
    this.#timer.unref();
  }

  static async open(options: StoreJournalOptions): Promise<StoreJournal> {
    const resolved = { checkpointMs: 1000, ...options };
    return new StoreJournal(resolved, (await syncFilesystem(resolved.root)) === undefined);
  }

  /** The name a new segment of this process gets (also used to claim a dead process's segment). */
  nextSegmentPath(): string {
    return join(this.#dir, `${this.#owner}.${this.#instance}-${this.#seq++}.journal`);
  }

  /**
   * Journals `entry`, then runs `materialize` (which writes the version in place, unsynced, and
   * returns the paths it created or changed). Resolves once both are done.
   */
  async write(entry: JournalEntry, materialize: () => Promise<string[]>): Promise<void> {
    const segment = await this.#append(encodeEntry(entry));
    try {
      const paths = await materialize();
      if (!this.#wholeFilesystemSync) segment.touched.push(...paths);
    } finally {
      segment.open--;
      if (segment.open === 0) segment.whenIdle?.();
    }
  }

  /** Makes everything written so far durable in place and drops the segments that held it. */
  checkpoint(): Promise<void> {
    this.#checkpointing ??= this.#checkpoint().finally(() => {
      this.#checkpointing = undefined;
    });
    return this.#checkpointing;
  }

  /** Makes `paths` (files and directories) durable: the whole filesystem at once where possible. */
  async makeDurable(paths: Iterable<string>): Promise<void> {
    if (!this.#wholeFilesystemSync) {
      for (const path of new Set(paths)) await fsyncPath(path);
      return;
    }
    const failure = await syncFilesystem(this.#root);
    if (failure) throw new Error(`sync -f ${this.#root} failed`, { cause: failure });
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#checkpointing?.catch(() => undefined);
    await this.checkpoint();
  }

  #append(frame: Buffer): Promise<Segment> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ frame, resolve, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#flushing || this.#queue.length === 0) return;
    this.#flushing = true;
    void this.#flush().finally(() => {
      this.#flushing = false;
      this.#kick();
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue.splice(0);
    let segment: Segment;
    try {
      segment = this.#current ?? (await this.#openSegment());
    } catch (err) {
      for (const pending of batch) pending.reject(err);
      return;
    }
    this.#current = segment;
    segment.records += batch.length;
    segment.open += batch.length;
    try {
      const frames = batch.map((p) => p.frame);
      const length = frames.reduce((sum, f) => sum + f.byteLength, 0);
      const { bytesWritten } = await segment.handle.writev(frames);
      if (bytesWritten !== length)
        throw new Error(`journal write was short: ${bytesWritten} of ${length} bytes`);
      await segment.handle.datasync();
    } catch (err) {
      // A failed write can leave a torn frame, after which replay reads nothing: seal the segment.
      if (this.#current === segment) {
        this.#current = undefined;
        this.#sealed.push(segment);
      }
      segment.open -= batch.length;
      if (segment.open === 0) segment.whenIdle?.();
      for (const pending of batch) pending.reject(err);
      return;
    }
    for (const pending of batch) pending.resolve(segment);
  }

  async #openSegment(): Promise<Segment> {
    const path = this.nextSegmentPath();
    const handle = await open(path, 'wx');
    // The segment's name must survive a crash, or its records could not be found again.
    await fsyncDir(this.#dir);
    return { path, handle, records: 0, open: 0, touched: [], closed: false };
  }

  async #checkpoint(): Promise<void> {
    const segments = this.#sealed.splice(0);
    if (this.#current && this.#current.records > 0) {
      segments.push(this.#current);
      this.#current = undefined;
    }
    if (segments.length === 0) return;
    try {
      for (const segment of segments) {
        if (segment.open > 0) await new Promise<void>((resolve) => (segment.whenIdle = resolve));
        if (!segment.closed) {
          segment.closed = true;
          await segment.handle.close();
        }
      }
      await this.makeDurable(segments.flatMap((s) => s.touched));
    } catch (err) {
      this.#sealed.unshift(...segments);
      throw err;
    }
    for (const segment of segments) await unlink(segment.path);
    // Durable before anything relies on the checkpoint: a segment that came back after a power
    // loss would be replayed, and bring back a version deleted since (deleteVersion checkpoints first).
    await fsyncDir(this.#dir);
  }
}

function encodeEntry(entry: JournalEntry): Buffer {
  const header = Buffer.from(JSON.stringify({ manifest: entry.manifest, ifNoneMatch: entry.ifNoneMatch }));
  const payloadLength = 4 + header.byteLength + entry.body.byteLength;
  if (payloadLength > MAX_FRAME) throw new RangeError('object too large for the journal');
  const frame = Buffer.allocUnsafe(FRAME_HEADER + payloadLength);
  frame.writeUInt32LE(payloadLength, 0);
  frame.writeUInt32LE(header.byteLength, FRAME_HEADER);
  header.copy(frame, FRAME_HEADER + 4);
  frame.set(entry.body, FRAME_HEADER + 4 + header.byteLength);
  frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER)), 4);
  return frame;
}

/**
 * The entries of a segment, in order, up to the first frame that is torn or fails its CRC: a
 * crash mid-append tears only the tail, and a failed append seals its segment.
 */
export async function readJournal(path: string): Promise<JournalEntry[]> {
  const data = await readFile(path);
  const entries: JournalEntry[] = [];
  for (let offset = 0; offset + FRAME_HEADER <= data.byteLength; ) {
    const length = data.readUInt32LE(offset);
    const end = offset + FRAME_HEADER + length;
    if (length < 4 || end > data.byteLength) break;
    const payload = data.subarray(offset + FRAME_HEADER, end);
    if (crc32(payload) !== data.readUInt32LE(offset + 4)) break;
    const headerLength = payload.readUInt32LE(0);
    if (4 + headerLength > payload.byteLength) break;
    const header = JSON.parse(payload.subarray(4, 4 + headerLength).toString('utf8')) as Omit<
      JournalEntry,
      'body'
    >;
    entries.push({ ...header, body: payload.subarray(4 + headerLength) });
    offset = end;
  }
  return entries;
}

/** `syncfs(2)` of the filesystem holding `path` (Node has no binding for it); the error if it failed. */
function syncFilesystem(path: string): Promise<Error | undefined> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', path], (err) => resolve(err ?? undefined));
  });
}

/** A file or directory written since the last checkpoint; one removed since needs nothing. */
async function fsyncPath(path: string): Promise<void> {
  // fsyncDir opens read-only and syncs, which serves a file as well as a directory.
  await fsyncDir(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
