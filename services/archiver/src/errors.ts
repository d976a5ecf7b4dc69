import { HoldfastError } from '@holdfast/core';

/**
 * A different object already sits at an event's deterministic key. Keys embed a hash of the
 * content, so this means corruption or a bug, never a retry: it needs a person.
 */
export class ArchiveConflictError extends HoldfastError {
  constructor(key: string, expected: string, found: string) {
    super('HOLDFAST_ERR_ARCHIVE_CONFLICT', `object ${key} exists with sha256 ${found}, expected ${expected}`);
  }
}

/** The event's payload does not match the hash it was accepted with. */
export class PayloadHashMismatchError extends HoldfastError {
  constructor(eventId: string) {
    super(
      'HOLDFAST_ERR_PAYLOAD_HASH_MISMATCH',
      `event ${eventId}: message bytes do not match their recorded sha256`,
    );
  }
}
