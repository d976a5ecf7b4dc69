import { createReadStream, type ReadStream } from 'node:fs';
import {
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  ListObjectVersionsCommand,
  type ListObjectVersionsCommandOutput,
  PutObjectCommand,
  PutObjectLegalHoldCommand,
  PutObjectRetentionCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { HoldfastError } from '@holdfast/core';
import {
  ChecksumMismatchError,
  InvalidObjectInputError,
  InvalidStoreOptionsError,
  ObjectExistsError,
  ObjectHeldError,
  ObjectNotFoundError,
  ObjectRetainedError,
  RetentionShortenError,
  StoreClosedError,
  StoreCorruptError,
  StoreNotWormError,
} from './errors.ts';
import { bodySize, checkFileBody, isFileBody } from './file-body.ts';
import type {
  ObjectHead,
  ObjectListEntry,
  ObjectStore,
  ObjectVersionOptions,
  ObjectVersionSummary,
  PutObjectInput,
  PutObjectResult,
} from './object-store.ts';
import { isNotFound, s3Failure, toStoreError } from './s3-errors.ts';
import { base64ToHex, hexToBase64, sha256Hex } from './sha256.ts';
import {
  validateDate,
  validateFutureDate,
  validateKey,
  validatePrefix,
  validatePutInput,
  validateVersionId,
} from './validate.ts';

export interface S3WormStoreOptions {
  /** Bucket with Object Lock enabled (open refuses any other). */
  bucket: string;
  /**
   * Endpoint of an S3-compatible server (MinIO, Ceph, …), e.g. `http://127.0.0.1:9000`.
   * @defaultValue AWS S3 for the region
   */
  endpoint?: string;
  /**
   * @defaultValue `AWS_REGION` from the environment, else `us-east-1` when an endpoint is given,
   * else the SDK's own region resolution
   */
  region?: string;
  /**
   * Path-style addressing (`<endpoint>/<bucket>/<key>`), which S3-compatible servers need.
   * @defaultValue `true` when `endpoint` is given, else `false`
   */
  forcePathStyle?: boolean;
  /**
   * @defaultValue the SDK's default provider chain (environment, profile, instance role, …)
   */
  credentials?: S3ClientConfig['credentials'];
  /**
   * Source of "now", used to validate retain-until dates and to explain refused deletes.
   * S3 itself decides with its own clock.
   * @defaultValue `() => new Date()`
   */
  clock?: () => Date;
}

export interface ResolvedOptions {
  readonly bucket: string;
  readonly endpoint: string | undefined;
  readonly region: string | undefined;
  readonly forcePathStyle: boolean;
  readonly credentials: S3ClientConfig['credentials'];
  readonly clock: () => Date;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function validateOptions(options: S3WormStoreOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidStoreOptionsError('options', 'must be an object');
  }
  if (typeof options.bucket !== 'string' || !BUCKET_NAME.test(options.bucket)) {
    throw new InvalidStoreOptionsError(
      'bucket',
      `${JSON.stringify(options.bucket)} is not an S3 bucket name`,
    );
  }
  if (options.endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(options.endpoint);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new InvalidStoreOptionsError(
        'endpoint',
        `${JSON.stringify(options.endpoint)} is not an http(s) URL`,
      );
    }
  }
  if (options.region !== undefined && (typeof options.region !== 'string' || options.region === '')) {
    throw new InvalidStoreOptionsError('region', 'must be a non-empty string');
  }
  if (options.clock !== undefined && typeof options.clock !== 'function') {
    throw new InvalidStoreOptionsError('clock', 'must be a function returning a Date');
  }
  const envRegion = process.env.AWS_REGION || undefined;
  return Object.freeze({
    bucket: options.bucket,
    endpoint: options.endpoint,
    region: options.region ?? envRegion ?? (options.endpoint ? 'us-east-1' : undefined),
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    credentials: options.credentials,
    clock: options.clock ?? (() => new Date()),
  });
}

const quiet = () => {};
const SILENT = { debug: quiet, info: quiet, warn: quiet, error: quiet };

/** The store's client; shared with the bucket preflight (`s3-bucket-check.ts`). */
export function createS3Client(resolved: ResolvedOptions): S3Client {
  return new S3Client({
    ...(resolved.endpoint === undefined ? {} : { endpoint: resolved.endpoint }),
    ...(resolved.region === undefined ? {} : { region: resolved.region }),
    ...(resolved.credentials === undefined ? {} : { credentials: resolved.credentials }),
    forcePathStyle: resolved.forcePathStyle,
    // Without a logger the SDK prints to the console when a streamed (file) put fails, as an
    // expected conditional put does; the adapter turns every failure into a typed error instead.
    logger: SILENT,
    // Several S3-compatible servers reject the SDK's default trailing (streamed) checksums; we
    // send our own SHA-256 as a header instead, which Object Lock puts require anyway.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** e.g. `s3://bucket (http://127.0.0.1:9000)` */
export function describeS3(resolved: ResolvedOptions): string {
  return `s3://${resolved.bucket}${resolved.endpoint ? ` (${resolved.endpoint})` : ''}`;
}

type HeadFields = Pick<
  HeadObjectCommandOutput,
  | 'VersionId'
  | 'ContentLength'
  | 'ChecksumSHA256'
  | 'ContentType'
  | 'ObjectLockMode'
  | 'ObjectLockRetainUntilDate'
  | 'ObjectLockLegalHoldStatus'
  | 'LastModified'
  | 'Metadata'
>;

function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/**
 * The ObjectStore on S3 Object Lock (AWS S3, MinIO, any S3 with Object Lock). Every version is put
 * under COMPLIANCE retention with a SHA-256 checksum header, so S3 verifies the bytes on write and
 * enforces retention and legal holds itself — this class only explains S3's refusals.
 */
export class S3WormStore implements ObjectStore {
  readonly description: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  readonly #clock: () => Date;
  #closed = false;

  private constructor(options: ResolvedOptions, client: S3Client) {
    this.#client = client;
    this.#bucket = options.bucket;
    this.#clock = options.clock;
    this.description = describeS3(options);
  }

  /** Opens the store; refuses (StoreNotWormError) a bucket without Object Lock enabled. */
  static async open(options: S3WormStoreOptions): Promise<S3WormStore> {
    const resolved = validateOptions(options);
    const client = createS3Client(resolved);
    const store = new S3WormStore(resolved, client);
    try {
      await store.#checkWorm();
    } catch (err) {
      client.destroy();
      throw err;
    }
    return store;
  }

  async put(input: PutObjectInput): Promise<PutObjectResult> {
    this.#assertOpen();
    const v = validatePutInput(input, this.#clock());
    // A file is streamed as it is read; S3 checks it against the ChecksumSHA256 header and
    // refuses (BadDigest) a body that does not match, so it need not be read twice.
    let stream: ReadStream | undefined;
    if (isFileBody(v.body)) {
      await checkFileBody(v.body);
      stream = createReadStream(v.body.path);
    } else {
      const actual = sha256Hex(v.body);
      if (actual !== v.sha256) {
        throw new ChecksumMismatchError(v.key, `body SHA-256 is ${actual} but ${v.sha256} was declared`);
      }
    }
    const checksum = hexToBase64(v.sha256);
    try {
      const out = await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: v.key,
          Body: stream ?? (v.body as Uint8Array),
          ContentLength: bodySize(v.body),
          ContentType: v.contentType,
          ChecksumSHA256: checksum,
          ObjectLockMode: 'COMPLIANCE',
          ObjectLockRetainUntilDate: v.retainUntil,
          ...(v.legalHold ? { ObjectLockLegalHoldStatus: 'ON' as const } : {}),
          ...(v.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
          Metadata: v.metadata,
        }),
      );
      if (out.ChecksumSHA256 !== undefined && out.ChecksumSHA256 !== checksum) {
        throw new StoreCorruptError(
          v.key,
          `S3 stored SHA-256 ${base64ToHex(out.ChecksumSHA256)}, sent ${v.sha256}`,
        );
      }
      if (!out.VersionId || out.VersionId === 'null') {
        throw new StoreNotWormError(this.description, 'the put returned no version id (versioning is off)');
      }
      return { key: v.key, versionId: out.VersionId, sha256: v.sha256 };
    } catch (err) {
      const failure = s3Failure(err);
      if (
        v.ifNoneMatch &&
        (failure.code === 'PreconditionFailed' || failure.code === 'ConditionalRequestConflict')
      ) {
        throw new ObjectExistsError(v.key);
      }
      if (failure.code === 'BadDigest' || failure.code === 'XAmzContentSHA256Mismatch') {
        throw new ChecksumMismatchError(v.key, `S3 refused the body: ${failure.message}`);
      }
      throw toStoreError(this.description, 'PutObject', err);
    } finally {
      stream?.destroy();
    }
  }

  async head(key: string, opts?: ObjectVersionOptions): Promise<ObjectHead | undefined> {
    this.#assertOpen();
    validateKey(key);
    const versionId = opts?.versionId === undefined ? undefined : validateVersionId(opts.versionId);
    try {
      const out = await this.#client.send(
        new HeadObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          VersionId: versionId,
          ChecksumMode: 'ENABLED',
        }),
      );
      return this.#toHead(key, out);
    } catch (err) {
      const failure = s3Failure(err);
      // 405: the version is a delete marker.
      if (isNotFound(failure) || failure.status === 405) return undefined;
      throw toStoreError(this.description, 'HeadObject', err);
    }
  }

  async get(key: string, opts?: ObjectVersionOptions): Promise<{ head: ObjectHead; body: Uint8Array }> {
    this.#assertOpen();
    validateKey(key);
    const versionId = opts?.versionId === undefined ? undefined : validateVersionId(opts.versionId);
    try {
      const out = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          VersionId: versionId,
          ChecksumMode: 'ENABLED',
        }),
      );
      const body = (await out.Body?.transformToByteArray()) ?? new Uint8Array();
      const head = this.#toHead(key, out);
      const actual = sha256Hex(body);
      if (head.sha256 !== '' && actual !== head.sha256) {
        throw new StoreCorruptError(
          key,
          `read ${body.byteLength} bytes with SHA-256 ${actual}; S3 says ${head.sha256}`,
        );
      }
      // Objects written without a SHA-256 checksum still report the hash of what was read.
      return { head: { ...head, sha256: actual }, body };
    } catch (err) {
      const failure = s3Failure(err);
      if (isNotFound(failure) || failure.status === 405) throw new ObjectNotFoundError(key, versionId);
      throw toStoreError(this.description, 'GetObject', err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectListEntry> {
    this.#assertOpen();
    validatePrefix(prefix);
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.#client.send(
          new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ContinuationToken: token }),
        );
      } catch (err) {
        throw toStoreError(this.description, 'ListObjectsV2', err);
      }
      for (const entry of page.Contents ?? []) {
        if (entry.Key === undefined) continue;
        yield { key: entry.Key, size: entry.Size ?? 0, lastModified: entry.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async *listVersions(prefix: string): AsyncIterable<ObjectVersionSummary> {
    this.#assertOpen();
    validatePrefix(prefix);
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    for (;;) {
      let page: ListObjectVersionsCommandOutput;
      try {
        page = await this.#client.send(
          new ListObjectVersionsCommand({
            Bucket: this.#bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            VersionIdMarker: versionIdMarker,
          }),
        );
      } catch (err) {
        throw toStoreError(this.description, 'ListObjectVersions', err);
      }
      // The SDK parses versions and delete markers into two lists; S3 interleaves them by key,
      // newest first, so merge them back in that order.
      const entries: ObjectVersionSummary[] = [
        ...(page.Versions ?? []).map((v) => ({
          key: v.Key ?? '',
          versionId: v.VersionId ?? 'null',
          size: v.Size ?? 0,
          lastModified: v.LastModified ?? new Date(0),
          isLatest: v.IsLatest ?? false,
          deleteMarker: false,
        })),
        ...(page.DeleteMarkers ?? []).map((m) => ({
          key: m.Key ?? '',
          versionId: m.VersionId ?? 'null',
          size: 0,
          lastModified: m.LastModified ?? new Date(0),
          isLatest: m.IsLatest ?? false,
          deleteMarker: true,
        })),
      ];
      entries.sort(
        (a, b) =>
          compareUtf8(a.key, b.key) ||
          Number(b.isLatest) - Number(a.isLatest) ||
          b.lastModified.getTime() - a.lastModified.getTime(),
      );
      yield* entries;
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      versionIdMarker = page.NextVersionIdMarker;
    }
  }

  async extendRetention(key: string, versionId: string, until: Date): Promise<void> {
    this.#assertOpen();
    validateKey(key);
    validateVersionId(versionId);
    validateDate(until, 'until');
    const current = await this.#currentRetention(key, versionId);
    if (current !== undefined) {
      if (until.getTime() < current.getTime())
        throw new RetentionShortenError(key, versionId, current, until);
      if (until.getTime() === current.getTime()) return;
    }
    validateFutureDate(until, 'until', this.#clock());
    try {
      await this.#client.send(
        new PutObjectRetentionCommand({
          Bucket: this.#bucket,
          Key: key,
          VersionId: versionId,
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until },
        }),
      );
    } catch (err) {
      const failure = s3Failure(err);
      if (isNotFound(failure)) throw new ObjectNotFoundError(key, versionId);
      if (failure.status === 403) {
        // Extended by someone else in between: name the date S3 holds now.
        const now = await this.#currentRetention(key, versionId);
        if (now !== undefined && until.getTime() < now.getTime()) {
          throw new RetentionShortenError(key, versionId, now, until);
        }
      }
      throw toStoreError(this.description, 'PutObjectRetention', err);
    }
  }

  async setLegalHold(key: string, versionId: string, on: boolean): Promise<void> {
    this.#assertOpen();
    validateKey(key);
    validateVersionId(versionId);
    if (typeof on !== 'boolean')
      throw new InvalidObjectInputError('on', 'the legal hold state must be a boolean');
    try {
      await this.#client.send(
        new PutObjectLegalHoldCommand({
          Bucket: this.#bucket,
          Key: key,
          VersionId: versionId,
          LegalHold: { Status: on ? 'ON' : 'OFF' },
        }),
      );
    } catch (err) {
      if (isNotFound(s3Failure(err))) throw new ObjectNotFoundError(key, versionId);
      throw toStoreError(this.description, 'PutObjectLegalHold', err);
    }
  }

  async deleteVersion(key: string, versionId: string): Promise<void> {
    this.#assertOpen();
    validateKey(key);
    validateVersionId(versionId);
    try {
      await this.#client.send(
        new DeleteObjectCommand({ Bucket: this.#bucket, Key: key, VersionId: versionId }),
      );
    } catch (err) {
      if (s3Failure(err).status !== 403) throw toStoreError(this.description, 'DeleteObject', err);
      // S3 answers a bare 403 for a locked version; look at the version to say which lock and until when.
      const head = await this.head(key, { versionId });
      const now = this.#clock();
      if (head?.retainUntil && now.getTime() < head.retainUntil.getTime()) {
        throw new ObjectRetainedError(key, versionId, head.retainUntil, head.legalHold);
      }
      if (head?.legalHold) throw new ObjectHeldError(key, versionId);
      throw toStoreError(this.description, 'DeleteObject', err);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#client.destroy();
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreClosedError(this.description);
  }

  async #checkWorm(): Promise<void> {
    try {
      const out = await this.#client.send(new GetObjectLockConfigurationCommand({ Bucket: this.#bucket }));
      if (out.ObjectLockConfiguration?.ObjectLockEnabled !== 'Enabled') {
        throw new StoreNotWormError(this.description, 'Object Lock is not enabled on the bucket');
      }
    } catch (err) {
      if (err instanceof HoldfastError) throw err;
      if (s3Failure(err).code === 'ObjectLockConfigurationNotFoundError') {
        throw new StoreNotWormError(this.description, 'the bucket has no Object Lock configuration');
      }
      throw toStoreError(this.description, 'GetObjectLockConfiguration', err);
    }
    let status: string | undefined;
    try {
      status = (await this.#client.send(new GetBucketVersioningCommand({ Bucket: this.#bucket }))).Status;
    } catch (err) {
      throw toStoreError(this.description, 'GetBucketVersioning', err);
    }
    if (status !== 'Enabled') {
      throw new StoreNotWormError(this.description, `bucket versioning is ${status ?? 'not enabled'}`);
    }
  }

  async #currentRetention(key: string, versionId: string): Promise<Date | undefined> {
    try {
      const out = await this.#client.send(
        new GetObjectRetentionCommand({ Bucket: this.#bucket, Key: key, VersionId: versionId }),
      );
      return out.Retention?.RetainUntilDate;
    } catch (err) {
      const failure = s3Failure(err);
      if (failure.code === 'NoSuchObjectLockConfiguration') return undefined;
      if (isNotFound(failure) || failure.status === 405) throw new ObjectNotFoundError(key, versionId);
      throw toStoreError(this.description, 'GetObjectRetention', err);
    }
  }

  #toHead(key: string, out: HeadFields): ObjectHead {
    return {
      key,
      versionId: out.VersionId ?? 'null',
      size: out.ContentLength ?? 0,
      sha256: base64ToHex(out.ChecksumSHA256),
      contentType: out.ContentType ?? 'application/octet-stream',
      mode: out.ObjectLockMode === 'COMPLIANCE' ? 'COMPLIANCE' : undefined,
      retainUntil: out.ObjectLockRetainUntilDate,
      legalHold: out.ObjectLockLegalHoldStatus === 'ON',
      lastModified: out.LastModified ?? new Date(0),
      metadata: { ...(out.Metadata ?? {}) },
    };
  }
}
