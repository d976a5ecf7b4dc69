import { RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { type ArchiveRole, type HoldfastInfraConfig, keyAlias, roleArn } from './config.ts';

/** Key administration without any cryptographic use: the account can manage the key, not read with it. */
export const KEY_ADMIN_ACTIONS: readonly string[] = Object.freeze([
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
  'kms:RotateKeyOnDemand',
]);

export interface KeyUse {
  /** Statement id in the key policy. */
  sid: string;
  roles: readonly (ArchiveRole | 'replication')[];
  actions: readonly string[];
}

export interface ArchiveKeyProps {
  config: HoldfastInfraConfig;
  region: string;
  /** Who may use the key; every use is through S3 in this Region only. */
  uses: readonly KeyUse[];
}

export function s3ServiceEndpoint(config: Pick<HoldfastInfraConfig, 'partition'>, region: string): string {
  return `s3.${region}.${config.partition === 'aws-cn' ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

/**
 * The customer-managed key of one Region's archive buckets. Its policy is written out (L1) rather than
 * generated: `kms.Key` always gives the account root `kms:*`, which lets any IAM policy in the account
 * decrypt archives. Here the root may only administer the key; use is limited to the named roles,
 * matched by `aws:PrincipalArn` (so the key can be created before the roles exist and survives a role
 * being recreated), and only through S3 in this Region. Rotation is on.
 */
export class ArchiveKey extends Construct {
  readonly key: kms.IKey;
  readonly keyArn: string;

  constructor(scope: Construct, id: string, props: ArchiveKeyProps) {
    super(scope, id);
    const { config, region } = props;
    const root = `arn:${config.partition}:iam::${config.account}:root`;
    const statements: Record<string, unknown>[] = [
      {
        Sid: 'KeyAdministrationWithoutUse',
        Effect: 'Allow',
        Principal: { AWS: root },
        Action: [...KEY_ADMIN_ACTIONS],
        Resource: '*',
      },
      ...props.uses.map((use) => ({
        Sid: use.sid,
        Effect: 'Allow',
        Principal: { AWS: root },
        Action: [...use.actions],
        Resource: '*',
        Condition: {
          ArnEquals: { 'aws:PrincipalArn': use.roles.map((role) => roleArn(config, role)) },
          StringEquals: {
            'kms:ViaService': s3ServiceEndpoint(config, region),
            'kms:CallerAccount': config.account,
          },
        },
      })),
    ];
    const cfnKey = new kms.CfnKey(this, 'Key', {
      description: `Holdfast archive buckets in ${region} (SSE-KMS)`,
      enabled: true,
      enableKeyRotation: true,
      keySpec: 'SYMMETRIC_DEFAULT',
      keyUsage: 'ENCRYPT_DECRYPT',
      pendingWindowInDays: 30,
      keyPolicy: { Version: '2012-10-17', Statement: statements },
    });
    cfnKey.applyRemovalPolicy(RemovalPolicy.RETAIN);
    new kms.CfnAlias(this, 'Alias', { aliasName: keyAlias(config), targetKeyId: cfnKey.ref });
    this.key = kms.Key.fromCfnKey(cfnKey);
    this.keyArn = cfnKey.attrArn;
  }
}
