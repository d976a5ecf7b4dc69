import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RECORD_CLASSES, recordBucketName } from '../src/index.ts';
import {
  allIdentityStatements,
  grants,
  list,
  only,
  resources,
  roleId,
  roleStatements,
  type Statement,
  type Synthesized,
  synthesize,
} from './template-helpers.ts';

let app: Synthesized;
beforeAll(async () => {
  app = await synthesize({ eksClusterName: 'prod' });
});

const ROLES = ['ingest', 'archiver', 'sender', 'media-fetcher', 'legal-hold', 'disposal', 'replication'];
const statementsOf = (name: string): Statement[] =>
  roleStatements(app.archive, roleId(app.archive, `holdfast-${name}`));
/** Resources on which role `name` is allowed `action`. */
const allowedOn = (name: string, action: string): unknown[] =>
  statementsOf(name)
    .filter((s) => grants(s, action))
    .flatMap((s) => list(s.Resource));
const objectsIn = (region: string) =>
  DEFAULT_RECORD_CLASSES.map((c) => `arn:aws:s3:::${recordBucketName(app.config, c.name, region)}/*`);

describe('IAM roles', () => {
  it('creates exactly one role per service, per operator duty, and for replication — all in the primary stack', () => {
    const names = resources(app.archive, 'AWS::IAM::Role').map(([, r]) => r.Properties.RoleName);
    expect(names.sort()).toEqual(ROLES.map((r) => `holdfast-${r}`).sort());
    expect(resources(app.replica, 'AWS::IAM::Role')).toEqual([]);
  });

  it('gives nobody s3:BypassGovernanceRetention, s3:DeleteObject, or s3 rights on "*"', () => {
    for (const template of [app.archive, app.replica]) {
      for (const statement of allIdentityStatements(template)) {
        expect(grants(statement, 's3:BypassGovernanceRetention')).toBe(false);
        expect(grants(statement, 's3:DeleteObject')).toBe(false);
        if (list(statement.Action).some((a) => a.startsWith('s3:'))) {
          expect(list(statement.Resource)).not.toContain('*');
        }
        for (const action of list(statement.Action)) expect(action).not.toMatch(/\*/);
      }
    }
  });

  it('lets ingest, archiver and media-fetcher put objects (with retention) in the primary buckets only, and read', () => {
    for (const name of ['ingest', 'archiver', 'media-fetcher']) {
      expect(allowedOn(name, 's3:PutObject'), name).toEqual(objectsIn(app.config.region));
      expect(allowedOn(name, 's3:PutObjectRetention'), name).toEqual(objectsIn(app.config.region));
      expect(allowedOn(name, 's3:GetObject'), name).toEqual([
        ...objectsIn(app.config.region),
        ...objectsIn(app.config.replicaRegion),
      ]);
      // The bucket preflight needs every bucket setting it checks.
      for (const action of [
        's3:GetBucketObjectLockConfiguration',
        's3:GetBucketPublicAccessBlock',
        's3:GetEncryptionConfiguration',
        's3:GetReplicationConfiguration',
      ]) {
        expect(allowedOn(name, action).length, `${name} ${action}`).toBe(2 * DEFAULT_RECORD_CLASSES.length);
      }
    }
  });

  it('lets the sender read archived bytes and send through SES, but not write the archive', () => {
    expect(allowedOn('sender', 's3:GetObject')).toHaveLength(2 * DEFAULT_RECORD_CLASSES.length);
    expect(allowedOn('sender', 's3:PutObject')).toEqual([]);
    expect(allowedOn('sender', 's3:PutObjectRetention')).toEqual([]);
    expect(allowedOn('sender', 'ses:SendRawEmail')).toEqual([
      `arn:aws:ses:${app.config.region}:${app.config.account}:identity/*`,
      `arn:aws:ses:${app.config.region}:${app.config.account}:configuration-set/*`,
    ]);
  });

  it('allows legal holds only to the legal-hold role', () => {
    for (const name of ROLES) {
      const expected =
        name === 'legal-hold'
          ? [...objectsIn(app.config.region), ...objectsIn(app.config.replicaRegion)]
          : [];
      expect(allowedOn(name, 's3:PutObjectLegalHold'), name).toEqual(expected);
    }
  });

  it('allows deleting versions only to the disposal role, which cannot add delete markers or write', () => {
    for (const name of ROLES) {
      const expected =
        name === 'disposal' ? [...objectsIn(app.config.region), ...objectsIn(app.config.replicaRegion)] : [];
      expect(allowedOn(name, 's3:DeleteObjectVersion'), name).toEqual(expected);
    }
    for (const action of [
      's3:DeleteObject',
      's3:PutObject',
      's3:PutObjectRetention',
      's3:PutObjectLegalHold',
    ]) {
      expect(allowedOn('disposal', action), action).toEqual([]);
    }
    // S3 itself refuses DeleteObjectVersion on a version under COMPLIANCE retention; the role cannot
    // shorten retention either, and no role may bypass it (asserted above).
    expect(allowedOn('disposal', 's3:GetObjectRetention')).toHaveLength(2 * DEFAULT_RECORD_CLASSES.length);
  });

  it('trusts EKS Pod Identity (this account and cluster) for services, and people with MFA for operator duties', () => {
    const trust = (name: string) =>
      only(
        resources(app.archive, 'AWS::IAM::Role').filter(
          ([, r]) => r.Properties.RoleName === `holdfast-${name}`,
        ),
        name,
      )[1].Properties.AssumeRolePolicyDocument.Statement;
    for (const name of ['ingest', 'archiver', 'sender', 'media-fetcher']) {
      expect(trust(name), name).toEqual([
        {
          Effect: 'Allow',
          Action: ['sts:AssumeRole', 'sts:TagSession'],
          Principal: { Service: 'pods.eks.amazonaws.com' },
          Condition: {
            StringEquals: { 'aws:SourceAccount': app.config.account },
            ArnEquals: {
              'aws:SourceArn': `arn:aws:eks:${app.config.region}:${app.config.account}:cluster/prod`,
            },
          },
        },
      ]);
    }
    for (const name of ['legal-hold', 'disposal']) {
      expect(trust(name), name).toEqual([
        expect.objectContaining({
          Effect: 'Allow',
          Action: 'sts:AssumeRole',
          Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } },
        }),
      ]);
    }
  });

  it('associates each service role with its Kubernetes service account when an EKS cluster is named', () => {
    for (const name of ['ingest', 'archiver', 'sender', 'media-fetcher']) {
      app.archive.hasResourceProperties('AWS::EKS::PodIdentityAssociation', {
        ClusterName: 'prod',
        Namespace: 'holdfast',
        ServiceAccount: `holdfast-${name}`,
        RoleArn: { 'Fn::GetAtt': [roleId(app.archive, `holdfast-${name}`), 'Arn'] },
      });
    }
  });
});

describe('outputs', () => {
  it('outputs every bucket name (primary and replica), every role ARN and the keys', () => {
    const outputs = app.archive.toJSON().Outputs as Record<string, { Value: unknown }>;
    const replicaOutputs = app.replica.toJSON().Outputs as Record<string, { Value: unknown }>;
    for (const c of DEFAULT_RECORD_CLASSES) {
      const id = c.name.replace(/(^|-)([a-z])/g, (_m, _d, ch: string) => ch.toUpperCase());
      expect(outputs[`${id}BucketName`]?.Value).toBe(recordBucketName(app.config, c.name, app.config.region));
      expect(replicaOutputs[`${id}ReplicaBucketName`]?.Value).toBe(
        recordBucketName(app.config, c.name, app.config.replicaRegion),
      );
    }
    for (const [output, role] of [
      ['IngestRoleArn', 'ingest'],
      ['ArchiverRoleArn', 'archiver'],
      ['SenderRoleArn', 'sender'],
      ['MediaFetcherRoleArn', 'media-fetcher'],
      ['LegalHoldRoleArn', 'legal-hold'],
      ['DisposalRoleArn', 'disposal'],
      ['ReplicationRoleArn', 'replication'],
    ] as const) {
      expect(outputs[output]?.Value, output).toEqual({
        'Fn::GetAtt': [roleId(app.archive, `holdfast-${role}`), 'Arn'],
      });
    }
    expect(outputs.ArchiveKeyArn).toBeDefined();
    expect(outputs.AccessLogBucketName).toBeDefined();
    expect(replicaOutputs.ReplicaKeyArn).toBeDefined();
  });
});
