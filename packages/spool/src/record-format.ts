import { crc32 } from 'node:zlib';
import { SpoolInvalidIdError, SpoolInvalidPayloadError, SpoolPayloadTooLargeError } from './errors.ts';

/*
 * Segment file:  header (16 bytes) then frames, back to back.
 *   header:      "HFSPOOL\0" | u32le format version | u32le CRC-32 of the previous 12 bytes
 *   frame:       u8[4] sync | u32le body length | u8 kind | u8[3] zero | u32le CRC-32 | body
 *                the CRC covers bytes 4..12 of the frame (length, kind) and then the body, so a
 *                flipped length or kind is caught as well as a flipped body byte.
 *   body:        u16le id length | id (UTF-8) | f64le time (ms since epoch) | payload (appends only)
 */

export const SEGMENT_HEADER_BYTES = 16;
export const FRAME_HEADER_BYTES = 16;
export const FORMAT_VERSION = 1;
export const MAX_ID_BYTES = 512;
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

const SEGMENT_MAGIC = Buffer.from('HFSPOOL\0', 'latin1');
// 0xFF and 0xF5 never occur in UTF-8, so text and JSON payloads cannot hold a false sync marker;
// recovery searches for it to resynchronise after a damaged frame.
export const FRAME_SYNC = Buffer.from([0xff, 0xf5, 0x53, 0x50]);
const BODY_FIXED_BYTES = 2 + 8;
const MAX_BODY_BYTES = BODY_FIXED_BYTES + MAX_ID_BYTES + MAX_PAYLOAD_BYTES;

export type RecordKind = 'append' | 'ack';
const KIND_CODE = { append: 1, ack: 2 } as const;

export interface DecodedRecord {
  kind: RecordKind;
  id: string;
  /** ms since epoch: append time for appends, ack time for acks. */
  at: number;
  payload: Buffer;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

export function encodeSegmentHeader(): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(header, 0);
  header.writeUInt32LE(FORMAT_VERSION, 8);
  header.writeUInt32LE(crc32(header.subarray(0, 12)), 12);
  return header;
}

/** `version` is set when the header is intact but written by a format this code does not know. */
export function checkSegmentHeader(header: Buffer): Checked<void> & { version?: number } {
  if (header.length < SEGMENT_HEADER_BYTES) return { ok: false, reason: 'segment shorter than its header' };
  if (!header.subarray(0, 8).equals(SEGMENT_MAGIC)) return { ok: false, reason: 'bad segment magic' };
  if (header.readUInt32LE(12) !== crc32(header.subarray(0, 12))) {
    return { ok: false, reason: 'bad segment header checksum' };
  }
  const version = header.readUInt32LE(8);
  if (version !== FORMAT_VERSION)
    return { ok: false, reason: `unsupported format version ${version}`, version };
  return { ok: true, value: undefined };
}

/** Validates an id at the API boundary and returns its length in UTF-8 bytes. */
export function checkId(id: unknown): number {
  if (typeof id !== 'string' || id.length === 0) throw new SpoolInvalidIdError('expected a non-empty string');
  if (!id.isWellFormed()) throw new SpoolInvalidIdError('contains a lone surrogate');
  const byteLength = Buffer.byteLength(id, 'utf8');
  if (byteLength > MAX_ID_BYTES) {
    throw new SpoolInvalidIdError(`${byteLength} UTF-8 bytes, the maximum is ${MAX_ID_BYTES}`);
  }
  return byteLength;
}

export function checkPayload(payload: unknown): Uint8Array {
  if (!(payload instanceof Uint8Array)) throw new SpoolInvalidPayloadError('expected a Uint8Array');
  if (payload.byteLength > MAX_PAYLOAD_BYTES) {
    throw new SpoolPayloadTooLargeError(payload.byteLength, MAX_PAYLOAD_BYTES);
  }
  return payload;
}

/** `idByteLength` is what `checkId` returned for `id`. */
export function encodeFrame(
  kind: RecordKind,
  id: string,
  idByteLength: number,
  at: number,
  payload?: Uint8Array,
): Buffer {
  const payloadBytes = payload?.byteLength ?? 0;
  const bodyLength = BODY_FIXED_BYTES + idByteLength + payloadBytes;
  // Every byte is written below (the reserved ones as zeros), so the buffer need not be zeroed.
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyLength);
  FRAME_SYNC.copy(frame, 0);
  frame.writeUInt32LE(bodyLength, 4);
  frame.writeUInt8(KIND_CODE[kind], 8);
  frame.fill(0, 9, 12);
  let p = FRAME_HEADER_BYTES;
  p = frame.writeUInt16LE(idByteLength, p);
  p += frame.write(id, p, idByteLength, 'utf8');
  p = frame.writeDoubleLE(at, p);
  if (payload) frame.set(payload, p);
  frame.writeUInt32LE(frameChecksum(frame, frame.subarray(FRAME_HEADER_BYTES)), 12);
  return frame;
}

/** Validates the fixed 16 bytes of a frame; `bodyLength` says how much to read next. */
export function checkFrameHeader(header: Buffer): Checked<{ bodyLength: number }> {
  if (header.length < FRAME_HEADER_BYTES) return { ok: false, reason: 'truncated frame header' };
  if (!header.subarray(0, 4).equals(FRAME_SYNC)) return { ok: false, reason: 'bad frame sync marker' };
  const kind = header[8];
  if (kind !== KIND_CODE.append && kind !== KIND_CODE.ack)
    return { ok: false, reason: 'unknown record kind' };
  if (header[9] !== 0 || header[10] !== 0 || header[11] !== 0) {
    return { ok: false, reason: 'nonzero reserved bytes' };
  }
  const bodyLength = header.readUInt32LE(4);
  if (bodyLength < BODY_FIXED_BYTES + 1 || bodyLength > MAX_BODY_BYTES) {
    return { ok: false, reason: 'implausible body length' };
  }
  return { ok: true, value: { bodyLength } };
}

/** Checks the CRC and parses the body of a frame whose header passed `checkFrameHeader`. */
export function decodeFrame(header: Buffer, body: Buffer): Checked<DecodedRecord> {
  if (header.readUInt32LE(12) !== frameChecksum(header, body)) return { ok: false, reason: 'bad CRC' };
  const kind: RecordKind = header[8] === KIND_CODE.append ? 'append' : 'ack';
  const idLength = body.readUInt16LE(0);
  const payloadStart = 2 + idLength + 8;
  if (idLength === 0 || idLength > MAX_ID_BYTES || payloadStart > body.length) {
    return { ok: false, reason: 'malformed record body' };
  }
  if (kind === 'ack' && payloadStart !== body.length)
    return { ok: false, reason: 'ack record with a payload' };
  let id: string;
  try {
    id = strictUtf8.decode(body.subarray(2, 2 + idLength));
  } catch {
    return { ok: false, reason: 'record id is not UTF-8' };
  }
  const at = body.readDoubleLE(2 + idLength);
  return { ok: true, value: { kind, id, at, payload: body.subarray(payloadStart) } };
}

/** `header` may be the whole frame: only its bytes 4..12 count. */
function frameChecksum(header: Buffer, body: Buffer): number {
  return crc32(body, crc32(header.subarray(4, 12)));
}
