import { createHash } from 'node:crypto';
import { v7 as uuidv7, validate, version } from 'uuid';

/** Event ids are UUIDv7: unique without coordination and sortable by creation time. */
export function newEventId(): string {
  return uuidv7();
}

export function isEventId(value: string): boolean {
  return validate(value) && version(value) === 7;
}

/**
 * A UUIDv7 derived from a provider's own event identity: the same webhook delivered twice gets
 * the same event id, so the queue (jobId) and the archiver see one event. The 48-bit time field
 * is the provider's timestamp; the remaining 74 bits come from SHA-256 of `identity`.
 */
export function deterministicEventId(at: Date, identity: string): string {
  const ms = Math.max(0, Math.min(at.getTime(), 2 ** 48 - 1));
  const bytes = createHash('sha256').update(identity).digest();
  const out = Buffer.alloc(16);
  out.writeUIntBE(ms, 0, 6);
  bytes.copy(out, 6, 0, 10);
  out[6] = 0x70 | (out[6]! & 0x0f); // version 7
  out[8] = 0x80 | (out[8]! & 0x3f); // RFC 4122 variant
  const hex = out.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
