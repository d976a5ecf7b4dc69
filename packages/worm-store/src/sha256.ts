import { createHash } from 'node:crypto';

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hexToBase64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

/** `''` when the value is not a single base64 SHA-256 (e.g. a multipart "composite" checksum). */
export function base64ToHex(b64: string | undefined): string {
  if (b64 === undefined || !/^[A-Za-z0-9+/]{43}=$/.test(b64)) return '';
  return Buffer.from(b64, 'base64').toString('hex');
}
