import { createHash } from 'node:crypto';

/** Deterministic, id-derived payload of varying size, so any garbage or mix-up is detectable. */
export function crashPayload(id: string): Buffer {
  const repeat = 1 + (createHash('sha256').update(id).digest().readUInt16LE(0) % 200);
  return Buffer.from(`${id};`.repeat(repeat));
}
