import { InvalidKeyError, InvalidObjectInputError } from './errors.ts';
import type { PutObjectFileBody, PutObjectInput } from './object-store.ts';

const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const METADATA_KEY = /^[a-z0-9][a-z0-9._-]*$/;
const METADATA_VALUE = /^[\x20-\x7e]*$/;

function checkPathText(value: string, what: 'key' | 'prefix'): void {
  if (Buffer.byteLength(value) > MAX_KEY_BYTES) {
    throw new InvalidKeyError(value, `a ${what} is at most ${MAX_KEY_BYTES} bytes of UTF-8`);
  }
  if (!value.isWellFormed()) throw new InvalidKeyError(value, `a ${what} must be well-formed Unicode`);
  if (CONTROL.test(value)) throw new InvalidKeyError(value, `a ${what} must not contain control characters`);
  if (value.startsWith('/')) throw new InvalidKeyError(value, `a ${what} must not start with "/"`);
  if (value.includes('..')) throw new InvalidKeyError(value, `a ${what} must not contain ".."`);
}

/** Keys map to paths on the local store, so both stores accept only path-safe keys. */
export function validateKey(key: unknown): string {
  if (typeof key !== 'string') throw new InvalidKeyError(String(key), 'a key must be a string');
  if (key === '') throw new InvalidKeyError(key, 'a key must not be empty');
  checkPathText(key, 'key');
  for (const segment of key.split('/')) {
    if (segment === '')
      throw new InvalidKeyError(key, 'a key must not contain empty segments or end with "/"');
    if (segment === '.') throw new InvalidKeyError(key, 'a key must not contain "." segments');
  }
  return key;
}

/** A list prefix may be empty and may end with `/`. */
export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string') throw new InvalidKeyError(String(prefix), 'a prefix must be a string');
  checkPathText(prefix, 'prefix');
  return prefix;
}

export function validateVersionId(versionId: unknown): string {
  if (
    typeof versionId !== 'string' ||
    versionId === '' ||
    versionId.length > 1024 ||
    CONTROL.test(versionId)
  ) {
    throw new InvalidObjectInputError('versionId', `${JSON.stringify(versionId)} is not a version id`);
  }
  return versionId;
}

export function validateDate(value: unknown, field: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidObjectInputError(field, `${String(value)} is not a valid Date`);
  }
  return value;
}

export function validateFutureDate(value: unknown, field: string, now: Date): Date {
  const date = validateDate(value, field);
  if (date.getTime() <= now.getTime()) {
    throw new InvalidObjectInputError(
      field,
      `${date.toISOString()} is not in the future (now is ${now.toISOString()})`,
    );
  }
  return date;
}

export function validateSha256(value: unknown): string {
  if (typeof value !== 'string' || !SHA256_HEX.test(value)) {
    throw new InvalidObjectInputError('sha256', `${JSON.stringify(value)} is not 64 lowercase hex digits`);
  }
  return value;
}

function validateMetadata(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidObjectInputError('metadata', 'must be an object of string values');
  }
  let bytes = 0;
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) {
    if (!METADATA_KEY.test(name)) {
      throw new InvalidObjectInputError(
        `metadata.${name}`,
        'names are lowercase letters, digits, ".", "_" and "-", starting with a letter or digit',
      );
    }
    if (typeof v !== 'string' || !METADATA_VALUE.test(v)) {
      throw new InvalidObjectInputError(`metadata.${name}`, 'values are strings of printable ASCII');
    }
    bytes += name.length + v.length;
    out[name] = v;
  }
  if (bytes > MAX_METADATA_BYTES) {
    throw new InvalidObjectInputError(
      'metadata',
      `is ${bytes} bytes; at most ${MAX_METADATA_BYTES} are allowed`,
    );
  }
  return out;
}

/** Bytes, or `{ path, size }` of a file to stream them from. */
function validateBody(body: unknown): Uint8Array | PutObjectFileBody {
  if (body instanceof Uint8Array) return body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidObjectInputError('body', 'must be a Uint8Array or { path, size } of a file');
  }
  const { path, size } = body as Partial<PutObjectFileBody>;
  if (typeof path !== 'string' || path === '' || CONTROL.test(path)) {
    throw new InvalidObjectInputError('body.path', `${JSON.stringify(path)} is not a file path`);
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidObjectInputError('body.size', `${String(size)} is not a size in bytes`);
  }
  return Object.freeze({ path, size });
}

export interface ValidPutInput {
  key: string;
  body: Uint8Array | PutObjectFileBody;
  contentType: string;
  sha256: string;
  retainUntil: Date;
  legalHold: boolean;
  ifNoneMatch: boolean;
  metadata: Record<string, string>;
}

export function validatePutInput(input: PutObjectInput, now: Date): ValidPutInput {
  if (typeof input !== 'object' || input === null)
    throw new InvalidObjectInputError('input', 'must be an object');
  const key = validateKey(input.key);
  const body = validateBody(input.body);
  const contentType = input.contentType;
  if (
    typeof contentType !== 'string' ||
    contentType === '' ||
    contentType.length > 256 ||
    CONTROL.test(contentType)
  ) {
    throw new InvalidObjectInputError('contentType', `${JSON.stringify(contentType)} is not a content type`);
  }
  for (const flag of ['legalHold', 'ifNoneMatch'] as const) {
    if (input[flag] !== undefined && typeof input[flag] !== 'boolean') {
      throw new InvalidObjectInputError(flag, 'must be a boolean');
    }
  }
  return {
    key,
    body,
    contentType,
    sha256: validateSha256(input.sha256),
    retainUntil: validateFutureDate(input.retainUntil, 'retainUntil', now),
    legalHold: input.legalHold ?? false,
    ifNoneMatch: input.ifNoneMatch ?? false,
    metadata: validateMetadata(input.metadata),
  };
}
