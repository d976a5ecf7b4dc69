/** Only COMPLIANCE: nobody, root included, can shorten or remove it. */
export type RetentionMode = 'COMPLIANCE';

/**
 * A body read from a file while it is stored, so an object larger than memory (downloaded media)
 * never has to be held whole. The file must not change until the put has resolved.
 */
export interface PutObjectFileBody {
  /** Path of a regular file. */
  path: string;
  /** Its size in bytes; a file of another size is refused before anything is written. */
  size: number;
}

export interface PutObjectInput {
  /** Object key: non-empty, no leading `/`, no `..`, no empty segments, no control characters. */
  key: string;
  /** The bytes, or a file to stream them from. */
  body: Uint8Array | PutObjectFileBody;
  contentType: string;
  /**
   * lowercase hex SHA-256 of body; the store verifies it (local: while copying a file body;
   * S3: sent as ChecksumSHA256 base64, and S3 refuses a body that does not match)
   */
  sha256: string;
  /** Must lie in the future. Counted from the record's own date by the caller's retention policy. */
  retainUntil: Date;
  /**
   * Place a legal hold at write time.
   * @defaultValue false
   */
  legalHold?: boolean;
  /**
   * Conditional put: fail with ObjectExistsError if any current version exists at key.
   * @defaultValue false
   */
  ifNoneMatch?: boolean;
  /**
   * User metadata. Keys: lowercase letters, digits, `-`, `_`, `.`; values: printable ASCII;
   * at most 2 KiB in total (the S3 limit).
   * @defaultValue `{}`
   */
  metadata?: Record<string, string>;
}

export interface PutObjectResult {
  key: string;
  versionId: string;
  sha256: string;
}

export interface ObjectHead {
  key: string;
  versionId: string;
  size: number;
  /** lowercase hex; `''` when an S3 server returned no full-object SHA-256 (not written by Holdfast). */
  sha256: string;
  contentType: string;
  /** `undefined` when the version carries no COMPLIANCE retention. */
  mode: RetentionMode | undefined;
  retainUntil: Date | undefined;
  legalHold: boolean;
  lastModified: Date;
  metadata: Record<string, string>;
}

export interface ObjectVersionSummary {
  key: string;
  versionId: string;
  size: number;
  lastModified: Date;
  isLatest: boolean;
  deleteMarker: boolean;
}

export interface ObjectListEntry {
  key: string;
  size: number;
  lastModified: Date;
}

export interface ObjectVersionOptions {
  /** A specific version; the latest when absent. */
  versionId?: string;
}

/**
 * The WORM object store port. Every version is written under COMPLIANCE retention that can be
 * extended but never shortened; a version cannot be deleted while retained or held.
 */
export interface ObjectStore {
  /** e.g. `local:/var/lib/holdfast/archive` or `s3://bucket (http://127.0.0.1:9000)` */
  readonly description: string;
  /** Writes a new version. Fails with ChecksumMismatchError if `sha256` is not the body's. */
  put(input: PutObjectInput): Promise<PutObjectResult>;
  /** `undefined` when the key (or version) is absent. */
  head(key: string, opts?: ObjectVersionOptions): Promise<ObjectHead | undefined>;
  /** ObjectNotFoundError when absent. */
  get(key: string, opts?: ObjectVersionOptions): Promise<{ head: ObjectHead; body: Uint8Array }>;
  /** Current objects whose key starts with `prefix`, in lexicographic (UTF-8 byte) key order. */
  list(prefix: string): AsyncIterable<ObjectListEntry>;
  /** Every version under `prefix`: keys in lexicographic order, newest version first within a key. */
  listVersions(prefix: string): AsyncIterable<ObjectVersionSummary>;
  /** Shorter than current → RetentionShortenError naming the current date; equal is a no-op. */
  extendRetention(key: string, versionId: string, until: Date): Promise<void>;
  setLegalHold(key: string, versionId: string, on: boolean): Promise<void>;
  /**
   * ObjectRetainedError while now < retainUntil (message names the date), ObjectHeldError while a
   * legal hold is on. Deleting a version that does not exist succeeds (as on S3).
   */
  deleteVersion(key: string, versionId: string): Promise<void>;
  close(): Promise<void>;
}
