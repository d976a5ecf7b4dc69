import { HoldfastError } from '@holdfast/core';

/** `Spool.open` was given options it cannot work with; nothing was opened. */
export class SpoolInvalidOptionsError extends HoldfastError {
  constructor(message: string) {
    super('HOLDFAST_ERR_SPOOL_INVALID_OPTIONS', `invalid spool options: ${message}`);
  }
}

/** Another live process (or another `Spool` in this one) holds the directory's lock. */
export class SpoolLockedError extends HoldfastError {
  readonly dir: string;
  readonly holderPid: number | undefined;

  constructor(dir: string, holderPid: number | undefined) {
    const holder = holderPid === undefined ? 'another process' : `process ${holderPid}`;
    super('HOLDFAST_ERR_SPOOL_LOCKED', `spool directory ${dir} is locked by ${holder}`);
    this.dir = dir;
    this.holderPid = holderPid;
  }
}

/** The spool was closed; it accepts no further appends or acks. */
export class SpoolClosedError extends HoldfastError {
  constructor() {
    super('HOLDFAST_ERR_SPOOL_CLOSED', 'spool is closed');
  }
}

/** A record id is empty, too long, or not a well-formed string; nothing was written. */
export class SpoolInvalidIdError extends HoldfastError {
  constructor(message: string) {
    super('HOLDFAST_ERR_SPOOL_INVALID_ID', `invalid spool record id: ${message}`);
  }
}

/** A payload is not a `Uint8Array`; nothing was written. */
export class SpoolInvalidPayloadError extends HoldfastError {
  constructor(message: string) {
    super('HOLDFAST_ERR_SPOOL_INVALID_PAYLOAD', `invalid spool payload: ${message}`);
  }
}

/** A payload exceeds the per-record cap; nothing was written. */
export class SpoolPayloadTooLargeError extends HoldfastError {
  readonly bytes: number;
  readonly maxBytes: number;

  constructor(bytes: number, maxBytes: number) {
    super('HOLDFAST_ERR_SPOOL_PAYLOAD_TOO_LARGE', `spool payload is ${bytes} bytes, the cap is ${maxBytes}`);
    this.bytes = bytes;
    this.maxBytes = maxBytes;
  }
}

/**
 * Writing or syncing the log failed. The records of that flush are not durable, and the spool
 * refuses further writes until reopened: after a failed fsync the kernel may have dropped the dirty
 * pages, so the state of the file is unknown and only a recovery scan can establish it again.
 */
export class SpoolWriteError extends HoldfastError {
  constructor(cause: unknown) {
    super('HOLDFAST_ERR_SPOOL_WRITE', `spool write failed: ${describe(cause)}`, { cause });
  }
}

/** An earlier write failure put the spool in the failed state; reopen it to recover. */
export class SpoolFailedError extends HoldfastError {
  constructor(cause: unknown) {
    super('HOLDFAST_ERR_SPOOL_FAILED', `spool refuses writes after an earlier failure: ${describe(cause)}`, {
      cause,
    });
  }
}

/** A segment carries a format version this code does not understand; nothing was changed on disk. */
export class SpoolFormatError extends HoldfastError {
  readonly segment: string;

  constructor(segment: string, message: string) {
    super('HOLDFAST_ERR_SPOOL_FORMAT', `spool segment ${segment}: ${message}`);
    this.segment = segment;
  }
}

/** A record that validated when the spool was opened no longer does when read back. */
export class SpoolCorruptRecordError extends HoldfastError {
  readonly segment: string;
  readonly offset: number;

  constructor(segment: string, offset: number, reason: string) {
    super(
      'HOLDFAST_ERR_SPOOL_CORRUPT_RECORD',
      `spool record at ${segment}:${offset} is unreadable: ${reason}`,
    );
    this.segment = segment;
    this.offset = offset;
  }
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
