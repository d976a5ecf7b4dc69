import { randomBytes } from 'node:crypto';

// Crockford base32, as in ULID: ids sort lexicographically in creation order.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const VERSION_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

let lastTime = -1;
let lastRandom = new Uint8Array(10);

function encode(value: bigint, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) {
    out = ALPHABET[Number(value & 31n)] + out;
    value >>= 5n;
  }
  return out;
}

function increment(bytes: Uint8Array): boolean {
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i] !== 0xff) {
      bytes[i] = bytes[i]! + 1;
      return true;
    }
    bytes[i] = 0;
  }
  return false;
}

/**
 * A ULID: 48-bit millisecond time + 80 random bits, monotonic within this process (same
 * millisecond → random part + 1), so the latest version of a key is the greatest id.
 */
export function newVersionId(nowMs: number = Date.now()): string {
  if (nowMs > lastTime) {
    lastTime = nowMs;
    lastRandom = new Uint8Array(randomBytes(10));
  } else if (!increment(lastRandom)) {
    lastTime += 1;
    lastRandom = new Uint8Array(randomBytes(10));
  }
  const random = BigInt(`0x${Buffer.from(lastRandom).toString('hex')}`);
  return encode(BigInt(lastTime), 10) + encode(random, 16);
}

export function isVersionId(value: string): boolean {
  return VERSION_ID.test(value);
}
