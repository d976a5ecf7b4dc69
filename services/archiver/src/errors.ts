import { HoldfastError } from '@holdfast/core';

/** The event's payload does not match the hash it was accepted with. */
export class PayloadHashMismatchError extends HoldfastError {
  constructor(eventId: string) {
    super(
      'HOLDFAST_ERR_PAYLOAD_HASH_MISMATCH',
      `event ${eventId}: message bytes do not match their recorded sha256`,
    );
  }
}
