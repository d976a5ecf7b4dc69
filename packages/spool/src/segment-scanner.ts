import { open } from 'node:fs/promises';
import path from 'node:path';
import { SpoolFormatError } from './errors.ts';
import type { Checked, DecodedRecord } from './record-format.ts';
import {
  checkFrameHeader,
  checkSegmentHeader,
  decodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_SYNC,
  SEGMENT_HEADER_BYTES,
} from './record-format.ts';
import { WINDOW_BYTES, WindowReader } from './window-reader.ts';

export interface ScannedRecord {
  kind: DecodedRecord['kind'];
  id: string;
  at: number;
  offset: number;
  length: number;
}

export interface DamagedRange {
  offset: number;
  length: number;
  reason: string;
}

export interface SegmentScan {
  size: number;
  /** Valid frames in file order. */
  records: ScannedRecord[];
  /** Damaged ranges with a valid frame after them. */
  damaged: DamagedRange[];
  /** A damaged range running to end of file: a torn tail if this is the last segment. */
  trailing: DamagedRange | undefined;
}

type Frame = Checked<DecodedRecord & { length: number }>;

/**
 * Validates every frame of a segment. After a bad frame it resynchronises on the next offset where
 * a complete frame validates, so one damaged record never hides the records behind it.
 */
export async function scanSegment(file: string): Promise<SegmentScan> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const reader = new WindowReader(fh, size);
    const records: ScannedRecord[] = [];
    const damaged: DamagedRange[] = [];
    let bad: { offset: number; reason: string } | undefined;

    const header = await reader.get(0, Math.min(SEGMENT_HEADER_BYTES, size));
    const headerCheck = checkSegmentHeader(header);
    if (!headerCheck.ok) {
      // An intact header from another format version: refuse rather than "repair" data we cannot read.
      if (headerCheck.version !== undefined)
        throw new SpoolFormatError(path.basename(file), headerCheck.reason);
      bad = { offset: 0, reason: headerCheck.reason };
    }

    let pos = SEGMENT_HEADER_BYTES;
    while (pos < size) {
      let frame = await readFrame(reader, pos);
      if (!frame.ok) {
        bad ??= { offset: pos, reason: frame.reason };
        const next = await findNextFrame(reader, pos + 1);
        if (!next) break;
        pos = next.offset;
        frame = next.frame;
      }
      if (!frame.ok) break;
      if (bad) {
        damaged.push({ offset: bad.offset, length: pos - bad.offset, reason: bad.reason });
        bad = undefined;
      }
      const { kind, id, at, length } = frame.value;
      records.push({ kind, id, at, offset: pos, length });
      pos += length;
    }
    const trailing = bad && { offset: bad.offset, length: size - bad.offset, reason: bad.reason };
    return { size, records, damaged, trailing };
  } finally {
    await fh.close();
  }
}

/** Reads and fully validates the frame at `offset`. */
async function readFrame(reader: WindowReader, offset: number): Promise<Frame> {
  if (reader.size - offset < FRAME_HEADER_BYTES) return { ok: false, reason: 'truncated frame header' };
  // Copied: reading the body may move the window out from under it.
  const header = Buffer.from(await reader.get(offset, FRAME_HEADER_BYTES));
  const checked = checkFrameHeader(header);
  if (!checked.ok) return checked;
  const length = FRAME_HEADER_BYTES + checked.value.bodyLength;
  if (offset + length > reader.size) return { ok: false, reason: 'frame length past end of segment' };
  const decoded = decodeFrame(
    header,
    await reader.get(offset + FRAME_HEADER_BYTES, checked.value.bodyLength),
  );
  return decoded.ok ? { ok: true, value: { ...decoded.value, length } } : decoded;
}

async function findNextFrame(
  reader: WindowReader,
  from: number,
): Promise<{ offset: number; frame: Frame } | undefined> {
  let pos = from;
  while (reader.size - pos >= FRAME_HEADER_BYTES) {
    const chunk = await reader.get(pos, Math.min(WINDOW_BYTES, reader.size - pos));
    const hit = chunk.indexOf(FRAME_SYNC);
    if (hit < 0) {
      // Keep the last few bytes: a marker may straddle the chunk boundary.
      pos += chunk.length - (FRAME_SYNC.length - 1);
      continue;
    }
    const frame = await readFrame(reader, pos + hit);
    if (frame.ok) return { offset: pos + hit, frame };
    pos += hit + 1;
  }
  return undefined;
}
