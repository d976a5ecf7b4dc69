import { HoldfastError } from '@holdfast/core';
import type { StoreCheck, StoreCheckReport } from './store-check-report.ts';

function versionLabel(key: string, versionId: string | undefined): string {
  return versionId === undefined ? `"${key}"` : `"${key}" version ${versionId}`;
}

/** A conditional put (`ifNoneMatch`) found a current version at the key; nothing was written. */
export class ObjectExistsError extends HoldfastError {
  readonly key: string;

  constructor(key: string) {
    super('HOLDFAST_ERR_OBJECT_EXISTS', `object "${key}" already exists; the conditional put wrote nothing`);
    this.key = key;
  }
}

/**
 * A different object already sits at a key that embeds the content's hash: corruption or a bug,
 * never something a retry fixes. It needs a person.
 */
export class ObjectConflictError extends HoldfastError {
  readonly key: string;

  constructor(key: string, expected: string, found: string) {
    super('HOLDFAST_ERR_OBJECT_CONFLICT', `object ${key} exists with sha256 ${found}, expected ${expected}`);
    this.key = key;
  }
}

/** The key (or the version of it) does not exist. */
export class ObjectNotFoundError extends HoldfastError {
  readonly key: string;
  readonly versionId: string | undefined;

  constructor(key: string, versionId?: string) {
    super('HOLDFAST_ERR_OBJECT_NOT_FOUND', `object ${versionLabel(key, versionId)} does not exist`);
    this.key = key;
    this.versionId = versionId;
  }
}

/** A version under retention cannot be deleted before its retain-until date. */
export class ObjectRetainedError extends HoldfastError {
  readonly key: string;
  readonly versionId: string;
  readonly retainUntil: Date;

  constructor(key: string, versionId: string, retainUntil: Date, legalHold: boolean) {
    super(
      'HOLDFAST_ERR_OBJECT_RETAINED',
      `object ${versionLabel(key, versionId)} is retained (COMPLIANCE) until ${retainUntil.toISOString()}` +
        `${legalHold ? ' and under legal hold' : ''}; it cannot be deleted before then`,
    );
    this.key = key;
    this.versionId = versionId;
    this.retainUntil = retainUntil;
  }
}

/** A version under legal hold cannot be deleted until the hold is released. */
export class ObjectHeldError extends HoldfastError {
  readonly key: string;
  readonly versionId: string;

  constructor(key: string, versionId: string) {
    super(
      'HOLDFAST_ERR_OBJECT_HELD',
      `object ${versionLabel(key, versionId)} is under legal hold; it cannot be deleted until the hold is released`,
    );
    this.key = key;
    this.versionId = versionId;
  }
}

/** Retention can be extended, never shortened. */
export class RetentionShortenError extends HoldfastError {
  readonly key: string;
  readonly versionId: string;
  readonly currentRetainUntil: Date;
  readonly requestedRetainUntil: Date;

  constructor(key: string, versionId: string, current: Date, requested: Date) {
    super(
      'HOLDFAST_ERR_RETENTION_SHORTEN',
      `object ${versionLabel(key, versionId)} is retained until ${current.toISOString()}; ` +
        `retention can be extended but never shortened (asked for ${requested.toISOString()})`,
    );
    this.key = key;
    this.versionId = versionId;
    this.currentRetainUntil = current;
    this.requestedRetainUntil = requested;
  }
}

/** The body's SHA-256 is not the one declared (or the server computed another); nothing was written. */
export class ChecksumMismatchError extends HoldfastError {
  readonly key: string;

  constructor(key: string, detail: string) {
    super('HOLDFAST_ERR_CHECKSUM_MISMATCH', `object "${key}": ${detail}; nothing was written`);
    this.key = key;
  }
}

/** Stored bytes no longer match the SHA-256 recorded when they were written. */
export class StoreCorruptError extends HoldfastError {
  readonly key: string;

  constructor(key: string, detail: string) {
    super('HOLDFAST_ERR_STORE_CORRUPT', `object "${key}" is corrupt: ${detail}`);
    this.key = key;
  }
}

/** The bucket (or directory) cannot give WORM guarantees, so the store refuses to open. */
export class StoreNotWormError extends HoldfastError {
  readonly store: string;

  constructor(store: string, reason: string) {
    super('HOLDFAST_ERR_STORE_NOT_WORM', `${store} cannot be used as a WORM store: ${reason}`);
    this.store = store;
  }
}

/** The store spec (e.g. `HOLDFAST_STORE`) is not one of the accepted forms. */
export class InvalidStoreSpecError extends HoldfastError {
  readonly spec: string;

  constructor(spec: string, reason: string) {
    super(
      'HOLDFAST_ERR_INVALID_STORE_SPEC',
      `invalid store spec ${JSON.stringify(spec)}: ${reason}; expected "local:<dir>" or "s3://<bucket>"`,
    );
    this.spec = spec;
  }
}

/** Options passed to a store's `open` are invalid. */
export class InvalidStoreOptionsError extends HoldfastError {
  readonly option: string;

  constructor(option: string, reason: string) {
    super('HOLDFAST_ERR_INVALID_STORE_OPTIONS', `store option ${option}: ${reason}`);
    this.option = option;
  }
}

/** An object key or list prefix is not acceptable. */
export class InvalidKeyError extends HoldfastError {
  readonly key: string;

  constructor(key: string, reason: string) {
    super('HOLDFAST_ERR_INVALID_KEY', `invalid object key ${JSON.stringify(key)}: ${reason}`);
    this.key = key;
  }
}

/** A field of an object operation (sha256, retainUntil, metadata, …) is invalid; nothing was written. */
export class InvalidObjectInputError extends HoldfastError {
  readonly field: string;

  constructor(field: string, reason: string) {
    super('HOLDFAST_ERR_INVALID_OBJECT_INPUT', `invalid ${field}: ${reason}`);
    this.field = field;
  }
}

/** The store could not be reached or failed (network error, 5xx, I/O error); the cause is kept. */
export class StoreUnavailableError extends HoldfastError {
  readonly store: string;

  constructor(store: string, operation: string, options?: ErrorOptions) {
    const cause = options?.cause;
    const detail = cause instanceof Error ? `: ${cause.name}: ${cause.message}` : '';
    super('HOLDFAST_ERR_STORE_UNAVAILABLE', `${store} unavailable during ${operation}${detail}`, options);
    this.store = store;
  }
}

/** The store refused the request for lack of permission (not because of a lock). */
export class StoreAccessDeniedError extends HoldfastError {
  readonly store: string;

  constructor(store: string, operation: string, options?: ErrorOptions) {
    super('HOLDFAST_ERR_STORE_ACCESS_DENIED', `${store} denied ${operation}`, options);
    this.store = store;
  }
}

/** The store answered a request with an error this package has no more specific error for. */
export class StoreRequestError extends HoldfastError {
  readonly store: string;
  readonly status: number | undefined;
  readonly s3Code: string | undefined;

  constructor(
    store: string,
    operation: string,
    s3Code: string | undefined,
    status: number | undefined,
    detail: string,
  ) {
    super(
      'HOLDFAST_ERR_STORE_REQUEST',
      `${store} refused ${operation}: ${s3Code ?? 'error'}${status ? ` (HTTP ${status})` : ''}: ${detail}`,
    );
    this.store = store;
    this.status = status;
    this.s3Code = s3Code;
  }
}

/** The store was used after `close()`. */
export class StoreClosedError extends HoldfastError {
  constructor(store: string) {
    super('HOLDFAST_ERR_STORE_CLOSED', `${store} is closed`);
  }
}

/**
 * The store failed the preflight (`checkStore`): a service refuses to start against it (fail
 * closed). The message names every failing check and what is expected instead.
 */
export class StoreCheckFailedError extends HoldfastError {
  readonly store: string;
  readonly failures: readonly StoreCheck[];
  readonly report: StoreCheckReport;

  constructor(report: StoreCheckReport) {
    const failures = report.checks.filter((c) => c.status === 'fail');
    super(
      'HOLDFAST_ERR_STORE_CHECK_FAILED',
      `${report.store} failed ${failures.length} store check${failures.length === 1 ? '' : 's'}: ` +
        failures.map((c) => `${c.name}: ${c.detail}`).join('; '),
    );
    this.store = report.store;
    this.failures = failures;
    this.report = report;
  }
}
