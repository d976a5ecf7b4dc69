import type { Logger } from '@holdfast/core';
import { InvalidStoreOptionsError, StoreCheckFailedError } from './errors.ts';
import { checkLocalStore } from './local-store-check.ts';
import { type OpenObjectStoreOptions, parseStoreSpec } from './open-object-store.ts';
import { checkS3Bucket } from './s3-bucket-check.ts';
import type { S3WormStoreOptions } from './s3-worm-store.ts';
import type { StoreCheckReport } from './store-check-report.ts';

export interface CheckStoreOptions extends Pick<OpenObjectStoreOptions, 's3Endpoint' | 'region'> {
  /**
   * The retention policy's shortest category in days (`RetentionPolicy.minimumDays()`): the bucket's
   * default retention must be COMPLIANCE of at least this.
   */
  minimumRetentionDays: number;
  /**
   * Credentials for `s3://` specs.
   * @defaultValue the AWS SDK's default provider chain
   */
  credentials?: S3WormStoreOptions['credentials'];
}

export interface PreflightStoreOptions extends CheckStoreOptions {
  /**
   * Where warnings (e.g. replication not configured) are logged.
   * @defaultValue warnings are not logged
   */
  log?: Pick<Logger, 'warn'>;
}

/**
 * Preflight of the store a spec (`HOLDFAST_STORE`) names. For `s3://<bucket>` it reads the bucket's
 * Object Lock configuration, versioning, Block Public Access, default encryption and replication,
 * and fails each setting that does not keep records WORM, private and encrypted with KMS (see
 * `s3-bucket-check.ts`). For `local:<dir>` it reports what the local store does and does not
 * guarantee. A denied Get* fails its check with that reason; a store that cannot be reached
 * (StoreUnavailableError) or a bucket that does not exist (StoreRequestError) throws, since
 * nothing could be checked. The spec is validated as `openObjectStore` does.
 */
export async function checkStore(spec: string, opts: CheckStoreOptions): Promise<StoreCheckReport> {
  const parsed = parseStoreSpec(spec);
  const minimumRetentionDays = opts?.minimumRetentionDays;
  if (
    typeof minimumRetentionDays !== 'number' ||
    !Number.isFinite(minimumRetentionDays) ||
    minimumRetentionDays < 0
  ) {
    throw new InvalidStoreOptionsError('minimumRetentionDays', 'must be a number of days, 0 or more');
  }
  if (parsed.kind === 'local') return checkLocalStore(parsed.dir, minimumRetentionDays);
  return checkS3Bucket(
    {
      bucket: parsed.bucket,
      ...(opts.s3Endpoint === undefined ? {} : { endpoint: opts.s3Endpoint }),
      ...(opts.region === undefined ? {} : { region: opts.region }),
      ...(opts.credentials === undefined ? {} : { credentials: opts.credentials }),
    },
    minimumRetentionDays,
  );
}

/**
 * Fail closed: runs `checkStore` and throws StoreCheckFailedError listing every failing check
 * unless all required checks pass; warnings go to `log`. Services call this before they open a
 * store of their own.
 */
export async function preflightStore(spec: string, opts: PreflightStoreOptions): Promise<StoreCheckReport> {
  const report = await checkStore(spec, opts);
  if (!report.ok) throw new StoreCheckFailedError(report);
  for (const check of report.checks) {
    if (check.status === 'warn') {
      opts.log?.warn({ store: report.store, check: check.name, detail: check.detail }, 'store check warning');
    }
  }
  return report;
}
