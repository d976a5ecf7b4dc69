import { open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { SyncCounter } from './durable-fs.ts';
import { readFully, syncDir, syncFile, writeFully } from './durable-fs.ts';
import { SEGMENT_HEADER_BYTES } from './record-format.ts';
import { newSegmentState, parseSegmentName, REWRITE_SUFFIX } from './segment-files.ts';
import type { DamagedRange, ScannedRecord } from './segment-scanner.ts';
import { scanSegment } from './segment-scanner.ts';
import type { IndexEntry, SegmentState, SpoolCorruption, SpoolOpenReport } from './spool-types.ts';

const COPY_CHUNK_BYTES = 1024 * 1024;

export interface RecoveredLog {
  /** Ascending by seq. */
  segments: SegmentState[];
  /** Unacked records in append order. */
  index: Map<string, IndexEntry>;
  report: SpoolOpenReport;
  /** The last segment validated end to end (after tail repair) and may take more records. */
  lastSegmentClean: boolean;
}

/**
 * Rebuilds the index from every segment. Repairs only what a crash can cause (a torn tail of the
 * last segment); anything else that fails validation is copied to quarantine and reported, and
 * the records after it are kept.
 */
export async function recoverLog(
  segmentsDir: string,
  quarantineDir: string,
  counter: SyncCounter,
): Promise<RecoveredLog> {
  const names = await readdir(segmentsDir);
  for (const name of names) {
    // The original is intact until the rename that completes a rewrite, so a leftover is just dropped.
    if (name.endsWith(REWRITE_SUFFIX)) await unlink(path.join(segmentsDir, name));
  }
  const seqs = names
    .map(parseSegmentName)
    .filter((seq) => seq !== undefined)
    .sort((a, b) => a - b);

  const segments = new Map<number, SegmentState>();
  const index = new Map<string, IndexEntry>();
  const corruptions: SpoolCorruption[] = [];
  let truncatedTailBytes = 0;
  let lastSegmentClean = false;
  let segmentsDirChanged = false;

  for (const [i, seq] of seqs.entries()) {
    const state = newSegmentState(segmentsDir, seq, 0);
    const scan = await scanSegment(state.path);
    const isLast = i === seqs.length - 1;
    const damaged: DamagedRange[] = [...scan.damaged];
    let removed = false;
    state.bytes = scan.size;

    // Only the last segment is written without a later fsync covering it, so only its end can be
    // a torn write, and nothing in a torn write was ever acknowledged. A bad header is torn only
    // if nothing follows it: the header is made durable before any record is written.
    const torn =
      isLast &&
      scan.trailing !== undefined &&
      (scan.trailing.offset >= SEGMENT_HEADER_BYTES || scan.size <= SEGMENT_HEADER_BYTES);
    if (scan.trailing && torn) {
      truncatedTailBytes += scan.trailing.length;
      if (scan.trailing.offset < SEGMENT_HEADER_BYTES) {
        await unlink(state.path);
        segmentsDirChanged = true;
        removed = true;
      } else {
        await truncateDurably(state.path, scan.trailing.offset, counter);
        state.bytes = scan.trailing.offset;
      }
    } else if (scan.trailing) {
      damaged.push(scan.trailing);
    }

    for (const range of damaged) {
      const quarantinedTo = await quarantine(state, range, quarantineDir, counter);
      corruptions.push({ segment: state.name, ...range, quarantinedTo });
    }

    if (removed) continue;
    segments.set(seq, state);
    for (const record of scan.records) applyRecord(record, state, index, segments);
    lastSegmentClean = isLast && damaged.length === 0;
  }

  // The copies must be durable before the segments they came from may be removed.
  if (corruptions.length > 0) await syncDir(quarantineDir, counter);
  if (segmentsDirChanged) await syncDir(segmentsDir, counter);

  return {
    segments: [...segments.values()],
    index,
    report: Object.freeze({
      truncatedTailBytes,
      corruptions: Object.freeze(corruptions),
      recovered: index.size,
    }),
    lastSegmentClean,
  };
}

function applyRecord(
  record: ScannedRecord,
  segment: SegmentState,
  index: Map<string, IndexEntry>,
  segments: ReadonlyMap<number, SegmentState>,
): void {
  const existing = index.get(record.id);
  if (record.kind === 'append') {
    segment.hasAppends = true;
    // The first copy stays: the id is reported once, at its original position.
    if (existing) return;
    index.set(record.id, { seq: segment.seq, offset: record.offset, length: record.length, at: record.at });
    segment.liveAppends++;
    return;
  }
  if (!existing) return;
  index.delete(record.id);
  const owner = segments.get(existing.seq);
  if (owner) owner.liveAppends--;
  if (existing.seq !== segment.seq) segment.ackedFrom.add(existing.seq);
}

async function truncateDurably(file: string, length: number, counter: SyncCounter): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.truncate(length);
    await syncFile(fh, counter);
  } finally {
    await fh.close();
  }
}

async function quarantine(
  segment: SegmentState,
  range: DamagedRange,
  quarantineDir: string,
  counter: SyncCounter,
): Promise<string> {
  const target = path.join(quarantineDir, `${path.basename(segment.name, '.log')}-${range.offset}.bin`);
  const source = await open(segment.path, 'r');
  try {
    // Same name for the same damage: reopening again overwrites the copy instead of piling up more.
    const copy = await open(target, 'w');
    try {
      const buffer = Buffer.allocUnsafe(Math.min(COPY_CHUNK_BYTES, range.length));
      for (let done = 0; done < range.length; ) {
        const want = Math.min(buffer.length, range.length - done);
        const got = await readFully(source, buffer.subarray(0, want), range.offset + done);
        if (got === 0) break;
        await writeFully(copy, buffer.subarray(0, got), done);
        done += got;
      }
      await syncFile(copy, counter);
    } finally {
      await copy.close();
    }
  } finally {
    await source.close();
  }
  return target;
}
