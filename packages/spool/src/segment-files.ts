import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { SyncCounter } from './durable-fs.ts';
import { syncDir, syncFile, writeFully } from './durable-fs.ts';
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES } from './record-format.ts';
import type { SegmentState } from './spool-types.ts';

const SEGMENT_NAME = /^(\d{16})\.log$/;
/** Suffix of a segment being rewritten; a leftover one is an interrupted rewrite. */
export const REWRITE_SUFFIX = '.rewrite';

export interface ActiveSegment {
  readonly state: SegmentState;
  readonly fh: FileHandle;
}

export function segmentName(seq: number): string {
  return `${String(seq).padStart(16, '0')}.log`;
}

export function parseSegmentName(name: string): number | undefined {
  const match = SEGMENT_NAME.exec(name);
  return match ? Number(match[1]) : undefined;
}

export function newSegmentState(dir: string, seq: number, bytes: number): SegmentState {
  const name = segmentName(seq);
  return {
    seq,
    name,
    path: path.join(dir, name),
    bytes,
    liveAppends: 0,
    hasAppends: false,
    ackedFrom: new Set(),
  };
}

/**
 * The header and the directory entry are made durable before the segment is used, so no record in
 * it is ever reported durable while the file itself could vanish in a power loss.
 */
export async function createSegment(dir: string, seq: number, counter: SyncCounter): Promise<ActiveSegment> {
  const state = newSegmentState(dir, seq, SEGMENT_HEADER_BYTES);
  const fh = await open(state.path, 'wx');
  try {
    await writeFully(fh, encodeSegmentHeader(), 0);
    await syncFile(fh, counter);
    await syncDir(dir, counter);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return { state, fh };
}

/** Continues an existing, fully validated segment; writes go at `state.bytes`. */
export async function reopenSegment(state: SegmentState): Promise<ActiveSegment> {
  return { state, fh: await open(state.path, 'r+') };
}
