/** A damaged region found in the middle of the log when the spool was opened. */
export interface SpoolCorruption {
  /** Segment file name, e.g. `0000000000000003.log`. */
  segment: string;
  /** Byte offset of the damaged region in the segment. */
  offset: number;
  /** Length of the damaged region in bytes. */
  length: number;
  /** What failed to validate at `offset` (the first problem seen). */
  reason: string;
  /** Absolute path of the copy of the damaged bytes. */
  quarantinedTo: string;
}

export interface SpoolOpenReport {
  /** Bytes cut from the end of the last segment: a write that was torn by a crash and never acknowledged. */
  readonly truncatedTailBytes: number;
  readonly corruptions: readonly SpoolCorruption[];
  /** Unacknowledged records found in the log. */
  readonly recovered: number;
}

export interface SpoolRecord {
  id: string;
  payload: Uint8Array;
  appendedAt: Date;
}

export interface SpoolStats {
  unacked: number;
  oldestUnackedAt: Date | undefined;
  segments: number;
  bytes: number;
  /** Append records made durable since open. */
  appends: number;
  /** Ack records made durable since open. */
  acks: number;
  /** fsync/fdatasync calls (records, segment files, directories) since open. */
  fsyncs: number;
  /** Duration of the latest record fdatasync. */
  lastFsyncMs: number;
  /** A write or fsync failed: every append is refused until the spool is reopened (fail closed). */
  failed: boolean;
}

/** Where an unacknowledged record lives; payloads stay on disk. */
export interface IndexEntry {
  readonly seq: number;
  readonly offset: number;
  readonly length: number;
  readonly at: number;
}

export interface SegmentState {
  readonly seq: number;
  readonly name: string;
  readonly path: string;
  bytes: number;
  /** Append records in this segment still unacknowledged. */
  liveAppends: number;
  /** The file holds append records at all, live or acked (false once rewritten to its acks). */
  hasAppends: boolean;
  /**
   * Older segments holding appends that ack records in this segment cancel. While one of them
   * survives, this segment must too, or those appends would come back on the next open.
   */
  readonly ackedFrom: Set<number>;
}
