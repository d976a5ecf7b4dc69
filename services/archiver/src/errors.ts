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

/** Another job is archiving a provider duplicate of this event; this one retries until it is done. */
export class DuplicateInFlightError extends HoldfastError {
  constructor(eventId: string) {
    super('HOLDFAST_ERR_DUPLICATE_IN_FLIGHT', `a duplicate of event ${eventId} is being archived; retrying`);
  }
}
