import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RetentionPolicy } from '@holdfast/core';
import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RECORD_CLASSES, defaultRetentionDays, recordBucketName } from '../src/index.ts';
import {
  list,
  only,
  type Resource,
  resources,
  type Statement,
  type Synthesized,
  synthesize,
} from './template-helpers.ts';

let app: Synthesized;
beforeAll(async () => {
  app = await synthesize();
});

const archiveBuckets = (s: Synthesized, which: 'archive' | 'replica') =>
  resources(s[which], 'AWS::S3::Bucket').filter(([, r]) => r.Properties.ObjectLockEnabled === true);

const bucketNamed = (s: Synthesized, which: 'archive' | 'replica', name: string): [string, Resource] =>
  only(
    resources(s[which], 'AWS::S3::Bucket').filter(([, r]) => r.Properties.BucketName === name),
    `bucket ${name}`,
  );

const policyOf = (s: Synthesized, which: 'archive' | 'replica', logicalId: string): Statement[] =>
  list(
    only(
      resources(s[which], 'AWS::S3::BucketPolicy').filter(([, p]) => p.Properties.Bucket?.Ref === logicalId),
      `policy of ${logicalId}`,
    )[1].Properties.PolicyDocument.Statement,
  );

describe.each(['archive', 'replica'] as const)('record class buckets (%s stack)', (which) => {
  const region = () => (which === 'archive' ? app.config.region : app.config.replicaRegion);

  it('creates one Object Lock bucket per record class, named for the class, account and Region', () => {
    expect(archiveBuckets(app, which)).toHaveLength(DEFAULT_RECORD_CLASSES.length);
    for (const c of DEFAULT_RECORD_CLASSES) {
      expect(bucketNamed(app, which, recordBucketName(app.config, c.name, region()))).toBeDefined();
    }
    expect(DEFAULT_RECORD_CLASSES.map((c) => c.name)).toEqual([
      'messages',
      'transactions',
      'audit-log',
      'contracts',
    ]);
  });

  it.each(DEFAULT_RECORD_CLASSES.map((c) => [c.name, c] as const))(
    '%s: COMPLIANCE default retention in days from the retention policy, versioning on',
    (_name, recordClass) => {
      const [, bucket] = bucketNamed(app, which, recordBucketName(app.config, recordClass.name, region()));
      const days = defaultRetentionDays(RetentionPolicy.defaults(), recordClass);
      expect(bucket.Properties.ObjectLockEnabled).toBe(true);
      expect(bucket.Properties.ObjectLockConfiguration).toEqual({
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: days } },
      });
      expect(bucket.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    },
  );

  it('blocks all four kinds of public access and disables ACLs on every bucket', () => {
    for (const [, bucket] of resources(app[which], 'AWS::S3::Bucket')) {
      expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(bucket.Properties.OwnershipControls).toEqual({
        Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }],
      });
    }
  });

  it('encrypts archive buckets with SSE-KMS under the stack’s customer-managed key (bucket key on)', () => {
    const [keyId] = only(resources(app[which], 'AWS::KMS::Key'), 'KMS key');
    for (const [, bucket] of archiveBuckets(app, which)) {
      expect(bucket.Properties.BucketEncryption).toEqual({
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] },
            },
          },
        ],
      });
    }
  });

  it('denies every request without TLS (and below TLS 1.2) on every bucket', () => {
    for (const [id] of resources(app[which], 'AWS::S3::Bucket')) {
      const statements = policyOf(app, which, id);
      const arn = { 'Fn::GetAtt': [id, 'Arn'] };
      const objects = { 'Fn::Join': ['', [arn, '/*']] };
      expect(statements).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 's3:*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          Resource: [arn, objects],
        }),
      );
      expect(statements).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 's3:*',
          Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
        }),
      );
    }
  });

  it('moves current and noncurrent versions to Glacier Deep Archive after the configured age, and never expires them', () => {
    for (const [, bucket] of archiveBuckets(app, which)) {
      const rules = bucket.Properties.LifecycleConfiguration.Rules as Record<string, unknown>[];
      expect(rules).toEqual([
        {
          Id: 'deep-archive',
          Status: 'Enabled',
          Transitions: [{ StorageClass: 'DEEP_ARCHIVE', TransitionInDays: app.config.deepArchiveAfterDays }],
          NoncurrentVersionTransitions: [
            { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: app.config.deepArchiveAfterDays },
          ],
          AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
        },
      ]);
      // Retention survives the transition because nothing in lifecycle removes or replaces a version:
      // the lock stays on the version whatever its storage class.
      for (const rule of rules) {
        for (const field of [
          'ExpirationInDays',
          'ExpirationDate',
          'ExpiredObjectDeleteMarker',
          'NoncurrentVersionExpiration',
          'NoncurrentVersionExpirationInDays',
        ]) {
          expect(rule).not.toHaveProperty(field);
        }
      }
      expect(bucket.Properties.ObjectLockConfiguration.Rule.DefaultRetention.Mode).toBe('COMPLIANCE');
    }
  });

  it('logs server access to a separate SSE-S3 log bucket, one prefix per class, delivered by bucket policy', () => {
    const logBuckets = resources(app[which], 'AWS::S3::Bucket').filter(
      ([, r]) => !r.Properties.ObjectLockEnabled,
    );
    const [logId, logBucket] = only(logBuckets, 'access log bucket');
    expect(logBucket.Properties.BucketName).toMatch(/-access-logs-/);
    expect(
      logBucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0]
        .ServerSideEncryptionByDefault,
    ).toEqual({ SSEAlgorithm: 'AES256' });
    expect(logBucket.Properties.LoggingConfiguration).toBeUndefined();
    for (const c of DEFAULT_RECORD_CLASSES) {
      const [id, bucket] = bucketNamed(app, which, recordBucketName(app.config, c.name, region()));
      expect(id).not.toBe(logId);
      expect(bucket.Properties.LoggingConfiguration).toEqual({
        DestinationBucketName: { Ref: logId },
        LogFilePrefix: `${c.name}/`,
      });
    }
    expect(policyOf(app, which, logId)).toContainEqual(
      expect.objectContaining({
        Effect: 'Allow',
        Principal: { Service: 'logging.s3.amazonaws.com' },
        Action: 's3:PutObject',
      }),
    );
    expect(policyOf(app, which, logId)).toContainEqual(
      expect.objectContaining({
        Sid: 'DenyDeletingAccessLogs',
        Effect: 'Deny',
        Action: ['s3:DeleteObject', 's3:DeleteObjectVersion'],
      }),
    );
  });

  it('keeps every bucket and the key when the stack is deleted or replaced', () => {
    for (const type of ['AWS::S3::Bucket', 'AWS::KMS::Key']) {
      for (const [, resource] of resources(app[which], type)) {
        expect(resource.DeletionPolicy).toBe('Retain');
      }
    }
  });

  it('guards archive buckets by policy: no governance bypass, holds only by legal-hold, version deletes only by disposal, no delete markers', () => {
    const account = app.config.account;
    for (const [id] of archiveBuckets(app, which)) {
      const statements = policyOf(app, which, id);
      const objects = { 'Fn::Join': ['', [{ 'Fn::GetAtt': [id, 'Arn'] }, '/*']] };
      expect(statements).toContainEqual({
        Sid: 'DenyGovernanceBypass',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:BypassGovernanceRetention',
        Resource: objects,
      });
      expect(statements).toContainEqual({
        Sid: 'DenyLegalHoldsExceptLegalHoldRole',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:PutObjectLegalHold',
        Resource: objects,
        Condition: {
          ArnNotEquals: { 'aws:PrincipalArn': `arn:aws:iam::${account}:role/holdfast-legal-hold` },
        },
      });
      expect(statements).toContainEqual({
        Sid: 'DenyVersionDeletionExceptDisposalRole',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:DeleteObjectVersion',
        Resource: objects,
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': `arn:aws:iam::${account}:role/holdfast-disposal` } },
      });
      expect(statements).toContainEqual({
        Sid: 'DenyDeleteMarkers',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:DeleteObject',
        Resource: objects,
      });
      // No bucket policy statement allows anything to anyone: access is granted only to the roles.
      expect(statements.filter((s) => s.Effect === 'Allow')).toEqual([]);
    }
  });
});

describe('record class configuration', () => {
  it('derives each bucket’s default retention from its own categories in the policy file', async () => {
    const { policyPath, cleanup } = await writePolicy(
      'categories:\n  audit-log: 3y\n  contract: 10y\n  trades: 6y\n',
    );
    try {
      const custom = await synthesize({
        retentionPolicy: policyPath,
        recordClasses: JSON.stringify({
          'audit-log': ['audit-log'],
          contracts: { categories: ['contract'], deepArchiveAfterDays: 30 },
          trades: ['trades'],
        }),
      });
      const days = (name: string) =>
        bucketNamed(custom, 'archive', recordBucketName(custom.config, name, custom.config.region))[1]
          .Properties.ObjectLockConfiguration.Rule.DefaultRetention.Days;
      expect(days('audit-log')).toBe(1096); // 3 × 365 + the leap day three calendar years can hold
      expect(days('contracts')).toBe(3653);
      expect(days('trades')).toBe(2192);
      expect(archiveBuckets(custom, 'replica')).toHaveLength(3);
      custom.archive.hasResourceProperties('AWS::S3::Bucket', {
        BucketName: recordBucketName(custom.config, 'contracts', custom.config.region),
        LifecycleConfiguration: {
          Rules: [
            Match.objectLike({ Transitions: [{ StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 30 }] }),
          ],
        },
      });
    } finally {
      await cleanup();
    }
  });
});

async function writePolicy(text: string): Promise<{ policyPath: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-infra-policy-'));
  const policyPath = join(dir, 'policy.yaml');
  await writeFile(policyPath, text);
  return { policyPath, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
