import {
  GetBucketEncryptionCommand,
  type GetBucketEncryptionCommandOutput,
  GetBucketReplicationCommand,
  type GetBucketReplicationCommandOutput,
  GetBucketVersioningCommand,
  type GetBucketVersioningCommandOutput,
  GetObjectLockConfigurationCommand,
  type GetObjectLockConfigurationCommandOutput,
  GetPublicAccessBlockCommand,
  type GetPublicAccessBlockCommandOutput,
} from '@aws-sdk/client-s3';
import { s3Failure, toStoreError } from './s3-errors.ts';
import { createS3Client, describeS3, type S3WormStoreOptions, validateOptions } from './s3-worm-store.ts';
import { type StoreCheck, type StoreCheckReport, storeCheckReport } from './store-check-report.ts';

/** A Get* answer: the output, or the S3 error that the check reports. */
type Answer<T> = { ok: true; value: T } | { ok: false; code: string | undefined; reason: string };

const PUBLIC_ACCESS_FLAGS = [
  'BlockPublicAcls',
  'IgnorePublicAcls',
  'BlockPublicPolicy',
  'RestrictPublicBuckets',
] as const;
const ALL_FOUR_ON = `expected all four settings on (${PUBLIC_ACCESS_FLAGS.join(', ')})`;
const KMS_EXPECTED = 'expected SSE-KMS (aws:kms or aws:kms:dsse)';
const KMS_LABELS: Record<string, string> = { 'aws:kms': 'SSE-KMS', 'aws:kms:dsse': 'DSSE-KMS' };

/**
 * The S3 half of `checkStore`. The five Get* requests go out at once; each check reads one answer.
 * Default retention is compared in days with a year counted as 365 (as `RetentionPolicy` does), so
 * calendar years never make a bucket look longer than it is.
 */
export async function checkS3Bucket(
  options: S3WormStoreOptions,
  minimumRetentionDays: number,
): Promise<StoreCheckReport> {
  const resolved = validateOptions(options);
  const store = describeS3(resolved);
  const client = createS3Client(resolved);
  const Bucket = resolved.bucket;

  const ask = async <T>(
    operation: string,
    permission: string,
    send: () => Promise<T>,
  ): Promise<Answer<T>> => {
    try {
      return { ok: true, value: await send() };
    } catch (err) {
      const failure = s3Failure(err);
      if (failure.status === 403) {
        return {
          ok: false,
          code: 'AccessDenied',
          reason: `access denied to ${operation} (needs ${permission})`,
        };
      }
      // Nothing can be checked without an answer, or without the bucket: that is the error, not a report.
      // 501 is an answer: the server does not implement the setting, which the check reports.
      const noAnswer =
        failure.status === undefined ||
        (failure.status >= 500 && failure.status !== 501) ||
        failure.code === 'SlowDown';
      if (noAnswer || failure.code === 'NoSuchBucket') throw toStoreError(store, operation, err);
      return {
        ok: false,
        code: failure.code,
        reason: `${operation} answered ${failure.code ?? 'an error'}${failure.status ? ` (HTTP ${failure.status})` : ''}: ${failure.message}`,
      };
    }
  };

  try {
    const [lock, versioning, publicAccess, encryption, replication] = await Promise.all([
      ask('GetObjectLockConfiguration', 's3:GetBucketObjectLockConfiguration', () =>
        client.send(new GetObjectLockConfigurationCommand({ Bucket })),
      ),
      ask('GetBucketVersioning', 's3:GetBucketVersioning', () =>
        client.send(new GetBucketVersioningCommand({ Bucket })),
      ),
      ask('GetPublicAccessBlock', 's3:GetBucketPublicAccessBlock', () =>
        client.send(new GetPublicAccessBlockCommand({ Bucket })),
      ),
      ask('GetBucketEncryption', 's3:GetEncryptionConfiguration', () =>
        client.send(new GetBucketEncryptionCommand({ Bucket })),
      ),
      ask('GetBucketReplication', 's3:GetReplicationConfiguration', () =>
        client.send(new GetBucketReplicationCommand({ Bucket })),
      ),
    ]);
    return storeCheckReport(store, [
      objectLockCheck(lock),
      versioningCheck(versioning),
      defaultRetentionCheck(lock, minimumRetentionDays),
      publicAccessBlockCheck(publicAccess),
      encryptionCheck(encryption),
      replicationCheck(replication),
    ]);
  } finally {
    client.destroy();
  }
}

function objectLockCheck(answer: Answer<GetObjectLockConfigurationCommandOutput>): StoreCheck {
  const name = 'object-lock';
  if (!answer.ok) {
    if (answer.code === 'ObjectLockConfigurationNotFoundError') {
      return {
        name,
        status: 'fail',
        detail: 'Object Lock is not enabled (the bucket has no Object Lock configuration); expected Enabled',
      };
    }
    return { name, status: 'fail', detail: `${answer.reason}; expected Object Lock Enabled` };
  }
  const enabled = answer.value.ObjectLockConfiguration?.ObjectLockEnabled;
  return enabled === 'Enabled'
    ? { name, status: 'pass', detail: 'Object Lock is Enabled' }
    : { name, status: 'fail', detail: `Object Lock is ${enabled ?? 'not enabled'}; expected Enabled` };
}

function versioningCheck(answer: Answer<GetBucketVersioningCommandOutput>): StoreCheck {
  const name = 'versioning';
  if (!answer.ok) return { name, status: 'fail', detail: `${answer.reason}; expected versioning Enabled` };
  const status = answer.value.Status;
  if (status === 'Enabled') return { name, status: 'pass', detail: 'versioning is Enabled' };
  return {
    name,
    status: 'fail',
    detail: `${status ? `versioning is ${status}` : 'versioning has never been enabled'}; expected Enabled`,
  };
}

function defaultRetentionCheck(
  answer: Answer<GetObjectLockConfigurationCommandOutput>,
  minimumDays: number,
): StoreCheck {
  const name = 'default-retention';
  const expected = `expected COMPLIANCE of at least ${minimumDays} days (policy minimum)`;
  if (!answer.ok) {
    const found =
      answer.code === 'ObjectLockConfigurationNotFoundError'
        ? 'no default retention (Object Lock is not enabled)'
        : answer.reason;
    return { name, status: 'fail', detail: `${found}; ${expected}` };
  }
  const retention = answer.value.ObjectLockConfiguration?.Rule?.DefaultRetention;
  if (!retention || (retention.Days === undefined && retention.Years === undefined)) {
    return { name, status: 'fail', detail: `no default retention; ${expected}` };
  }
  const days = retention.Days ?? (retention.Years ?? 0) * 365;
  const period =
    retention.Days === undefined
      ? `${retention.Years} year${retention.Years === 1 ? '' : 's'} (${days} days)`
      : `${days} day${days === 1 ? '' : 's'}`;
  const found = `default retention is ${retention.Mode ?? 'without a mode'} ${period}`;
  if (retention.Mode !== 'COMPLIANCE' || days < minimumDays) {
    return { name, status: 'fail', detail: `${found}; ${expected}` };
  }
  return { name, status: 'pass', detail: `${found}, at least the policy minimum of ${minimumDays} days` };
}

function publicAccessBlockCheck(answer: Answer<GetPublicAccessBlockCommandOutput>): StoreCheck {
  const name = 'public-access-block';
  if (!answer.ok) {
    const found =
      answer.code === 'NoSuchPublicAccessBlockConfiguration'
        ? 'the bucket has no Block Public Access configuration'
        : answer.reason;
    return { name, status: 'fail', detail: `${found}; ${ALL_FOUR_ON}` };
  }
  const config = answer.value.PublicAccessBlockConfiguration ?? {};
  const off = PUBLIC_ACCESS_FLAGS.filter((flag) => config[flag] !== true);
  if (off.length === 0) {
    return { name, status: 'pass', detail: `all four settings are on (${PUBLIC_ACCESS_FLAGS.join(', ')})` };
  }
  return {
    name,
    status: 'fail',
    detail: `Block Public Access is incomplete: ${off.join(', ')} ${off.length === 1 ? 'is' : 'are'} off; ${ALL_FOUR_ON}`,
  };
}

function encryptionCheck(answer: Answer<GetBucketEncryptionCommandOutput>): StoreCheck {
  const name = 'encryption';
  if (!answer.ok) {
    const found =
      answer.code === 'ServerSideEncryptionConfigurationNotFoundError'
        ? 'no default encryption'
        : answer.reason;
    return { name, status: 'fail', detail: `${found}; ${KMS_EXPECTED}` };
  }
  const rule = answer.value.ServerSideEncryptionConfiguration?.Rules?.find(
    (r) => r.ApplyServerSideEncryptionByDefault?.SSEAlgorithm,
  );
  const algorithm = rule?.ApplyServerSideEncryptionByDefault?.SSEAlgorithm;
  if (!algorithm) return { name, status: 'fail', detail: `no default encryption; ${KMS_EXPECTED}` };
  const label = KMS_LABELS[algorithm];
  if (!label) {
    const found = algorithm === 'AES256' ? 'SSE-S3 (AES256)' : algorithm;
    return { name, status: 'fail', detail: `default encryption is ${found}; ${KMS_EXPECTED}` };
  }
  const key = rule.ApplyServerSideEncryptionByDefault?.KMSMasterKeyID ?? 'the AWS managed key aws/s3';
  return {
    name,
    status: 'pass',
    detail: `default encryption is ${label} (${algorithm}) with ${key}${rule.BucketKeyEnabled ? ', S3 Bucket Key on' : ''}`,
  };
}

function replicationCheck(answer: Answer<GetBucketReplicationCommandOutput>): StoreCheck {
  const name = 'replication';
  // Replication is reported, never required: not being able to read it is a warning too.
  if (!answer.ok) {
    return answer.code === 'ReplicationConfigurationNotFoundError'
      ? { name, status: 'warn', detail: 'not configured: records are kept in this bucket only' }
      : { name, status: 'warn', detail: `${answer.reason}; replication status unknown` };
  }
  const rules = answer.value.ReplicationConfiguration?.Rules ?? [];
  const described = rules
    .map(
      (r) => `${r.ID ?? '(no id)'} ${r.Status ?? 'unknown'} → ${r.Destination?.Bucket ?? '(no destination)'}`,
    )
    .join(', ');
  const enabled = rules.filter((r) => r.Status === 'Enabled').length;
  if (enabled === 0) {
    return {
      name,
      status: 'warn',
      detail:
        rules.length === 0 ? 'configured with no rules' : `configured, but no rule is enabled: ${described}`,
    };
  }
  return {
    name,
    status: 'pass',
    detail: `${enabled} of ${rules.length} rule${rules.length === 1 ? '' : 's'} enabled: ${described}`,
  };
}
