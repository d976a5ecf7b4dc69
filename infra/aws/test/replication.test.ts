import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RECORD_CLASSES, recordBucketName } from '../src/index.ts';
import {
  grants,
  list,
  only,
  resources,
  roleId,
  roleStatements,
  type Synthesized,
  synthesize,
} from './template-helpers.ts';

let app: Synthesized;
beforeAll(async () => {
  app = await synthesize();
});

describe('cross-Region replication', () => {
  it('puts the replicas in a second Region, deployed before the primary', () => {
    expect(app.stacks.replica.region).toBe(app.config.replicaRegion);
    expect(app.stacks.archive.region).toBe(app.config.region);
    expect(app.config.replicaRegion).not.toBe(app.config.region);
    expect(app.stacks.archive.dependencies).toContain(app.stacks.replica);
  });

  it.each(DEFAULT_RECORD_CLASSES.map((c) => [c.name]))(
    '%s: replicates every version and delete marker, SSE-KMS re-encrypted under the replica key, to an Object Lock bucket',
    (name) => {
      const source = recordBucketName(app.config, name, app.config.region);
      const target = recordBucketName(app.config, name, app.config.replicaRegion);
      const [, bucket] = only(
        resources(app.archive, 'AWS::S3::Bucket').filter(([, r]) => r.Properties.BucketName === source),
        source,
      );
      const replicationRole = roleId(app.archive, 'holdfast-replication');
      expect(bucket.Properties.ReplicationConfiguration).toEqual({
        Role: { 'Fn::GetAtt': [replicationRole, 'Arn'] },
        Rules: [
          {
            Id: `replicate-to-${app.config.replicaRegion}`,
            Status: 'Enabled',
            Priority: 0,
            Filter: { Prefix: '' },
            DeleteMarkerReplication: { Status: 'Enabled' },
            SourceSelectionCriteria: { SseKmsEncryptedObjects: { Status: 'Enabled' } },
            Destination: {
              Bucket: `arn:aws:s3:::${target}`,
              EncryptionConfiguration: {
                ReplicaKmsKeyID: `arn:aws:kms:${app.config.replicaRegion}:${app.config.account}:alias/holdfast-archive`,
              },
            },
          },
        ],
      });
      expect(bucket.DependsOn).toContain(replicationRole);

      // The destination exists in the replica stack, with Object Lock, versioning and the same retention.
      const [, replica] = only(
        resources(app.replica, 'AWS::S3::Bucket').filter(([, r]) => r.Properties.BucketName === target),
        target,
      );
      expect(replica.Properties.ObjectLockEnabled).toBe(true);
      expect(replica.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
      expect(replica.Properties.ObjectLockConfiguration).toEqual(bucket.Properties.ObjectLockConfiguration);
      expect(replica.Properties.ReplicationConfiguration).toBeUndefined();
      // ... and the alias the rule names is the replica stack's key alias.
      app.replica.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/holdfast-archive' });
    },
  );

  it('has a replication role assumable only by S3 for this account', () => {
    const [, role] = only(
      resources(app.archive, 'AWS::IAM::Role').filter(
        ([, r]) => r.Properties.RoleName === 'holdfast-replication',
      ),
      'replication role',
    );
    expect(role.Properties.AssumeRolePolicyDocument.Statement).toEqual([
      {
        Effect: 'Allow',
        Action: 'sts:AssumeRole',
        Principal: { Service: 's3.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': app.config.account } },
      },
    ]);
  });

  it('lets the replication role read source versions with their locks and write only replicas', () => {
    const statements = roleStatements(app.archive, roleId(app.archive, 'holdfast-replication'));
    const sources = DEFAULT_RECORD_CLASSES.map(
      (c) => `arn:aws:s3:::${recordBucketName(app.config, c.name, app.config.region)}`,
    );
    const replicas = DEFAULT_RECORD_CLASSES.map(
      (c) => `arn:aws:s3:::${recordBucketName(app.config, c.name, app.config.replicaRegion)}`,
    );
    const on = (action: string) =>
      statements.filter((s) => grants(s, action)).flatMap((s) => list(s.Resource));
    expect(on('s3:GetReplicationConfiguration')).toEqual(sources);
    for (const action of [
      's3:GetObjectVersionForReplication',
      's3:GetObjectRetention',
      's3:GetObjectLegalHold',
      's3:GetObjectVersionTagging',
    ]) {
      expect(on(action), action).toEqual(sources.map((s) => `${s}/*`));
    }
    for (const action of ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags']) {
      expect(on(action), action).toEqual(replicas.map((s) => `${s}/*`));
    }
    for (const action of [
      's3:PutObject',
      's3:DeleteObject',
      's3:DeleteObjectVersion',
      's3:PutObjectLegalHold',
    ]) {
      expect(on(action), action).toEqual([]);
    }
    const [keyId] = only(resources(app.archive, 'AWS::KMS::Key'), 'key');
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: 'kms:Decrypt',
        Resource: { 'Fn::GetAtt': [keyId, 'Arn'] },
        Condition: { StringEquals: { 'kms:ViaService': `s3.${app.config.region}.amazonaws.com` } },
      }),
    );
    expect(statements).toContainEqual(
      expect.objectContaining({
        Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
        Resource: `arn:aws:kms:${app.config.replicaRegion}:${app.config.account}:key/*`,
        Condition: {
          StringEquals: { 'kms:ViaService': `s3.${app.config.replicaRegion}.amazonaws.com` },
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/holdfast-archive' },
        },
      }),
    );
  });
});
