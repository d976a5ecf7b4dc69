import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { AccessLogBucket } from './access-log-bucket.ts';
import { ArchiveBucket } from './archive-bucket.ts';
import { ArchiveKey } from './archive-key.ts';
import { ArchiveRoles } from './archive-roles.ts';
import {
  bucketArn,
  FEATURE_FLAGS,
  type HoldfastInfraConfig,
  keyAliasArn,
  OPERATOR_ROLES,
  pascal,
  recordBucketName,
  SERVICE_ROLES,
  WRITER_ROLES,
} from './config.ts';

export interface ArchiveStackProps extends StackProps {
  config: HoldfastInfraConfig;
}

/**
 * The primary Region: the archive key, a WORM bucket per record class replicating (with delete
 * markers) to its Object Lock twin in the replica Region, access logs, and the IAM roles.
 */
export class HoldfastArchiveStack extends Stack {
  readonly buckets: Readonly<Record<string, ArchiveBucket>>;
  readonly roles: ArchiveRoles;

  constructor(scope: Construct, id: string, props: ArchiveStackProps) {
    const { config } = props;
    super(scope, id, { ...props, env: { account: config.account, region: config.region } });
    const region = config.region;
    for (const [flag, value] of Object.entries(FEATURE_FLAGS)) this.node.setContext(flag, value);

    const key = new ArchiveKey(this, 'ArchiveKey', {
      config,
      region,
      uses: [
        { sid: 'WritersUseThroughS3', roles: WRITER_ROLES, actions: ['kms:Decrypt', 'kms:GenerateDataKey'] },
        { sid: 'ReadersUseThroughS3', roles: ['sender'], actions: ['kms:Decrypt'] },
        { sid: 'ReplicationReadsSource', roles: ['replication'], actions: ['kms:Decrypt'] },
      ],
    });
    const roles = new ArchiveRoles(this, 'Roles', { config, primaryKeyArn: key.keyArn });
    this.roles = roles;
    const accessLogs = new AccessLogBucket(this, 'AccessLogs', { config, region });

    const buckets: Record<string, ArchiveBucket> = {};
    for (const recordClass of config.recordClasses) {
      const archive = new ArchiveBucket(this, pascal(recordClass.name), {
        config,
        recordClass,
        region,
        encryptionKey: key.key,
        accessLogs: accessLogs.bucket,
      });
      // L1: the replica lives in another stack and Region; it is named by ARN and its key by alias ARN.
      const cfnBucket = archive.bucket.node.defaultChild as s3.CfnBucket;
      cfnBucket.replicationConfiguration = {
        role: roles.replication.roleArn,
        rules: [
          {
            id: `replicate-to-${config.replicaRegion}`,
            status: 'Enabled',
            priority: 0,
            filter: { prefix: '' },
            deleteMarkerReplication: { status: 'Enabled' },
            sourceSelectionCriteria: { sseKmsEncryptedObjects: { status: 'Enabled' } },
            destination: {
              bucket: bucketArn(config, recordBucketName(config, recordClass.name, config.replicaRegion)),
              encryptionConfiguration: { replicaKmsKeyId: keyAliasArn(config, config.replicaRegion) },
            },
          },
        ],
      };
      archive.node.addDependency(roles.replication);
      buckets[recordClass.name] = archive;
      new CfnOutput(this, `${pascal(recordClass.name)}BucketName`, {
        description: `Object Lock COMPLIANCE archive for ${recordClass.name} (${archive.defaultRetentionDays} days default)`,
        value: archive.bucketName,
      });
    }
    this.buckets = Object.freeze(buckets);

    for (const role of [...SERVICE_ROLES, ...OPERATOR_ROLES]) {
      new CfnOutput(this, `${pascal(role)}RoleArn`, { value: roles.roles[role].roleArn });
    }
    new CfnOutput(this, 'ReplicationRoleArn', { value: roles.replication.roleArn });
    new CfnOutput(this, 'ArchiveKeyArn', { value: key.keyArn });
    new CfnOutput(this, 'AccessLogBucketName', { value: accessLogs.bucket.bucketName });

    if (config.eksClusterName) {
      // Binds each service account of infra/k8s to its role (EKS Pod Identity agent required).
      for (const service of SERVICE_ROLES) {
        new eks.CfnPodIdentityAssociation(this, `${pascal(service)}PodIdentity`, {
          clusterName: config.eksClusterName,
          namespace: config.kubernetesNamespace,
          serviceAccount: `holdfast-${service}`,
          roleArn: roles.roles[service].roleArn,
        });
      }
    }
  }
}
