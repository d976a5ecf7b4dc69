import { S3ServiceException } from '@aws-sdk/client-s3';
import { HoldfastError } from '@holdfast/core';
import { StoreAccessDeniedError, StoreRequestError, StoreUnavailableError } from './errors.ts';

export interface S3Failure {
  /** HTTP status, `undefined` for transport failures (no answer). */
  status: number | undefined;
  /** S3 error code (`NoSuchKey`, `AccessDenied`, …); HEAD answers carry none (`NotFound`). */
  code: string | undefined;
  message: string;
}

export function s3Failure(err: unknown): S3Failure {
  if (err instanceof S3ServiceException) {
    return { status: err.$metadata?.httpStatusCode, code: err.name, message: err.message };
  }
  return { status: undefined, code: undefined, message: err instanceof Error ? err.message : String(err) };
}

/**
 * The fallback mapping once an operation has handled the answers it expects (404, 412, 403 on a
 * lock): no answer or 5xx → StoreUnavailableError, 403 → StoreAccessDeniedError, else StoreRequestError.
 * The SDK error is always kept as the cause (or summarised) so operators can see what S3 said.
 */
export function toStoreError(store: string, operation: string, err: unknown): HoldfastError {
  if (err instanceof HoldfastError) return err;
  const failure = s3Failure(err);
  if (failure.status === undefined || failure.status >= 500 || failure.code === 'SlowDown') {
    return new StoreUnavailableError(store, operation, { cause: err });
  }
  if (failure.status === 403) return new StoreAccessDeniedError(store, operation, { cause: err });
  return new StoreRequestError(store, operation, failure.code, failure.status, failure.message);
}

export function isNotFound(failure: S3Failure): boolean {
  return (
    failure.status === 404 &&
    (failure.code === 'NoSuchKey' || failure.code === 'NoSuchVersion' || failure.code === 'NotFound')
  );
}
