import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { AccessLogBucket } from './access-log-bucket.ts';
import { ArchiveBucket } from './archive-bucket.ts';
import { ArchiveKey } from './archive-key.ts';
import { FEATURE_FLAGS, type HoldfastInfraConfig, pascal, SERVICE_ROLES } from './config.ts';

export interface ReplicaStackProps extends StackProps {
  config: HoldfastInfraConfig;
}

/**
 * The replica Region: an Object Lock bucket per record class (same default retention, same guards),
 * its own archive key and access log bucket. Deployed before the primary stack, whose replication
 * rules name these buckets and the key alias.
 */
export class HoldfastReplicaStack extends Stack {
  readonly buckets: Readonly<Record<string, ArchiveBucket>>;

  constructor(scope: Construct, id: string, props: ReplicaStackProps) {
    const { config } = props;
    super(scope, id, { ...props, env: { account: config.account, region: config.replicaRegion } });
    const region = config.replicaRegion;
    for (const [flag, value] of Object.entries(FEATURE_FLAGS)) this.node.setContext(flag, value);

    const key = new ArchiveKey(this, 'ArchiveKey', {
      config,
      region,
      uses: [
        {
          sid: 'ReplicationEncryptsReplicas',
          roles: ['replication'],
          actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
        },
        { sid: 'ServicesReadReplicas', roles: SERVICE_ROLES, actions: ['kms:Decrypt'] },
      ],
    });
    const accessLogs = new AccessLogBucket(this, 'AccessLogs', { config, region });

    const buckets: Record<string, ArchiveBucket> = {};
    for (const recordClass of config.recordClasses) {
      const archive = new ArchiveBucket(this, `${pascal(recordClass.name)}Replica`, {
        config,
        recordClass,
        region,
        encryptionKey: key.key,
        accessLogs: accessLogs.bucket,
      });
      buckets[recordClass.name] = archive;
      new CfnOutput(this, `${pascal(recordClass.name)}ReplicaBucketName`, {
        description: `Object Lock replica of the ${recordClass.name} archive (${region})`,
        value: archive.bucketName,
      });
    }
    this.buckets = Object.freeze(buckets);
    new CfnOutput(this, 'ReplicaKeyArn', { value: key.keyArn });
    new CfnOutput(this, 'ReplicaAccessLogBucketName', { value: accessLogs.bucket.bucketName });
  }
}
