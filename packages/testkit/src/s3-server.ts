/**
 * An in-memory S3 API server on loopback that answers as AWS documents, for the subset of the API
 * that Holdfast uses (objects, versions, Object Lock, and the bucket settings its preflight reads:
 * Object Lock configuration, versioning, Block Public Access, default encryption, replication).
 * Path-style addressing only
 * (`http://127.0.0.1:<port>/<bucket>/<key>`), one bucket.
 *
 * It is strict where real S3 (and the S3-compatible servers Holdfast meets) are strict, so tests
 * against it prove what the client actually sends: Object Lock puts need a checksum header, the
 * checksum is verified, COMPLIANCE retention cannot be shortened, locked versions cannot be deleted,
 * and (by default) trailing/streamed checksums are refused like MinIO-era S3-compatibles do.
 * SigV4 signatures are not verified, but an Authorization header is required.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32 } from 'node:zlib';
import { XMLBuilder, XMLParser } from 'fast-xml-parser';

export type S3RetentionMode = 'COMPLIANCE' | 'GOVERNANCE';

/** Bucket default retention, as in `PutObjectLockConfiguration`: exactly one of `days` or `years`. */
export interface S3DefaultRetention {
  mode: S3RetentionMode;
  days?: number;
  years?: number;
}

/** The four bucket-level Block Public Access settings (`PutPublicAccessBlock`). */
export interface S3PublicAccessBlock {
  blockPublicAcls: boolean;
  ignorePublicAcls: boolean;
  blockPublicPolicy: boolean;
  restrictPublicBuckets: boolean;
}

/** Default encryption (`PutBucketEncryption`): SSE-S3, or SSE-KMS / DSSE-KMS with an optional key. */
export type S3BucketEncryption =
  | { algorithm: 'AES256' }
  | { algorithm: 'aws:kms' | 'aws:kms:dsse'; kmsKeyId?: string; bucketKeyEnabled?: boolean };

export interface S3ReplicationRule {
  id: string;
  status: 'Enabled' | 'Disabled';
  /** Destination bucket ARN, e.g. `arn:aws:s3:::holdfast-replica`. */
  destinationBucket: string;
  /** @defaultValue the rule's position, from 1 */
  priority?: number;
  /** @defaultValue `''` (the whole bucket) */
  prefix?: string;
}

/** `PutBucketReplication`: the IAM role S3 replicates as, and at least one rule. */
export interface S3ReplicationConfiguration {
  role: string;
  rules: S3ReplicationRule[];
}

/**
 * The bucket's configuration. `null` means "not configured": S3 answers the matching Get* with its
 * not-found error (e.g. `NoSuchPublicAccessBlockConfiguration`).
 */
export interface S3BucketSettings {
  /** Object Lock enabled (which needs versioning `true`). */
  objectLock: boolean;
  /** `true` = Enabled, `'Suspended'`, or `false` = never enabled. */
  versioning: boolean | 'Suspended';
  /** Applied to puts that carry no lock headers; needs `objectLock`. */
  defaultRetention: S3DefaultRetention | null;
  publicAccessBlock: S3PublicAccessBlock | null;
  encryption: S3BucketEncryption | null;
  /** Needs versioning enabled, as on S3. */
  replication: S3ReplicationConfiguration | null;
}

/** The KMS key the default (compliant) bucket encrypts with. */
export const TEST_KMS_KEY_ID = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

/**
 * Server options. The bucket settings default to a bucket that passes Holdfast's preflight
 * (Object Lock, versioning, COMPLIANCE default retention of 7 years, Block Public Access, SSE-KMS);
 * only replication is absent.
 */
export interface S3ServerOptions {
  /**
   * Name of the one bucket served.
   * @defaultValue `'holdfast-test'`
   */
  bucket?: string;
  /**
   * Whether the bucket was created with Object Lock enabled (which implies versioning).
   * @defaultValue `true`
   */
  objectLock?: boolean;
  /**
   * Whether versioning is enabled (`true`), `'Suspended'`, or never enabled (`false`). Must be
   * `true` when `objectLock` is on.
   * @defaultValue `true`
   */
  versioning?: boolean | 'Suspended';
  /**
   * Bucket default retention applied to puts that carry no lock headers (needs `objectLock`);
   * `null` for none.
   * @defaultValue `{ mode: 'COMPLIANCE', years: 7 }` with `objectLock`, else `null`
   */
  defaultRetention?: S3DefaultRetention | null;
  /**
   * Bucket-level Block Public Access; `null` for no configuration.
   * @defaultValue all four settings on
   */
  publicAccessBlock?: S3PublicAccessBlock | null;
  /**
   * Default encryption; `null` for none (as on S3-compatible servers without a KMS).
   * @defaultValue `{ algorithm: 'aws:kms', kmsKeyId: TEST_KMS_KEY_ID, bucketKeyEnabled: true }`
   */
  encryption?: S3BucketEncryption | null;
  /**
   * Replication configuration; `null` for none.
   * @defaultValue `null`
   */
  replication?: S3ReplicationConfiguration | null;
  /**
   * Operations answered with 403 AccessDenied, as for a principal without the permission
   * (e.g. `['GetBucketEncryption']`).
   * @defaultValue `[]`
   */
  deniedOperations?: readonly string[];
  /**
   * The server's notion of "now" for retention checks and Last-Modified.
   * @defaultValue `() => new Date()`
   */
  clock?: () => Date;
  /**
   * Refuse `x-amz-trailer` / `STREAMING-…-TRAILER` uploads with 400, as several S3-compatible
   * servers do. When `false`, aws-chunked bodies are decoded and trailing checksums verified.
   * @defaultValue `true`
   */
  rejectTrailingChecksums?: boolean;
}

/** One request as it reached the server (the body is not kept). */
export interface RecordedRequest {
  /** S3 operation name the server routed the request to, e.g. `PutObject`; `Unknown` otherwise. */
  operation: string;
  method: string;
  /** Raw (still percent-encoded) path. */
  path: string;
  bucket: string;
  /** Decoded object key, `''` for bucket-level requests. */
  key: string;
  query: Record<string, string>;
  /** Lower-case header names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** HTTP status the server answered with. */
  status: number;
}

export interface S3Server {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly bucket: string;
  /** Every request received, in arrival order. Tests may clear it (`requests.length = 0`). */
  readonly requests: RecordedRequest[];
  /** Replace the server's clock (e.g. to move past a retain-until date). */
  setClock(clock: () => Date): void;
  /** While on, every request gets 503 ServiceUnavailable, as S3 answers during an outage. */
  setUnavailable(on: boolean): void;
  /** The bucket's current configuration. */
  bucketSettings(): Readonly<S3BucketSettings>;
  /**
   * Change bucket settings (validated as a whole, as `startS3Server` does); objects are kept.
   * Tests use it to misconfigure a bucket between requests.
   */
  configureBucket(patch: Partial<S3BucketSettings>): void;
  /** Answer these operations with 403 AccessDenied from now on (`[]` to stop). */
  setDeniedOperations(operations: readonly string[]): void;
  /**
   * Every stored object version (not delete markers), straight from the server's memory: lets a
   * test count and hash a whole bucket without a GET per object.
   */
  storedVersions(): {
    key: string;
    versionId: string;
    body: Buffer;
    lastModified: Date;
    sha256: string | undefined;
  }[];
  close(): Promise<void>;
}

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const OWNER = {
  ID: '75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a',
  DisplayName: 'holdfast',
};
const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const;
type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];
const LOCKED_MESSAGE = 'Access Denied because object protected by object lock.';

interface StoredVersion {
  key: string;
  versionId: string;
  deleteMarker: boolean;
  body: Buffer;
  contentType: string;
  metadata: Record<string, string>;
  etag: string;
  checksums: Partial<Record<ChecksumAlgorithm, string>>;
  lastModified: Date;
  retention: { mode: S3RetentionMode; until: Date } | undefined;
  legalHold: 'ON' | 'OFF' | undefined;
}

class S3Error extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

interface Request {
  method: string;
  bucket: string;
  key: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: Buffer;
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  suppressEmptyNode: true,
});
const parser = new XMLParser({ removeNSPrefix: true, parseTagValue: false, ignoreAttributes: true });

function xml(root: string, content: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: { '@_xmlns': NS, ...content } })}`;
}

function errorXml(code: string, message: string, resource: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({
    Error: { Code: code, Message: message, Resource: resource, RequestId: requestId },
  })}`;
}

/** UTF-8 byte order, which is how S3 orders keys. */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

function crc32c(data: Buffer): number {
  let c = 0xffffffff;
  for (const byte of data) c = CRC32C_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const CRC64NVME_TABLE = (() => {
  const table: bigint[] = [];
  for (let i = 0n; i < 256n; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1n ? (c >> 1n) ^ 0x9a6c9329ac4bc9b5n : c >> 1n;
    table.push(c);
  }
  return table;
})();

function crc64nvme(data: Buffer): Buffer {
  const mask = 0xffffffffffffffffn;
  let c = mask;
  for (const byte of data) c = CRC64NVME_TABLE[Number((c ^ BigInt(byte)) & 0xffn)]! ^ (c >> 8n);
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE((c ^ mask) & mask);
  return out;
}

function uint32Base64(n: number): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n >>> 0);
  return out.toString('base64');
}

function checksumOf(algorithm: ChecksumAlgorithm, data: Buffer): string {
  switch (algorithm) {
    case 'crc32':
      return uint32Base64(crc32(data));
    case 'crc32c':
      return uint32Base64(crc32c(data));
    case 'crc64nvme':
      return crc64nvme(data).toString('base64');
    case 'sha1':
      return createHash('sha1').update(data).digest('base64');
    case 'sha256':
      return createHash('sha256').update(data).digest('base64');
  }
}

/** Decodes an `aws-chunked` body (signed or unsigned); returns the payload and any trailer headers. */
function decodeAwsChunked(raw: Buffer): { payload: Buffer; trailers: Record<string, string> } {
  const chunks: Buffer[] = [];
  const trailers: Record<string, string> = {};
  let pos = 0;
  const readLine = (): string => {
    const end = raw.indexOf('\r\n', pos);
    if (end < 0) throw new S3Error(400, 'IncompleteBody', 'The request body terminated unexpectedly');
    const line = raw.subarray(pos, end).toString('latin1');
    pos = end + 2;
    return line;
  };
  for (;;) {
    const size = Number.parseInt(readLine().split(';')[0] ?? '', 16);
    if (!Number.isFinite(size)) throw new S3Error(400, 'InvalidChunkSizeError', 'Invalid chunk size');
    if (size === 0) break;
    if (pos + size + 2 > raw.length) {
      throw new S3Error(400, 'IncompleteBody', 'The request body terminated unexpectedly');
    }
    chunks.push(raw.subarray(pos, pos + size));
    pos += size + 2;
  }
  while (pos < raw.length) {
    const line = readLine();
    if (line === '') break;
    const colon = line.indexOf(':');
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { payload: Buffer.concat(chunks), trailers };
}

/** Bucket subresources and the operation name after Get/Put/Delete. */
const BUCKET_SUBRESOURCES: readonly (readonly [string, string])[] = [
  ['object-lock', 'ObjectLockConfiguration'],
  ['versioning', 'BucketVersioning'],
  ['publicAccessBlock', 'PublicAccessBlock'],
  ['encryption', 'BucketEncryption'],
  ['replication', 'BucketReplication'],
];
const DELETABLE = new Set(['PublicAccessBlock', 'BucketEncryption', 'BucketReplication']);

function operationOf(method: string, key: string, query: Record<string, string>): string {
  const has = (name: string) => Object.hasOwn(query, name);
  if (key === '') {
    for (const [subresource, name] of BUCKET_SUBRESOURCES) {
      if (!has(subresource)) continue;
      if (method === 'GET') return `Get${name}`;
      if (method === 'PUT') return `Put${name}`;
      if (method === 'DELETE' && DELETABLE.has(name)) return `Delete${name}`;
      return 'Unknown';
    }
    if (method === 'GET' && has('versions')) return 'ListObjectVersions';
    if (method === 'GET' && query['list-type'] === '2') return 'ListObjectsV2';
    if (method === 'HEAD') return 'HeadBucket';
    return 'Unknown';
  }
  if (has('retention'))
    return method === 'PUT' ? 'PutObjectRetention' : method === 'GET' ? 'GetObjectRetention' : 'Unknown';
  if (has('legal-hold'))
    return method === 'PUT' ? 'PutObjectLegalHold' : method === 'GET' ? 'GetObjectLegalHold' : 'Unknown';
  if (Object.keys(query).some((q) => !['versionId', 'x-id'].includes(q))) return 'Unknown';
  switch (method) {
    case 'PUT':
      return 'PutObject';
    case 'GET':
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    case 'DELETE':
      return 'DeleteObject';
    default:
      return 'Unknown';
  }
}

function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function malformedXml(): S3Error {
  return new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate.');
}

/** The parser yields one object for a single repeated element and an array for several. */
function asArray(value: unknown): unknown[] {
  if (value === undefined || value === '') return [];
  return Array.isArray(value) ? value : [value];
}

/** Settings as S3 allows them to coexist, copied so that callers cannot change them behind our back. */
function checkedSettings(s: S3BucketSettings): Readonly<S3BucketSettings> {
  if (s.objectLock && s.versioning !== true) {
    throw new Error('startS3Server: Object Lock needs versioning enabled');
  }
  if (s.defaultRetention) {
    if (!s.objectLock) throw new Error('startS3Server: defaultRetention needs objectLock');
    const { days, years } = s.defaultRetention;
    const period = days ?? years;
    if ((days === undefined) === (years === undefined) || !Number.isInteger(period) || period! <= 0) {
      throw new Error(
        'startS3Server: defaultRetention needs exactly one of days or years, a positive integer',
      );
    }
  }
  if (s.replication) {
    if (s.versioning !== true) throw new Error('startS3Server: replication needs versioning enabled');
    if (s.replication.rules.length === 0)
      throw new Error('startS3Server: replication needs at least one rule');
  }
  return structuredClone(s);
}

/** Starts the server on 127.0.0.1 and an ephemeral port. */
export async function startS3Server(options: S3ServerOptions = {}): Promise<S3Server> {
  const bucketName = options.bucket ?? 'holdfast-test';
  const objectLock = options.objectLock ?? true;
  let settings = checkedSettings({
    objectLock,
    versioning: options.versioning ?? true,
    defaultRetention:
      options.defaultRetention === undefined
        ? objectLock
          ? { mode: 'COMPLIANCE', years: 7 }
          : null
        : options.defaultRetention,
    publicAccessBlock:
      options.publicAccessBlock === undefined
        ? {
            blockPublicAcls: true,
            ignorePublicAcls: true,
            blockPublicPolicy: true,
            restrictPublicBuckets: true,
          }
        : options.publicAccessBlock,
    encryption:
      options.encryption === undefined
        ? { algorithm: 'aws:kms', kmsKeyId: TEST_KMS_KEY_ID, bucketKeyEnabled: true }
        : options.encryption,
    replication: options.replication ?? null,
  });
  let denied = new Set(options.deniedOperations ?? []);
  const versioned = () => settings.versioning === true;
  const rejectTrailing = options.rejectTrailingChecksums ?? true;
  let clock = options.clock ?? (() => new Date());
  let unavailable = false;
  const requests: RecordedRequest[] = [];
  // Newest version first, like S3 lists them.
  const objects = new Map<string, StoredVersion[]>();
  let versionCounter = 0;

  const newVersionId = (): string =>
    `${(versionCounter++).toString(36).padStart(6, '0')}${randomBytes(18).toString('base64url')}`;

  const isLocked = (v: StoredVersion, bypassGovernance: boolean): boolean => {
    if (v.legalHold === 'ON') return true;
    if (!v.retention || v.retention.until.getTime() <= clock().getTime()) return false;
    return v.retention.mode === 'COMPLIANCE' || !bypassGovernance;
  };

  const findVersion = (key: string, versionId: string | undefined): StoredVersion => {
    const versions = objects.get(key) ?? [];
    if (versionId !== undefined) {
      const v = versions.find((x) => x.versionId === versionId);
      if (!v) throw new S3Error(404, 'NoSuchVersion', 'The specified version does not exist.');
      if (v.deleteMarker) {
        throw new S3Error(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
          {
            'x-amz-delete-marker': 'true',
            'x-amz-version-id': v.versionId,
            'last-modified': v.lastModified.toUTCString(),
          },
        );
      }
      return v;
    }
    const latest = versions[0];
    if (!latest) throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
    if (latest.deleteMarker) {
      throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', {
        'x-amz-delete-marker': 'true',
        'x-amz-version-id': latest.versionId,
      });
    }
    return latest;
  };

  const requireObjectLock = () => {
    if (!settings.objectLock) {
      throw new S3Error(400, 'InvalidRequest', 'Bucket is missing Object Lock Configuration');
    }
  };

  /** Verifies Content-MD5 and x-amz-checksum-* (headers or trailers); returns the checksums sent. */
  const verifyIntegrity = (
    req: Request,
    payload: Buffer,
    trailers: Record<string, string>,
  ): { md5: boolean; checksums: Partial<Record<ChecksumAlgorithm, string>> } => {
    const md5 = req.headers['content-md5'];
    if (md5 !== undefined) {
      if (Buffer.from(md5, 'base64').length !== 16) {
        throw new S3Error(400, 'InvalidDigest', 'The Content-MD5 you specified is not valid.');
      }
      if (md5 !== md5Base64(payload)) {
        throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
      }
    }
    const checksums: Partial<Record<ChecksumAlgorithm, string>> = {};
    for (const algorithm of CHECKSUM_ALGORITHMS) {
      const sent = req.headers[`x-amz-checksum-${algorithm}`] ?? trailers[`x-amz-checksum-${algorithm}`];
      if (sent !== undefined) checksums[algorithm] = sent;
    }
    const sent = Object.entries(checksums) as [ChecksumAlgorithm, string][];
    if (sent.length > 1) {
      throw new S3Error(
        400,
        'InvalidRequest',
        'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.',
      );
    }
    for (const [algorithm, value] of sent) {
      if (checksumOf(algorithm, payload) !== value) {
        throw new S3Error(
          400,
          'BadDigest',
          `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`,
        );
      }
    }
    return { md5: md5 !== undefined, checksums };
  };

  /** Undoes aws-chunked encoding (or refuses it) and checks x-amz-content-sha256. */
  const payloadOf = (req: Request): { payload: Buffer; trailers: Record<string, string> } => {
    const contentSha = req.headers['x-amz-content-sha256'] ?? '';
    const trailing = req.headers['x-amz-trailer'] !== undefined || /^STREAMING-.*-TRAILER$/.test(contentSha);
    if (trailing && rejectTrailing) {
      throw new S3Error(
        400,
        'InvalidRequest',
        'Trailing checksums (x-amz-trailer, STREAMING-…-TRAILER payloads) are not supported; send the checksum as a header.',
      );
    }
    if (contentSha.startsWith('STREAMING-')) return decodeAwsChunked(req.body);
    if (
      /^[0-9a-f]{64}$/.test(contentSha) &&
      createHash('sha256').update(req.body).digest('hex') !== contentSha
    ) {
      throw new S3Error(
        400,
        'XAmzContentSHA256Mismatch',
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      );
    }
    return { payload: req.body, trailers: {} };
  };

  const parseXmlBody = (req: Request, root: string): Record<string, unknown> => {
    let doc: Record<string, unknown>;
    try {
      doc = parser.parse(req.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate.');
    }
    const node = doc[root];
    if (node === '' || node === undefined) return {};
    if (typeof node !== 'object' || node === null) {
      throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate.');
    }
    return node as Record<string, unknown>;
  };

  const requireChecksumHeader = (req: Request) => {
    const has =
      req.headers['content-md5'] !== undefined ||
      CHECKSUM_ALGORITHMS.some((a) => req.headers[`x-amz-checksum-${a}`] !== undefined);
    if (!has) {
      throw new S3Error(
        400,
        'InvalidRequest',
        'Content-MD5 OR x-amz-checksum- HTTP header is required for this request',
      );
    }
  };

  const objectHeaders = (v: StoredVersion, req: Request): Record<string, string> => {
    const headers: Record<string, string> = {
      'content-type': v.contentType,
      'content-length': String(v.body.length),
      etag: v.etag,
      'last-modified': v.lastModified.toUTCString(),
      'accept-ranges': 'bytes',
    };
    if (versioned()) headers['x-amz-version-id'] = v.versionId;
    for (const [name, value] of Object.entries(v.metadata)) headers[`x-amz-meta-${name}`] = value;
    if (v.retention) {
      headers['x-amz-object-lock-mode'] = v.retention.mode;
      headers['x-amz-object-lock-retain-until-date'] = v.retention.until.toISOString();
    }
    if (v.legalHold) headers['x-amz-object-lock-legal-hold'] = v.legalHold;
    if (req.headers['x-amz-checksum-mode'] === 'ENABLED') {
      const checksums = Object.entries(v.checksums);
      for (const [algorithm, value] of checksums) headers[`x-amz-checksum-${algorithm}`] = value;
      if (checksums.length > 0) headers['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
    return headers;
  };

  const putObject = (req: Request): Reply => {
    if (req.headers['x-amz-copy-source'] !== undefined) {
      throw new S3Error(501, 'NotImplemented', 'CopyObject is not implemented by this test server');
    }
    const { payload, trailers } = payloadOf(req);
    const now = clock();
    // S3 keeps Last-Modified to the second.
    const lastModified = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const mode = req.headers['x-amz-object-lock-mode'];
    const untilRaw = req.headers['x-amz-object-lock-retain-until-date'];
    const hold = req.headers['x-amz-object-lock-legal-hold'];
    const lockParams = mode !== undefined || untilRaw !== undefined || hold !== undefined;
    if (lockParams) requireObjectLock();
    const integrity = verifyIntegrity(req, payload, trailers);
    if (
      (lockParams || settings.defaultRetention) &&
      !integrity.md5 &&
      Object.keys(integrity.checksums).length === 0
    ) {
      throw new S3Error(
        400,
        'InvalidRequest',
        'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters',
      );
    }
    if ((mode === undefined) !== (untilRaw === undefined)) {
      throw new S3Error(
        400,
        'InvalidArgument',
        'x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied',
      );
    }
    let retention: StoredVersion['retention'];
    if (mode !== undefined && untilRaw !== undefined) {
      if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') {
        throw new S3Error(400, 'InvalidArgument', 'Unknown wormMode directive.');
      }
      const until = new Date(untilRaw);
      if (Number.isNaN(until.getTime())) {
        throw new S3Error(400, 'InvalidArgument', 'The retain until date is not a valid date.');
      }
      if (until.getTime() <= now.getTime()) {
        throw new S3Error(400, 'InvalidArgument', 'The retain until date must be in the future!');
      }
      retention = { mode, until };
    } else if (settings.defaultRetention) {
      const { mode: defaultMode, days, years } = settings.defaultRetention;
      const until = new Date(now.getTime() + (days ?? 0) * 86_400_000);
      until.setUTCFullYear(until.getUTCFullYear() + (years ?? 0));
      retention = { mode: defaultMode, until };
    }
    if (hold !== undefined && hold !== 'ON' && hold !== 'OFF') {
      throw new S3Error(400, 'InvalidArgument', "Legal Hold must be either of 'ON' or 'OFF'");
    }
    const versions = objects.get(req.key) ?? [];
    const ifNoneMatch = req.headers['if-none-match'];
    if (ifNoneMatch !== undefined) {
      if (ifNoneMatch !== '*') {
        throw new S3Error(501, 'NotImplemented', 'If-None-Match only supports the value *');
      }
      if (versions[0] && !versions[0].deleteMarker) {
        throw new S3Error(
          412,
          'PreconditionFailed',
          'At least one of the pre-conditions you specified did not hold',
        );
      }
    }
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (name.startsWith('x-amz-meta-')) metadata[name.slice('x-amz-meta-'.length)] = value;
    }
    const version: StoredVersion = {
      key: req.key,
      versionId: versioned() ? newVersionId() : 'null',
      deleteMarker: false,
      body: Buffer.from(payload),
      contentType: req.headers['content-type'] ?? 'binary/octet-stream',
      metadata,
      etag: `"${createHash('md5').update(payload).digest('hex')}"`,
      checksums: integrity.checksums,
      lastModified,
      retention,
      legalHold: hold as 'ON' | 'OFF' | undefined,
    };
    const kept = versioned() ? versions : versions.filter((v) => v.versionId !== 'null');
    objects.set(req.key, [version, ...kept]);
    const headers: Record<string, string> = { etag: version.etag };
    if (versioned()) headers['x-amz-version-id'] = version.versionId;
    for (const [algorithm, value] of Object.entries(version.checksums)) {
      headers[`x-amz-checksum-${algorithm}`] = value;
      headers['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
    return { status: 200, headers };
  };

  const getObject = (req: Request, head: boolean): Reply => {
    const v = findVersion(req.key, req.query.versionId);
    return { status: 200, headers: objectHeaders(v, req), body: head ? undefined : v.body };
  };

  const deleteObject = (req: Request): Reply => {
    const versions = objects.get(req.key) ?? [];
    const versionId = req.query.versionId;
    if (versionId === undefined) {
      if (settings.versioning === false) {
        objects.delete(req.key);
        return { status: 204 };
      }
      const marker: StoredVersion = {
        key: req.key,
        // Versioning suspended: the delete marker becomes the "null" version.
        versionId: versioned() ? newVersionId() : 'null',
        deleteMarker: true,
        body: Buffer.alloc(0),
        contentType: '',
        metadata: {},
        etag: '',
        checksums: {},
        lastModified: new Date(Math.floor(clock().getTime() / 1000) * 1000),
        retention: undefined,
        legalHold: undefined,
      };
      const kept = versioned() ? versions : versions.filter((x) => x.versionId !== 'null');
      objects.set(req.key, [marker, ...kept]);
      return {
        status: 204,
        headers: { 'x-amz-delete-marker': 'true', 'x-amz-version-id': marker.versionId },
      };
    }
    const v = versions.find((x) => x.versionId === versionId);
    // Deleting a version that does not exist succeeds, as on S3.
    if (!v) return { status: 204, headers: { 'x-amz-version-id': versionId } };
    const bypass = req.headers['x-amz-bypass-governance-retention']?.toLowerCase() === 'true';
    if (!v.deleteMarker && isLocked(v, bypass)) throw new S3Error(403, 'AccessDenied', LOCKED_MESSAGE);
    const remaining = versions.filter((x) => x !== v);
    if (remaining.length > 0) objects.set(req.key, remaining);
    else objects.delete(req.key);
    const headers: Record<string, string> = { 'x-amz-version-id': v.versionId };
    if (v.deleteMarker) headers['x-amz-delete-marker'] = 'true';
    return { status: 204, headers };
  };

  const putRetention = (req: Request): Reply => {
    requireObjectLock();
    requireChecksumHeader(req);
    verifyIntegrity(req, req.body, {});
    const v = findVersion(req.key, req.query.versionId);
    const node = parseXmlBody(req, 'Retention');
    const mode = node.Mode;
    const untilRaw = node.RetainUntilDate;
    const now = clock();
    const current = v.retention && v.retention.until.getTime() > now.getTime() ? v.retention : undefined;
    if (mode === undefined && untilRaw === undefined) {
      if (
        current &&
        (current.mode === 'COMPLIANCE' || req.headers['x-amz-bypass-governance-retention'] !== 'true')
      ) {
        throw new S3Error(403, 'AccessDenied', LOCKED_MESSAGE);
      }
      v.retention = undefined;
      return { status: 200 };
    }
    if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') {
      throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate.');
    }
    const until = new Date(String(untilRaw));
    if (Number.isNaN(until.getTime())) {
      throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate.');
    }
    if (until.getTime() <= now.getTime()) {
      throw new S3Error(400, 'InvalidArgument', 'The retain until date must be in the future!');
    }
    if (current) {
      const weakens =
        until.getTime() < current.until.getTime() || (current.mode === 'COMPLIANCE' && mode !== 'COMPLIANCE');
      const bypass = req.headers['x-amz-bypass-governance-retention']?.toLowerCase() === 'true';
      if (weakens && (current.mode === 'COMPLIANCE' || !bypass)) {
        throw new S3Error(403, 'AccessDenied', LOCKED_MESSAGE);
      }
    }
    v.retention = { mode, until };
    return { status: 200 };
  };

  const getRetention = (req: Request): Reply => {
    requireObjectLock();
    const v = findVersion(req.key, req.query.versionId);
    if (!v.retention) {
      throw new S3Error(
        404,
        'NoSuchObjectLockConfiguration',
        'The specified object does not have a ObjectLock configuration',
      );
    }
    return {
      status: 200,
      headers: { 'content-type': 'application/xml' },
      body: xml('Retention', { Mode: v.retention.mode, RetainUntilDate: v.retention.until.toISOString() }),
    };
  };

  const putLegalHold = (req: Request): Reply => {
    requireObjectLock();
    requireChecksumHeader(req);
    verifyIntegrity(req, req.body, {});
    const v = findVersion(req.key, req.query.versionId);
    const status = parseXmlBody(req, 'LegalHold').Status;
    if (status !== 'ON' && status !== 'OFF') {
      throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed or did not validate.');
    }
    v.legalHold = status;
    return { status: 200 };
  };

  const getLegalHold = (req: Request): Reply => {
    requireObjectLock();
    const v = findVersion(req.key, req.query.versionId);
    if (!v.legalHold) {
      throw new S3Error(
        404,
        'NoSuchObjectLockConfiguration',
        'The specified object does not have a ObjectLock configuration',
      );
    }
    return {
      status: 200,
      headers: { 'content-type': 'application/xml' },
      body: xml('LegalHold', { Status: v.legalHold }),
    };
  };

  const maxKeysOf = (req: Request): number => {
    const raw = req.query['max-keys'];
    if (raw === undefined) return 1000;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) {
      throw new S3Error(400, 'InvalidArgument', 'Provided max-keys not an integer or within integer range');
    }
    return Math.min(n, 1000);
  };

  const sortedKeys = (): string[] => [...objects.keys()].sort(compareKeys);

  const listObjectsV2 = (req: Request): Reply => {
    const prefix = req.query.prefix ?? '';
    const delimiter = req.query.delimiter || undefined;
    const maxKeys = maxKeysOf(req);
    const urlEncode = req.query['encoding-type'] === 'url';
    const token = req.query['continuation-token'];
    let marker = req.query['start-after'] ?? '';
    // A continuation token names the last key or common prefix returned ('K' / 'P' + value).
    let skipUnder: string | undefined;
    if (token !== undefined) {
      const decoded = Buffer.from(token, 'base64url').toString('utf8');
      if (decoded.length < 2 || (decoded[0] !== 'K' && decoded[0] !== 'P')) {
        throw new S3Error(400, 'InvalidArgument', 'The continuation token provided is incorrect');
      }
      marker = decoded.slice(1);
      if (decoded[0] === 'P') skipUnder = marker;
    }
    const enc = (s: string) => (urlEncode ? encodeURIComponent(s) : s);
    const contents: Record<string, unknown>[] = [];
    const commonPrefixes: string[] = [];
    let last = '';
    let truncated = false;
    for (const key of sortedKeys()) {
      if (!key.startsWith(prefix)) continue;
      if (marker && compareKeys(key, marker) <= 0) continue;
      if (skipUnder !== undefined && key.startsWith(skipUnder)) continue;
      const latest = objects.get(key)?.[0];
      if (!latest || latest.deleteMarker) continue;
      let commonPrefix: string | undefined;
      if (delimiter) {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) commonPrefix = key.slice(0, at + delimiter.length);
      }
      if (commonPrefix !== undefined && commonPrefix === commonPrefixes.at(-1)) continue;
      if (contents.length + commonPrefixes.length >= maxKeys) {
        truncated = true;
        break;
      }
      if (commonPrefix !== undefined) {
        commonPrefixes.push(commonPrefix);
        last = `P${commonPrefix}`;
      } else {
        contents.push({
          Key: enc(key),
          LastModified: latest.lastModified.toISOString(),
          ETag: latest.etag,
          Size: latest.body.length,
          StorageClass: 'STANDARD',
        });
        last = `K${key}`;
      }
    }
    const result: Record<string, unknown> = {
      Name: bucketName,
      Prefix: enc(prefix),
      Delimiter: delimiter,
      MaxKeys: maxKeys,
      KeyCount: contents.length + commonPrefixes.length,
      IsTruncated: truncated,
      EncodingType: urlEncode ? 'url' : undefined,
      ContinuationToken: token,
      NextContinuationToken: truncated ? Buffer.from(last).toString('base64url') : undefined,
      StartAfter: req.query['start-after'],
      Contents: contents,
      CommonPrefixes: commonPrefixes.map((p) => ({ Prefix: enc(p) })),
    };
    return {
      status: 200,
      headers: { 'content-type': 'application/xml' },
      body: xml('ListBucketResult', result),
    };
  };

  const listObjectVersions = (req: Request): Reply => {
    if (req.query.delimiter) {
      throw new S3Error(
        501,
        'NotImplemented',
        'ListObjectVersions with a delimiter is not implemented by this test server',
      );
    }
    const prefix = req.query.prefix ?? '';
    const maxKeys = maxKeysOf(req);
    const urlEncode = req.query['encoding-type'] === 'url';
    const enc = (s: string) => (urlEncode ? encodeURIComponent(s) : s);
    const keyMarker = req.query['key-marker'] ?? '';
    const versionIdMarker = req.query['version-id-marker'] || undefined;
    const versions: Record<string, unknown>[] = [];
    const deleteMarkers: Record<string, unknown>[] = [];
    let count = 0;
    let truncated = false;
    let last: StoredVersion | undefined;
    outer: for (const key of sortedKeys()) {
      if (!key.startsWith(prefix)) continue;
      const order = keyMarker ? compareKeys(key, keyMarker) : 1;
      if (order < 0 || (order === 0 && versionIdMarker === undefined)) continue;
      const all = objects.get(key) ?? [];
      let entries = all;
      if (order === 0 && versionIdMarker !== undefined) {
        const at = all.findIndex((v) => v.versionId === versionIdMarker);
        entries = at >= 0 ? all.slice(at + 1) : [];
      }
      for (const v of entries) {
        if (count >= maxKeys) {
          truncated = true;
          break outer;
        }
        const common = {
          Key: enc(v.key),
          VersionId: v.versionId,
          IsLatest: v === all[0],
          LastModified: v.lastModified.toISOString(),
          Owner: OWNER,
        };
        if (v.deleteMarker) deleteMarkers.push(common);
        else versions.push({ ...common, ETag: v.etag, Size: v.body.length, StorageClass: 'STANDARD' });
        count++;
        last = v;
      }
    }
    const result: Record<string, unknown> = {
      Name: bucketName,
      Prefix: enc(prefix),
      KeyMarker: enc(keyMarker),
      VersionIdMarker: versionIdMarker ?? '',
      NextKeyMarker: truncated && last ? enc(last.key) : undefined,
      NextVersionIdMarker: truncated && last ? last.versionId : undefined,
      MaxKeys: maxKeys,
      IsTruncated: truncated,
      EncodingType: urlEncode ? 'url' : undefined,
      Version: versions,
      DeleteMarker: deleteMarkers,
    };
    return {
      status: 200,
      headers: { 'content-type': 'application/xml' },
      body: xml('ListVersionsResult', result),
    };
  };

  const xmlReply = (root: string, content: Record<string, unknown>): Reply => ({
    status: 200,
    headers: { 'content-type': 'application/xml' },
    body: xml(root, content),
  });

  /** Replaces bucket settings once a configuration put has validated its input the way S3 does. */
  const reconfigure = (patch: Partial<S3BucketSettings>): Reply => {
    settings = checkedSettings({ ...settings, ...patch });
    return { status: 200 };
  };

  /** Bucket configuration puts need an integrity header, like Object Lock puts. */
  const configBody = (req: Request, root: string): Record<string, unknown> => {
    requireChecksumHeader(req);
    verifyIntegrity(req, req.body, {});
    return parseXmlBody(req, root);
  };

  const getObjectLockConfiguration = (): Reply => {
    if (!settings.objectLock) {
      throw new S3Error(
        404,
        'ObjectLockConfigurationNotFoundError',
        'Object Lock configuration does not exist for this bucket',
      );
    }
    const config: Record<string, unknown> = { ObjectLockEnabled: 'Enabled' };
    const retention = settings.defaultRetention;
    if (retention) {
      config.Rule = {
        DefaultRetention: { Mode: retention.mode, Days: retention.days, Years: retention.years },
      };
    }
    return xmlReply('ObjectLockConfiguration', config);
  };

  const putObjectLockConfiguration = (req: Request): Reply => {
    const node = configBody(req, 'ObjectLockConfiguration');
    if (node.ObjectLockEnabled !== 'Enabled') throw malformedXml();
    if (!versioned()) {
      throw new S3Error(
        409,
        'InvalidBucketState',
        "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
      );
    }
    const rule = node.Rule as { DefaultRetention?: Record<string, unknown> } | undefined;
    if (rule === undefined) return reconfigure({ objectLock: true, defaultRetention: null });
    const d = rule.DefaultRetention ?? {};
    if (
      (d.Mode !== 'COMPLIANCE' && d.Mode !== 'GOVERNANCE') ||
      (d.Days === undefined) === (d.Years === undefined)
    ) {
      throw malformedXml();
    }
    const period = Number(d.Days ?? d.Years);
    if (!Number.isInteger(period) || period <= 0) {
      throw new S3Error(400, 'InvalidArgument', 'Default retention period must be a positive integer value.');
    }
    const defaultRetention: S3DefaultRetention =
      d.Days === undefined ? { mode: d.Mode, years: period } : { mode: d.Mode, days: period };
    return reconfigure({ objectLock: true, defaultRetention });
  };

  const getBucketVersioning = (): Reply =>
    xmlReply(
      'VersioningConfiguration',
      settings.versioning === false ? {} : { Status: settings.versioning === true ? 'Enabled' : 'Suspended' },
    );

  const putBucketVersioning = (req: Request): Reply => {
    const status = parseXmlBody(req, 'VersioningConfiguration').Status;
    if (status !== 'Enabled' && status !== 'Suspended') throw malformedXml();
    if (status === 'Suspended' && settings.objectLock) {
      throw new S3Error(
        409,
        'InvalidBucketState',
        'An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.',
      );
    }
    if (status === 'Suspended' && settings.replication) {
      throw new S3Error(
        409,
        'InvalidBucketState',
        'A replication configuration is present on this bucket, so the versioning state cannot be changed.',
      );
    }
    return reconfigure({ versioning: status === 'Enabled' ? true : 'Suspended' });
  };

  const getPublicAccessBlock = (): Reply => {
    const block = settings.publicAccessBlock;
    if (!block) {
      throw new S3Error(
        404,
        'NoSuchPublicAccessBlockConfiguration',
        'The public access block configuration was not found',
      );
    }
    return xmlReply('PublicAccessBlockConfiguration', {
      BlockPublicAcls: block.blockPublicAcls,
      IgnorePublicAcls: block.ignorePublicAcls,
      BlockPublicPolicy: block.blockPublicPolicy,
      RestrictPublicBuckets: block.restrictPublicBuckets,
    });
  };

  const putPublicAccessBlock = (req: Request): Reply => {
    const node = configBody(req, 'PublicAccessBlockConfiguration');
    // An element left out is false, as on S3.
    const flag = (name: string): boolean => {
      const value = node[name];
      if (value === undefined) return false;
      if (value !== 'true' && value !== 'false') throw malformedXml();
      return value === 'true';
    };
    return reconfigure({
      publicAccessBlock: {
        blockPublicAcls: flag('BlockPublicAcls'),
        ignorePublicAcls: flag('IgnorePublicAcls'),
        blockPublicPolicy: flag('BlockPublicPolicy'),
        restrictPublicBuckets: flag('RestrictPublicBuckets'),
      },
    });
  };

  const getBucketEncryption = (): Reply => {
    const encryption = settings.encryption;
    if (!encryption) {
      throw new S3Error(
        404,
        'ServerSideEncryptionConfigurationNotFoundError',
        'The server side encryption configuration was not found',
      );
    }
    const kms = encryption.algorithm === 'AES256' ? undefined : encryption;
    return xmlReply('ServerSideEncryptionConfiguration', {
      Rule: {
        ApplyServerSideEncryptionByDefault: {
          SSEAlgorithm: encryption.algorithm,
          KMSMasterKeyID: kms?.kmsKeyId,
        },
        BucketKeyEnabled: kms?.bucketKeyEnabled ?? false,
      },
    });
  };

  const putBucketEncryption = (req: Request): Reply => {
    const rules = asArray(configBody(req, 'ServerSideEncryptionConfiguration').Rule) as Record<
      string,
      unknown
    >[];
    const rule = rules[0];
    const byDefault = rule?.ApplyServerSideEncryptionByDefault as Record<string, unknown> | undefined;
    const algorithm = byDefault?.SSEAlgorithm;
    const keyId = byDefault?.KMSMasterKeyID === undefined ? undefined : String(byDefault.KMSMasterKeyID);
    if (
      rules.length !== 1 ||
      (algorithm !== 'AES256' && algorithm !== 'aws:kms' && algorithm !== 'aws:kms:dsse')
    ) {
      throw malformedXml();
    }
    if (algorithm === 'AES256') {
      if (keyId !== undefined) {
        throw new S3Error(
          400,
          'InvalidArgument',
          'a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse',
        );
      }
      return reconfigure({ encryption: { algorithm } });
    }
    return reconfigure({
      encryption: { algorithm, kmsKeyId: keyId, bucketKeyEnabled: rule?.BucketKeyEnabled === 'true' },
    });
  };

  const getBucketReplication = (): Reply => {
    const replication = settings.replication;
    if (!replication) {
      throw new S3Error(
        404,
        'ReplicationConfigurationNotFoundError',
        'The replication configuration was not found',
      );
    }
    return xmlReply('ReplicationConfiguration', {
      Role: replication.role,
      Rule: replication.rules.map((rule, i) => ({
        ID: rule.id,
        Priority: rule.priority ?? i + 1,
        Filter: { Prefix: rule.prefix ?? '' },
        Status: rule.status,
        Destination: { Bucket: rule.destinationBucket },
        DeleteMarkerReplication: { Status: 'Disabled' },
      })),
    });
  };

  const putBucketReplication = (req: Request): Reply => {
    const node = configBody(req, 'ReplicationConfiguration');
    if (!versioned()) {
      throw new S3Error(
        400,
        'InvalidRequest',
        "Versioning must be 'Enabled' on the bucket to apply a replication configuration",
      );
    }
    const rules = (asArray(node.Rule) as Record<string, unknown>[]).map((rule, i) => {
      const destination = (rule.Destination as Record<string, unknown> | undefined)?.Bucket;
      const filter = rule.Filter as Record<string, unknown> | undefined;
      if ((rule.Status !== 'Enabled' && rule.Status !== 'Disabled') || typeof destination !== 'string') {
        throw malformedXml();
      }
      return {
        id: typeof rule.ID === 'string' ? rule.ID : `rule-${i + 1}`,
        status: rule.Status,
        destinationBucket: destination,
        priority: rule.Priority === undefined ? i + 1 : Number(rule.Priority),
        prefix: typeof filter?.Prefix === 'string' ? filter.Prefix : String(rule.Prefix ?? ''),
      } satisfies S3ReplicationRule;
    });
    if (typeof node.Role !== 'string' || rules.length === 0) throw malformedXml();
    return reconfigure({ replication: { role: node.Role, rules } });
  };

  const route = (operation: string, req: Request): Reply => {
    if (req.bucket !== bucketName)
      throw new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist');
    if (denied.has(operation)) throw new S3Error(403, 'AccessDenied', 'Access Denied');
    switch (operation) {
      case 'PutObject':
        return putObject(req);
      case 'GetObject':
        return getObject(req, false);
      case 'HeadObject':
        return getObject(req, true);
      case 'DeleteObject':
        return deleteObject(req);
      case 'PutObjectRetention':
        return putRetention(req);
      case 'GetObjectRetention':
        return getRetention(req);
      case 'PutObjectLegalHold':
        return putLegalHold(req);
      case 'GetObjectLegalHold':
        return getLegalHold(req);
      case 'ListObjectsV2':
        return listObjectsV2(req);
      case 'ListObjectVersions':
        return listObjectVersions(req);
      case 'GetObjectLockConfiguration':
        return getObjectLockConfiguration();
      case 'PutObjectLockConfiguration':
        return putObjectLockConfiguration(req);
      case 'GetBucketVersioning':
        return getBucketVersioning();
      case 'PutBucketVersioning':
        return putBucketVersioning(req);
      case 'GetPublicAccessBlock':
        return getPublicAccessBlock();
      case 'PutPublicAccessBlock':
        return putPublicAccessBlock(req);
      case 'DeletePublicAccessBlock':
        settings = checkedSettings({ ...settings, publicAccessBlock: null });
        return { status: 204 };
      case 'GetBucketEncryption':
        return getBucketEncryption();
      case 'PutBucketEncryption':
        return putBucketEncryption(req);
      case 'DeleteBucketEncryption':
        settings = checkedSettings({ ...settings, encryption: null });
        return { status: 204 };
      case 'GetBucketReplication':
        return getBucketReplication();
      case 'PutBucketReplication':
        return putBucketReplication(req);
      case 'DeleteBucketReplication':
        settings = checkedSettings({ ...settings, replication: null });
        return { status: 204 };
      case 'HeadBucket':
        return { status: 200 };
      default:
        throw new S3Error(
          501,
          'NotImplemented',
          'A header or query you provided implies functionality that is not implemented',
        );
    }
  };

  const handle = async (incoming: IncomingMessage, res: ServerResponse): Promise<void> => {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const url = new URL(incoming.url ?? '/', 'http://127.0.0.1');
    const [, rawBucket = '', ...rest] = url.pathname.split('/');
    const bucket = decodeURIComponent(rawBucket);
    const key = decodeURIComponent(rest.join('/'));
    const query = Object.fromEntries(url.searchParams);
    const headers = flattenHeaders(incoming);
    const method = incoming.method ?? 'GET';
    const operation = operationOf(method, key, query);
    const record: RecordedRequest = {
      operation,
      method,
      path: url.pathname,
      bucket,
      key,
      query,
      headers,
      status: 0,
    };
    requests.push(record);
    let reply: Reply;
    try {
      const body = await readBody(incoming);
      if (unavailable) throw new S3Error(503, 'ServiceUnavailable', 'Please reduce your request rate.');
      if (headers.authorization === undefined && query['X-Amz-Signature'] === undefined) {
        throw new S3Error(403, 'AccessDenied', 'Access Denied');
      }
      reply = route(operation, { method, bucket, key, query, headers, body });
    } catch (err) {
      const e =
        err instanceof S3Error ? err : new S3Error(500, 'InternalError', 'We encountered an internal error.');
      reply = {
        status: e.status,
        headers: { 'content-type': 'application/xml', ...e.headers },
        body: errorXml(e.code, e.message, url.pathname, requestId),
      };
    }
    record.status = reply.status;
    const body = method === 'HEAD' || reply.status === 204 ? undefined : reply.body;
    const out: Record<string, string> = {
      'x-amz-request-id': requestId,
      'x-amz-id-2': requestId,
      server: 'AmazonS3',
      ...reply.headers,
    };
    if (method !== 'HEAD' && reply.status !== 204) {
      out['content-length'] = String(body === undefined ? 0 : Buffer.byteLength(body));
    }
    res.writeHead(reply.status, out);
    res.end(body);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    bucket: bucketName,
    requests,
    setClock(next: () => Date) {
      clock = next;
    },
    setUnavailable(on: boolean) {
      unavailable = on;
    },
    storedVersions: () =>
      [...objects.values()].flatMap((versions) =>
        versions
          .filter((v) => !v.deleteMarker)
          .map((v) => ({
            key: v.key,
            versionId: v.versionId,
            body: v.body,
            lastModified: v.lastModified,
            sha256:
              v.checksums.sha256 === undefined
                ? undefined
                : Buffer.from(v.checksums.sha256, 'base64').toString('hex'),
          })),
      ),
    bucketSettings: () => structuredClone(settings),
    configureBucket(patch: Partial<S3BucketSettings>) {
      settings = checkedSettings({ ...settings, ...patch });
    },
    setDeniedOperations(operations: readonly string[]) {
      denied = new Set(operations);
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
