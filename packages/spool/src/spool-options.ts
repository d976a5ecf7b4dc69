import path from 'node:path';
import { SpoolInvalidOptionsError } from './errors.ts';
import type { SpoolCorruption } from './spool-types.ts';

export interface SpoolOptions {
  /**
   * Directory owned by this spool, created if missing. One process per directory: `open` takes a
   * pid lock file in it and fails with `SpoolLockedError` while another live process holds it.
   */
  dir: string;
  /**
   * Start a new segment before a write would take the active one past this many bytes (a single
   * record larger than this still gets a segment of its own).
   * @defaultValue 64 MiB
   */
  maxSegmentBytes?: number;
  /**
   * Called, during `open`, for each damaged region found in the middle of the log, after its bytes
   * were copied to the quarantine directory. It is also listed in `openReport.corruptions`.
   * @defaultValue none
   */
  onCorruption?: (corruption: SpoolCorruption) => void;
}

export interface ResolvedSpoolOptions {
  readonly dir: string;
  readonly maxSegmentBytes: number;
  readonly onCorruption: ((corruption: SpoolCorruption) => void) | undefined;
}

export const DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
// Below this a segment would hold little more than its header and a record or two.
const MIN_SEGMENT_BYTES = 1024;

export function resolveSpoolOptions(options: SpoolOptions): ResolvedSpoolOptions {
  if (typeof options !== 'object' || options === null) {
    throw new SpoolInvalidOptionsError('expected an options object');
  }
  const { dir, maxSegmentBytes = DEFAULT_MAX_SEGMENT_BYTES, onCorruption } = options;
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new SpoolInvalidOptionsError('dir must be a non-empty path');
  }
  if (!Number.isSafeInteger(maxSegmentBytes) || maxSegmentBytes < MIN_SEGMENT_BYTES) {
    throw new SpoolInvalidOptionsError(`maxSegmentBytes must be an integer >= ${MIN_SEGMENT_BYTES}`);
  }
  if (onCorruption !== undefined && typeof onCorruption !== 'function') {
    throw new SpoolInvalidOptionsError('onCorruption must be a function');
  }
  return Object.freeze({ dir: path.resolve(dir), maxSegmentBytes, onCorruption });
}
