import { SPOOL_MAX_PAYLOAD_BYTES } from '@holdfast/spool';

/**
 * An accepted event is one spool record (its JSON, with its route), and the spool refuses a
 * record over its cap. The limits on what a caller may send are derived from that cap, so that
 * input which passes validation also fits: a larger event is the caller's error (a
 * ValidationError), never a failure to write that a retry could get past.
 */
export const MAX_EVENT_BYTES = SPOOL_MAX_PAYLOAD_BYTES;

/**
 * Room left in an event beside its one large field (a record's document, an email's attachments)
 * for everything else: the envelope, headers, bodies, the caller's data and metadata. What needs
 * more is still refused, naming the encoded event.
 */
const HEADROOM_BYTES = 64 * 1024;

/** A record's document travels base64-encoded in its event: 4 bytes for every 3. */
export const MAX_DOCUMENT_BYTES = Math.floor((MAX_EVENT_BYTES - HEADROOM_BYTES) / 4) * 3;

/**
 * An email's attachments, all together. The MIME carries them as base64 lines of 76 characters
 * and CRLF, which the event's JSON writes as 80 (`\r\n`): 57 bytes of content per 80.
 */
export const MAX_ATTACHMENTS_BYTES = Math.floor((MAX_EVENT_BYTES - HEADROOM_BYTES) / 80) * 57;

/** A limit in MiB for messages, rounded down (a limit shown rounded up would promise too much). */
export function mebibytes(bytes: number): string {
  return `${Math.floor((bytes / (1024 * 1024)) * 10) / 10} MiB`;
}
