import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { type S3ServerOptions, startS3Server } from '@holdfast/testkit/s3-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { afterEach, describe, expect, it } from 'vitest';
import { checkStore, preflightStore, StoreCheckFailedError, type StoreCheckReport } from '../src/index.ts';

const credentials = { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' };
/** The built-in policy's shortest category (3y). */
const MINIMUM = 1095;
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function bucket(options: S3ServerOptions = {}) {
  const server = await startS3Server(options);
  cleanups.push(() => server.close());
  const check = () =>
    checkStore(`s3://${server.bucket}`, {
      s3Endpoint: server.endpoint,
      region: 'us-east-1',
      credentials,
      minimumRetentionDays: MINIMUM,
    });
  return { server, check };
}

function statuses(report: StoreCheckReport): Record<string, string> {
  return Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
}

function detail(report: StoreCheckReport, name: string): string {
  return report.checks.find((c) => c.name === name)!.detail;
}

describe('checkStore on S3', () => {
  it('passes a compliant bucket, reading each setting once, and warns that replication is not configured', async () => {
    const { server, check } = await bucket();
    const report = await check();
    expect(report).toMatchObject({ store: `s3://${server.bucket} (${server.endpoint})`, ok: true });
    expect(statuses(report)).toEqual({
      'object-lock': 'pass',
      versioning: 'pass',
      'default-retention': 'pass',
      'public-access-block': 'pass',
      encryption: 'pass',
      replication: 'warn',
    });
    expect(report.checks.map((c) => c.name)).toEqual([
      'object-lock',
      'versioning',
      'default-retention',
      'public-access-block',
      'encryption',
      'replication',
    ]);
    expect(detail(report, 'default-retention')).toBe(
      'default retention is COMPLIANCE 7 years (2555 days), at least the policy minimum of 1095 days',
    );
    expect(detail(report, 'encryption')).toContain('SSE-KMS (aws:kms) with arn:aws:kms:');
    expect(detail(report, 'replication')).toBe('not configured: records are kept in this bucket only');
    expect(server.requests.map((r) => r.operation).sort()).toEqual([
      'GetBucketEncryption',
      'GetBucketReplication',
      'GetBucketVersioning',
      'GetObjectLockConfiguration',
      'GetPublicAccessBlock',
    ]);
  });

  it.each<[string, S3ServerOptions, string, string]>([
    [
      'no Object Lock',
      { objectLock: false },
      'object-lock',
      'Object Lock is not enabled (the bucket has no Object Lock configuration); expected Enabled',
    ],
    [
      'versioning never enabled',
      { objectLock: false, versioning: false },
      'versioning',
      'versioning has never been enabled; expected Enabled',
    ],
    [
      'versioning suspended',
      { objectLock: false, versioning: 'Suspended' },
      'versioning',
      'versioning is Suspended; expected Enabled',
    ],
    [
      'no default retention',
      { defaultRetention: null },
      'default-retention',
      'no default retention; expected COMPLIANCE of at least 1095 days (policy minimum)',
    ],
    [
      'a GOVERNANCE default retention',
      { defaultRetention: { mode: 'GOVERNANCE', days: 30 } },
      'default-retention',
      'default retention is GOVERNANCE 30 days; expected COMPLIANCE of at least 1095 days (policy minimum)',
    ],
    [
      'a default retention shorter than the policy minimum',
      { defaultRetention: { mode: 'COMPLIANCE', years: 2 } },
      'default-retention',
      'default retention is COMPLIANCE 2 years (730 days); expected COMPLIANCE of at least 1095 days (policy minimum)',
    ],
    [
      'no Block Public Access configuration',
      { publicAccessBlock: null },
      'public-access-block',
      'the bucket has no Block Public Access configuration; expected all four settings on (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets)',
    ],
    [
      'Block Public Access partly off',
      {
        publicAccessBlock: {
          blockPublicAcls: true,
          ignorePublicAcls: false,
          blockPublicPolicy: true,
          restrictPublicBuckets: false,
        },
      },
      'public-access-block',
      'Block Public Access is incomplete: IgnorePublicAcls, RestrictPublicBuckets are off; expected all four settings on (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets)',
    ],
    [
      'SSE-S3 default encryption',
      { encryption: { algorithm: 'AES256' } },
      'encryption',
      'default encryption is SSE-S3 (AES256); expected SSE-KMS (aws:kms or aws:kms:dsse)',
    ],
    [
      'no default encryption',
      { encryption: null },
      'encryption',
      'no default encryption; expected SSE-KMS (aws:kms or aws:kms:dsse)',
    ],
    [
      'GetBucketEncryption denied',
      { deniedOperations: ['GetBucketEncryption'] },
      'encryption',
      'access denied to GetBucketEncryption (needs s3:GetEncryptionConfiguration); expected SSE-KMS (aws:kms or aws:kms:dsse)',
    ],
  ])(
    'fails a bucket with %s, naming what is wrong and what is expected',
    async (_, options, name, expected) => {
      const { check } = await bucket(options);
      const report = await check();
      expect(report.ok).toBe(false);
      expect(report.checks.find((c) => c.name === name)).toEqual({ name, status: 'fail', detail: expected });
    },
  );

  it('reports replication rules, warns when none is enabled, and only warns when it cannot read them', async () => {
    const rules = [
      { id: 'dr', status: 'Enabled' as const, destinationBucket: 'arn:aws:s3:::holdfast-dr' },
      { id: 'old', status: 'Disabled' as const, destinationBucket: 'arn:aws:s3:::holdfast-old' },
    ];
    const { server, check } = await bucket({
      replication: { role: 'arn:aws:iam::111122223333:role/replication', rules },
    });
    const enabled = await check();
    expect(enabled.ok).toBe(true);
    expect(enabled.checks.at(-1)).toEqual({
      name: 'replication',
      status: 'pass',
      detail:
        '1 of 2 rules enabled: dr Enabled → arn:aws:s3:::holdfast-dr, old Disabled → arn:aws:s3:::holdfast-old',
    });

    server.configureBucket({
      replication: { role: 'arn:aws:iam::111122223333:role/replication', rules: rules.slice(1) },
    });
    expect((await check()).checks.at(-1)).toMatchObject({
      status: 'warn',
      detail: 'configured, but no rule is enabled: old Disabled → arn:aws:s3:::holdfast-old',
    });

    server.setDeniedOperations(['GetBucketReplication']);
    const denied = await check();
    expect(denied.ok).toBe(true);
    expect(denied.checks.at(-1)).toMatchObject({
      status: 'warn',
      detail:
        'access denied to GetBucketReplication (needs s3:GetReplicationConfiguration); replication status unknown',
    });
  });

  it('fails both Object Lock checks with the reason when GetObjectLockConfiguration is denied', async () => {
    const { check } = await bucket({ deniedOperations: ['GetObjectLockConfiguration'] });
    const report = await check();
    expect(statuses(report)).toMatchObject({ 'object-lock': 'fail', 'default-retention': 'fail' });
    expect(detail(report, 'object-lock')).toBe(
      'access denied to GetObjectLockConfiguration (needs s3:GetBucketObjectLockConfiguration); expected Object Lock Enabled',
    );
  });

  it('throws, rather than reports, when the bucket does not exist or the server does not answer', async () => {
    const { server } = await bucket();
    const options = {
      s3Endpoint: server.endpoint,
      region: 'us-east-1',
      credentials,
      minimumRetentionDays: 1,
    };
    await expect(checkStore('s3://no-such-bucket', options)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_STORE_REQUEST',
      s3Code: 'NoSuchBucket',
    });
    server.setUnavailable(true);
    await expect(checkStore(`s3://${server.bucket}`, options)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_STORE_UNAVAILABLE',
    });
  });

  it('validates the spec and the minimum like openObjectStore does', async () => {
    await expect(checkStore('file:///tmp/x', { minimumRetentionDays: 1 })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_INVALID_STORE_SPEC',
    });
    await expect(
      checkStore('s3://holdfast-test', { minimumRetentionDays: Number.NaN }),
    ).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_INVALID_STORE_OPTIONS',
      option: 'minimumRetentionDays',
    });
  });
});

describe('preflightStore', () => {
  it('throws StoreCheckFailedError listing every failing check', async () => {
    const { server } = await bucket({ encryption: { algorithm: 'AES256' }, publicAccessBlock: null });
    const err = await preflightStore(`s3://${server.bucket}`, {
      s3Endpoint: server.endpoint,
      region: 'us-east-1',
      credentials,
      minimumRetentionDays: MINIMUM,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreCheckFailedError);
    expect(err).toMatchObject({
      code: 'HOLDFAST_ERR_STORE_CHECK_FAILED',
      store: `s3://${server.bucket} (${server.endpoint})`,
    });
    const failed = err as StoreCheckFailedError;
    expect(failed.failures.map((c) => c.name)).toEqual(['public-access-block', 'encryption']);
    expect(failed.message).toContain(
      'failed 2 store checks: public-access-block: the bucket has no Block Public Access',
    );
    expect(failed.message).toContain('encryption: default encryption is SSE-S3 (AES256); expected SSE-KMS');
  });

  it('returns the report of a passing store and logs its warnings', async () => {
    const { server } = await bucket();
    const warnings: unknown[] = [];
    const report = await preflightStore(`s3://${server.bucket}`, {
      s3Endpoint: server.endpoint,
      region: 'us-east-1',
      credentials,
      minimumRetentionDays: MINIMUM,
      log: { warn: (fields: object, message?: string) => warnings.push({ ...fields, message }) },
    });
    expect(report.ok).toBe(true);
    expect(warnings).toEqual([
      {
        store: report.store,
        check: 'replication',
        detail: 'not configured: records are kept in this bucket only',
        message: 'store check warning',
      },
    ]);
  });
});

describe('checkStore on a local directory', () => {
  it('passes, warning that Object Lock is enforced in-process only (not WORM against root)', async () => {
    const dir = await tempDir('holdfast-check-');
    cleanups.push(() => dir.remove());
    const storeDir = join(dir.path, 'store');
    const report = await checkStore(`local:${storeDir}`, { minimumRetentionDays: MINIMUM });
    expect(report.store).toBe(`local:${storeDir}`);
    expect(report.ok).toBe(true);
    expect(report.checks.find((c) => c.name === 'object-lock')).toMatchObject({ status: 'warn' });
    expect(detail(report, 'object-lock')).toContain('enforced in-process only');
    expect(detail(report, 'object-lock')).toContain('not WORM against root');
    expect(statuses(report)).toMatchObject({ versioning: 'pass', encryption: 'warn', replication: 'warn' });

    await chmod(storeDir, 0o700);
    expect(statuses(await checkStore(`local:${storeDir}`, { minimumRetentionDays: MINIMUM }))).toMatchObject({
      'public-access-block': 'pass',
    });
    await chmod(storeDir, 0o755);
    const readable = await checkStore(`local:${storeDir}`, { minimumRetentionDays: MINIMUM });
    expect(readable.checks.find((c) => c.name === 'public-access-block')).toMatchObject({
      status: 'warn',
      detail: expect.stringContaining('other local users can read records'),
    });
  });

  it('fails a directory every local user can write to', async () => {
    const dir = await tempDir('holdfast-check-');
    cleanups.push(() => dir.remove());
    await chmod(dir.path, 0o777);
    const report = await checkStore(`local:${dir.path}`, { minimumRetentionDays: MINIMUM });
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === 'public-access-block')).toEqual({
      name: 'public-access-block',
      status: 'fail',
      detail: `${dir.path} is writable by every local user (mode 0777); expected no access for other users (chmod o-rwx)`,
    });
  });
});
