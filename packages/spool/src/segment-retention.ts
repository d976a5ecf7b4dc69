import { open, rename, unlink } from 'node:fs/promises';
import type { SyncCounter } from './durable-fs.ts';
import { ignoreMissing, syncDir, syncFile, writeFully } from './durable-fs.ts';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from './record-format.ts';
import { REWRITE_SUFFIX } from './segment-files.ts';
import { scanSegment } from './segment-scanner.ts';
import type { SegmentState } from './spool-types.ts';
import { WindowReader } from './window-reader.ts';

const WRITE_CHUNK_BYTES = 1024 * 1024;

/**
 * Keeps only segments that still matter. A segment goes when all its appends are acked, unless its
 * ack records cancel appends in an older segment that survives: dropping those acks would bring
 * acked records back on the next open. Such a segment is rewritten to hold only its acks instead,
 * so the newer segments that ack *its* appends need not be kept for it in turn, and one
 * long-unacked record pins a few small files rather than every segment written after it.
 */
export async function enforceRetention(
  dir: string,
  segments: Map<number, SegmentState>,
  activeSeq: number,
  counter: SyncCounter,
): Promise<void> {
  await removeSegments(dir, removableSegments(segments, activeSeq), segments, counter);
  const pinned = [...segments.values()].filter(
    (s) => s.seq !== activeSeq && s.liveAppends === 0 && s.hasAppends,
  );
  if (pinned.length === 0) return;
  for (const segment of pinned) {
    await rewriteToAcks(segment, counter);
    for (const other of segments.values()) other.ackedFrom.delete(segment.seq);
  }
  await syncDir(dir, counter);
  await removeSegments(dir, removableSegments(segments, activeSeq), segments, counter);
}

/** Not the active segment, every append acked, and no ack needed by an older survivor. */
export function removableSegments(segments: Map<number, SegmentState>, activeSeq: number): SegmentState[] {
  const doomed: SegmentState[] = [];
  const doomedSeqs = new Set<number>();
  // Map order is ascending seq, so an older segment is decided before the newer ones that ack into it.
  for (const segment of segments.values()) {
    if (segment.seq === activeSeq || segment.liveAppends > 0) continue;
    let needed = false;
    for (const older of segment.ackedFrom) {
      if (segments.has(older) && !doomedSeqs.has(older)) needed = true;
    }
    if (needed) continue;
    doomed.push(segment);
    doomedSeqs.add(segment.seq);
  }
  return doomed;
}

/**
 * Unlinks segments in ascending order, then syncs the directory once. A crash in between can at
 * worst bring a fully acked segment back, which re-delivers records but never loses one.
 */
async function removeSegments(
  dir: string,
  doomed: readonly SegmentState[],
  segments: Map<number, SegmentState>,
  counter: SyncCounter,
): Promise<void> {
  if (doomed.length === 0) return;
  for (const segment of doomed) {
    await unlink(segment.path).catch(ignoreMissing);
    segments.delete(segment.seq);
  }
  for (const segment of segments.values()) {
    for (const gone of doomed) segment.ackedFrom.delete(gone.seq);
  }
  await syncDir(dir, counter);
}

/**
 * Replaces a fully acked segment by a copy holding only its ack records, under the same name so
 * they keep their place in replay order. The copy is durable before the rename; a crash leaves
 * either the original or the copy, both correct. The caller syncs the directory.
 */
async function rewriteToAcks(segment: SegmentState, counter: SyncCounter): Promise<void> {
  const scan = await scanSegment(segment.path);
  const temp = `${segment.path}${REWRITE_SUFFIX}`;
  const source = await open(segment.path, 'r');
  let size = SEGMENT_HEADER_BYTES;
  try {
    const copy = await open(temp, 'w');
    try {
      await writeFully(copy, encodeSegmentHeader(), 0);
      const reader = new WindowReader(source, scan.size);
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      const flush = async () => {
        await writeFully(copy, Buffer.concat(pending, pendingBytes), size);
        size += pendingBytes;
        pending = [];
        pendingBytes = 0;
      };
      for (const record of scan.records) {
        if (record.kind !== 'ack') continue;
        pending.push(Buffer.from(await reader.get(record.offset, record.length)));
        pendingBytes += record.length;
        if (pendingBytes >= WRITE_CHUNK_BYTES) await flush();
      }
      await flush();
      await syncFile(copy, counter);
    } finally {
      await copy.close();
    }
  } finally {
    await source.close();
  }
  await rename(temp, segment.path);
  segment.bytes = size;
  segment.hasAppends = false;
}
