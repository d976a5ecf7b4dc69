import type { FileHandle } from 'node:fs/promises';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { DirLock } from './dir-lock.ts';
import type { SyncCounter } from './durable-fs.ts';
import { ignoreMissing, syncData, syncDir, writeFully } from './durable-fs.ts';
import {
  SpoolClosedError,
  SpoolCorruptRecordError,
  SpoolFailedError,
  SpoolInvalidOptionsError,
  SpoolWriteError,
} from './errors.ts';
import type { RecordKind } from './record-format.ts';
import {
  checkFrameHeader,
  checkPayload,
  decodeFrame,
  encodeFrame,
  encodeId,
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
} from './record-format.ts';
import { recoverLog } from './recovery.ts';
import type { ActiveSegment } from './segment-files.ts';
import { createSegment, reopenSegment } from './segment-files.ts';
import { enforceRetention } from './segment-retention.ts';
import { spoolIdOf } from './spool-id.ts';
import type { ResolvedSpoolOptions, SpoolOptions } from './spool-options.ts';
import { resolveSpoolOptions } from './spool-options.ts';
import type { IndexEntry, SegmentState, SpoolOpenReport, SpoolRecord, SpoolStats } from './spool-types.ts';
import { WindowReader } from './window-reader.ts';

interface SegmentReader {
  readonly seq: number;
  readonly name: string;
  readonly fh: FileHandle;
  readonly window: WindowReader;
}

interface PendingRecord {
  readonly kind: RecordKind;
  readonly id: string;
  readonly at: number;
  readonly frame: Buffer;
  readonly durable: PromiseWithResolvers<void>;
}

/** What an id will look like once every queued record is durable. */
interface Intent {
  readonly live: boolean;
  readonly durable: Promise<void>;
}

/**
 * A durable local append-only log. `append` resolves only once the record is on disk; records stay
 * until `ack`ed, and `unacked()` reads back whatever has not been, after any crash.
 */
export class Spool {
  readonly openReport: SpoolOpenReport;
  /** The directory's identity, the same across restarts (see `spoolIdOf`). */
  readonly id: string;

  readonly #options: ResolvedSpoolOptions;
  readonly #lock: DirLock;
  readonly #segmentsDir: string;
  readonly #segments: Map<number, SegmentState>;
  readonly #index: Map<string, IndexEntry>;
  readonly #intents = new Map<string, Intent>();
  readonly #sync: SyncCounter;
  readonly #fsyncObservers = new Set<(seconds: number) => void>();
  #active: ActiveSegment;
  #queue: PendingRecord[] = [];
  #flushing: Promise<void> | undefined;
  #failure: SpoolWriteError | undefined;
  #closing: Promise<void> | undefined;
  #appends = 0;
  #acks = 0;

  private constructor(init: {
    options: ResolvedSpoolOptions;
    lock: DirLock;
    segmentsDir: string;
    segments: Map<number, SegmentState>;
    index: Map<string, IndexEntry>;
    active: ActiveSegment;
    sync: SyncCounter;
    openReport: SpoolOpenReport;
    id: string;
  }) {
    this.#options = init.options;
    this.#lock = init.lock;
    this.#segmentsDir = init.segmentsDir;
    this.#segments = init.segments;
    this.#index = init.index;
    this.#active = init.active;
    this.#sync = init.sync;
    this.openReport = init.openReport;
    this.id = init.id;
  }

  static async open(options: SpoolOptions): Promise<Spool> {
    const resolved = resolveSpoolOptions(options);
    const sync: SyncCounter = { fsyncs: 0, lastFsyncMs: 0 };
    await makeDirDurably(resolved.dir, sync);
    const lock = await DirLock.acquire(resolved.dir);
    let active: ActiveSegment | undefined;
    try {
      const segmentsDir = path.join(resolved.dir, 'segments');
      const quarantineDir = path.join(resolved.dir, 'quarantine');
      await mkdir(segmentsDir, { recursive: true });
      await mkdir(quarantineDir, { recursive: true });
      await syncDir(resolved.dir, sync);
      const id = await spoolIdOf(resolved.dir, sync);

      const log = await recoverLog(segmentsDir, quarantineDir, sync);
      for (const corruption of log.report.corruptions) resolved.onCorruption?.(corruption);

      const segments = new Map(log.segments.map((s) => [s.seq, s]));
      const last = log.segments.at(-1);
      // A segment with quarantined damage is never appended to, so its damage is not buried mid-log.
      active =
        last && log.lastSegmentClean
          ? await reopenSegment(last)
          : await createSegment(segmentsDir, (last?.seq ?? 0) + 1, sync);
      segments.set(active.state.seq, active.state);
      await enforceRetention(segmentsDir, segments, active.state.seq, sync);

      return new Spool({
        options: resolved,
        lock,
        segmentsDir,
        segments,
        index: log.index,
        active,
        sync,
        openReport: log.report,
        id,
      });
    } catch (err) {
      await active?.fh.close();
      await lock.release();
      throw err;
    }
  }

  /**
   * Resolves once the record is durable. Appending an id that is already unacknowledged writes
   * nothing and resolves once the original is durable.
   */
  async append(id: string, payload: Uint8Array): Promise<void> {
    this.#assertWritable();
    const idBytes = encodeId(id);
    checkPayload(payload);
    const intent = this.#intents.get(id);
    if (intent ? intent.live : this.#index.has(id)) return intent?.durable;
    const at = Date.now();
    return this.#enqueue('append', id, at, encodeFrame('append', idBytes, at, payload), true);
  }

  /** Resolves once the ack is durable. Acking an unknown or already acked id writes nothing. */
  async ack(id: string): Promise<void> {
    this.#assertWritable();
    const idBytes = encodeId(id);
    const intent = this.#intents.get(id);
    if (!(intent ? intent.live : this.#index.has(id))) return intent?.durable;
    const at = Date.now();
    return this.#enqueue('ack', id, at, encodeFrame('ack', idBytes, at), false);
  }

  /** Durable state: true once an append of `id` resolved and until an ack of it resolved. */
  has(id: string): boolean {
    return this.#index.has(id);
  }

  /**
   * Ids of unacknowledged records appended before `before`, in append order, from memory: no
   * payload is read. A drainer checks these cheaply and reads only the few it must resend.
   */
  unackedIds(before: Date = new Date()): { id: string; appendedAt: Date }[] {
    const cutoff = before.getTime();
    const out: { id: string; appendedAt: Date }[] = [];
    for (const [id, entry] of this.#index) {
      if (entry.at > cutoff) continue;
      out.push({ id, appendedAt: new Date(entry.at) });
    }
    return out;
  }

  /**
   * Unacknowledged records (all, or those in `only`) in append order, as of the call; records acked while iterating are
   * skipped. Payloads are read from disk one at a time and checked against their CRC again.
   */
  async *unacked(only?: ReadonlySet<string>): AsyncIterable<SpoolRecord> {
    if (this.#closing) throw new SpoolClosedError();
    const snapshot = only ? [...this.#index].filter(([id]) => only.has(id)) : [...this.#index];
    // The index is in log order, so segments are visited in ascending order: one open at a time.
    let reader: SegmentReader | undefined;
    try {
      for (const [id, entry] of snapshot) {
        if (this.#closing) throw new SpoolClosedError();
        if (this.#index.get(id) !== entry) continue;
        if (reader?.seq !== entry.seq) {
          await reader?.fh.close();
          reader = await this.#openReader(entry.seq);
        }
        const payload = await this.#readPayload(id, entry, reader);
        if (payload) yield { id, payload, appendedAt: new Date(entry.at) };
      }
    } finally {
      await reader?.fh.close();
    }
  }

  stats(): SpoolStats {
    let bytes = 0;
    for (const segment of this.#segments.values()) bytes += segment.bytes;
    const oldest = this.#index.values().next();
    return {
      unacked: this.#index.size,
      oldestUnackedAt: oldest.done ? undefined : new Date(oldest.value.at),
      segments: this.#segments.size,
      bytes,
      appends: this.#appends,
      acks: this.#acks,
      fsyncs: this.#sync.fsyncs,
      lastFsyncMs: this.#sync.lastFsyncMs,
      failed: this.#failure !== undefined,
    };
  }

  /**
   * Calls `observer` with the seconds each group-commit fdatasync took (one call per flush round,
   * however many records it carried), e.g. for a latency histogram. Returns a function that stops
   * it. An observer that throws is ignored: metrics must never fail the write path.
   */
  observeFsyncs(observer: (seconds: number) => void): () => void {
    if (typeof observer !== 'function')
      throw new SpoolInvalidOptionsError('an fsync observer must be a function');
    this.#fsyncObservers.add(observer);
    return () => {
      this.#fsyncObservers.delete(observer);
    };
  }

  /** Waits for every queued record to be durable, then releases the directory. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    await this.#flushing;
    try {
      await this.#active.fh.close();
    } finally {
      await this.#lock.release();
    }
  }

  #assertWritable(): void {
    if (this.#closing) throw new SpoolClosedError();
    if (this.#failure) throw new SpoolFailedError(this.#failure);
  }

  #enqueue(kind: RecordKind, id: string, at: number, frame: Buffer, live: boolean): Promise<void> {
    const durable = Promise.withResolvers<void>();
    this.#queue.push({ kind, id, at, frame, durable });
    this.#intents.set(id, { live, durable: durable.promise });
    this.#flushing ??= this.#flushLoop();
    return durable.promise;
  }

  /**
   * The single flusher. While one write + fdatasync is in flight, new records queue up; the next
   * round takes all of them, so the number of fsyncs grows with time, not with callers.
   */
  async #flushLoop(): Promise<void> {
    // Let the rest of a synchronous burst of appends join the first round.
    await Promise.resolve();
    while (this.#queue.length > 0 && !this.#failure) {
      try {
        await this.#flushRound();
      } catch (err) {
        this.#failClosed(err);
      }
    }
    this.#flushing = undefined;
  }

  async #flushRound(): Promise<void> {
    const { maxSegmentBytes } = this.#options;
    const rolled = this.#mustRoll(this.#queue[0]!);
    if (rolled) await this.#roll();

    const { state, fh } = this.#active;
    let take = 0;
    let bytes = 0;
    for (const record of this.#queue) {
      if (take > 0 && state.bytes + bytes + record.frame.length > maxSegmentBytes) break;
      bytes += record.frame.length;
      take++;
    }
    const batch = this.#queue.splice(0, take);
    const start = state.bytes;
    const frames = batch.map((r) => r.frame);
    const data = frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes);
    try {
      await writeFully(fh, data, start);
      await syncData(fh, this.#sync);
    } catch (err) {
      this.#failClosed(err, batch);
      return;
    }
    state.bytes += bytes;
    this.#notifyFsync(this.#sync.lastFsyncMs / 1000);

    let offset = start;
    let acked = false;
    for (const record of batch) {
      acked = this.#apply(record, state, offset) || acked;
      offset += record.frame.length;
    }
    for (const record of batch) record.durable.resolve();

    if (acked || rolled) {
      await enforceRetention(this.#segmentsDir, this.#segments, this.#active.state.seq, this.#sync);
    }
  }

  #notifyFsync(seconds: number): void {
    for (const observer of this.#fsyncObservers) {
      try {
        observer(seconds);
      } catch {
        // An observer's failure is its own; the records are durable either way.
      }
    }
  }

  /** Rolls before a record would take a non-empty segment past the limit. */
  #mustRoll(next: PendingRecord): boolean {
    const { state } = this.#active;
    return (
      state.bytes > SEGMENT_HEADER_BYTES && state.bytes + next.frame.length > this.#options.maxSegmentBytes
    );
  }

  async #roll(): Promise<void> {
    const previous = this.#active;
    const next = await createSegment(this.#segmentsDir, previous.state.seq + 1, this.#sync);
    this.#segments.set(next.state.seq, next.state);
    this.#active = next;
    await previous.fh.close();
  }

  /** Applies a durable record to the index; true when it acked something. */
  #apply(record: PendingRecord, segment: SegmentState, offset: number): boolean {
    if (this.#intents.get(record.id)?.durable === record.durable.promise) this.#intents.delete(record.id);
    if (record.kind === 'append') {
      this.#index.set(record.id, { seq: segment.seq, offset, length: record.frame.length, at: record.at });
      segment.liveAppends++;
      segment.hasAppends = true;
      this.#appends++;
      return false;
    }
    this.#acks++;
    const entry = this.#index.get(record.id);
    if (!entry) return false;
    this.#index.delete(record.id);
    const owner = this.#segments.get(entry.seq);
    if (owner) owner.liveAppends--;
    if (entry.seq !== segment.seq) segment.ackedFrom.add(entry.seq);
    return true;
  }

  /**
   * After a failed write or fsync the kernel may have dropped the dirty pages and cleared the
   * error, so a retry could "succeed" over lost data. Refuse everything until a reopen rescans.
   */
  #failClosed(cause: unknown, batch: readonly PendingRecord[] = []): void {
    const failure = cause instanceof SpoolWriteError ? cause : new SpoolWriteError(cause);
    this.#failure ??= failure;
    for (const record of [...batch, ...this.#queue.splice(0)]) record.durable.reject(failure);
    this.#intents.clear();
  }

  async #openReader(seq: number): Promise<SegmentReader | undefined> {
    const segment = this.#segments.get(seq);
    const fh = segment && (await open(segment.path, 'r').catch(ignoreMissing));
    // Held until the iteration moves on: an unlinked segment stays readable through an open handle.
    return fh && { seq, name: segment.name, fh, window: new WindowReader(fh, segment.bytes) };
  }

  async #readPayload(
    id: string,
    entry: IndexEntry,
    reader: SegmentReader | undefined,
  ): Promise<Uint8Array | undefined> {
    if (!reader) {
      // Only an ack that landed meanwhile lets a segment go away.
      if (this.#index.get(id) !== entry) return undefined;
      throw new SpoolCorruptRecordError(String(entry.seq), entry.offset, 'segment file is missing');
    }
    const { name } = reader;
    // Records come in append order, so one read-ahead window serves many of them.
    const frame = await reader.window.get(entry.offset, entry.length);
    if (frame.length !== entry.length) {
      throw new SpoolCorruptRecordError(name, entry.offset, 'segment is shorter than the record');
    }
    const header = frame.subarray(0, FRAME_HEADER_BYTES);
    const checked = checkFrameHeader(header);
    if (!checked.ok) throw new SpoolCorruptRecordError(name, entry.offset, checked.reason);
    const decoded = decodeFrame(header, frame.subarray(FRAME_HEADER_BYTES));
    if (!decoded.ok) throw new SpoolCorruptRecordError(name, entry.offset, decoded.reason);
    if (decoded.value.id !== id || decoded.value.kind !== 'append') {
      throw new SpoolCorruptRecordError(name, entry.offset, 'record does not match the index');
    }
    // A copy, so a payload the caller keeps does not pin the whole window.
    return new Uint8Array(decoded.value.payload);
  }
}

/** Creates `dir` if needed and makes each new level's directory entry durable. */
async function makeDirDurably(dir: string, sync: SyncCounter): Promise<void> {
  const firstCreated = await mkdir(dir, { recursive: true });
  if (firstCreated === undefined) return;
  for (let level = dir; ; level = path.dirname(level)) {
    await syncDir(path.dirname(level), sync);
    if (level === firstCreated) break;
  }
}
