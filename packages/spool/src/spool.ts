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
  checkId,
  checkPayload,
  decodeFrame,
  encodeFrame,
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

/**
 * A queued record; the latest one queued for an id also says what that id will look like once
 * every queued record is durable.
 */
interface PendingRecord {
  readonly kind: RecordKind;
  readonly id: string;
  readonly at: number;
  readonly frame: Buffer;
  /** Shared by every record queued for the same flush round. */
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
  readonly #intents = new Map<string, PendingRecord>();
  readonly #sync: SyncCounter;
  readonly #fsyncObservers = new Set<(seconds: number) => void>();
  #active: ActiveSegment;
  #queue: PendingRecord[] = [];
  /** Settles when every record now in `#queue` is durable (or the spool failed). */
  #queueDurable: PromiseWithResolvers<void> | undefined;
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
   * nothing and resolves once the original is durable. A rejection does not mean the record is
   * absent: a write that failed part way may still be found, and replayed, after a reopen.
   */
  append(id: string, payload: Uint8Array): Promise<void> {
    // Not `async`: a promise per call fewer on the hottest path; errors still arrive as rejections.
    try {
      this.#assertWritable();
      const idByteLength = checkId(id);
      checkPayload(payload);
      const intent = this.#intents.get(id);
      if (intent ? intent.kind === 'append' : this.#index.has(id)) return intent?.durable ?? RESOLVED;
      const at = Date.now();
      return this.#enqueue('append', id, at, encodeFrame('append', id, idByteLength, at, payload));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Resolves once the ack is durable. Acking an unknown or already acked id writes nothing. */
  ack(id: string): Promise<void> {
    try {
      this.#assertWritable();
      const idByteLength = checkId(id);
      const intent = this.#intents.get(id);
      if (!(intent ? intent.kind === 'append' : this.#index.has(id))) return intent?.durable ?? RESOLVED;
      const at = Date.now();
      return this.#enqueue('ack', id, at, encodeFrame('ack', id, idByteLength, at));
    } catch (err) {
      return Promise.reject(err);
    }
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
   * Calls `observer` with the seconds each group-commit fdatasync took (one call per fdatasync,
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

  #enqueue(kind: RecordKind, id: string, at: number, frame: Buffer): Promise<void> {
    this.#queueDurable ??= Promise.withResolvers<void>();
    const record: PendingRecord = { kind, id, at, frame, durable: this.#queueDurable.promise };
    this.#queue.push(record);
    this.#intents.set(id, record);
    this.#flushing ??= this.#flushLoop();
    return record.durable;
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

  /**
   * Takes every queued record: one write + fdatasync, or one per segment when they fill the
   * active one. Their shared promise settles once all of them are durable.
   */
  async #flushRound(): Promise<void> {
    const batch = this.#queue;
    const durable = this.#queueDurable!;
    this.#queue = [];
    this.#queueDurable = undefined;
    let rolled = false;
    let acked = false;
    try {
      for (let from = 0; from < batch.length; ) {
        if (this.#mustRoll(batch[from]!)) {
          await this.#roll();
          rolled = true;
        }
        const to = this.#fitting(batch, from);
        acked = (await this.#writeDurably(batch, from, to)) || acked;
        from = to;
      }
    } catch (err) {
      this.#failClosed(err, durable);
      return;
    }
    durable.resolve();
    if (acked || rolled) {
      await enforceRetention(this.#segmentsDir, this.#segments, this.#active.state.seq, this.#sync);
    }
  }

  /** The end of the run of records from `from` that fits in the active segment (at least one). */
  #fitting(batch: readonly PendingRecord[], from: number): number {
    const room = this.#options.maxSegmentBytes - this.#active.state.bytes;
    let bytes = batch[from]!.frame.length;
    let to = from + 1;
    while (to < batch.length && bytes + batch[to]!.frame.length <= room) bytes += batch[to++]!.frame.length;
    return to;
  }

  /** Writes and syncs `batch[from..to)` to the active segment, then indexes it; true when it acked something. */
  async #writeDurably(batch: readonly PendingRecord[], from: number, to: number): Promise<boolean> {
    const { state, fh } = this.#active;
    const start = state.bytes;
    let data: Buffer;
    if (to - from === 1) data = batch[from]!.frame;
    else {
      const frames: Buffer[] = [];
      for (let i = from; i < to; i++) frames.push(batch[i]!.frame);
      data = Buffer.concat(frames);
    }
    await writeFully(fh, data, start);
    await syncData(fh, this.#sync);
    state.bytes += data.length;
    this.#notifyFsync(this.#sync.lastFsyncMs / 1000);

    let offset = start;
    let acked = false;
    for (let i = from; i < to; i++) {
      const record = batch[i]!;
      acked = this.#apply(record, state, offset) || acked;
      offset += record.frame.length;
    }
    return acked;
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
    if (this.#intents.get(record.id) === record) this.#intents.delete(record.id);
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
  #failClosed(cause: unknown, taken?: PromiseWithResolvers<void>): void {
    const failure = cause instanceof SpoolWriteError ? cause : new SpoolWriteError(cause);
    this.#failure ??= failure;
    taken?.reject(failure);
    this.#queueDurable?.reject(failure);
    this.#queue = [];
    this.#queueDurable = undefined;
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

const RESOLVED = Promise.resolve();

/** Creates `dir` if needed and makes each new level's directory entry durable. */
async function makeDirDurably(dir: string, sync: SyncCounter): Promise<void> {
  const firstCreated = await mkdir(dir, { recursive: true });
  if (firstCreated === undefined) return;
  for (let level = dir; ; level = path.dirname(level)) {
    await syncDir(path.dirname(level), sync);
    if (level === firstCreated) break;
  }
}
