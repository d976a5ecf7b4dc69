import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { type HoldfastInfraConfig, recordBucketName, roleArn } from './config.ts';
import { defaultRetentionDays, type RecordClass } from './record-classes.ts';

export interface ArchiveBucketProps {
  config: HoldfastInfraConfig;
  recordClass: RecordClass;
  region: string;
  encryptionKey: kms.IKey;
  accessLogs: s3.IBucket;
}

/**
 * One record class's WORM bucket: Object Lock with a COMPLIANCE default retention taken from the
 * services' retention policy, versioning, all public access blocked, SSE-KMS with the Region's
 * archive key, TLS only, server access logs, and a transition to Glacier Deep Archive (Object Lock
 * retention is per version and survives storage class transitions; there is deliberately no
 * expiration — disposal is an explicit, audited act). The bucket policy makes the IAM rules hold even
 * against a broader policy attached later: no governance bypass, legal holds only by the legal-hold
 * role, version deletion only by the disposal role (and S3 still refuses it while a version is
 * retained), and no delete markers at all.
 */
export class ArchiveBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly bucketName: string;
  readonly defaultRetentionDays: number;

  constructor(scope: Construct, id: string, props: ArchiveBucketProps) {
    super(scope, id);
    const { config, recordClass, region } = props;
    this.bucketName = recordBucketName(config, recordClass.name, region);
    this.defaultRetentionDays = defaultRetentionDays(config.policy, recordClass);
    const deepArchiveAfter = Duration.days(recordClass.deepArchiveAfterDays ?? config.deepArchiveAfterDays);

    this.bucket = new s3.Bucket(this, 'Bucket', {
      bucketName: this.bucketName,
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(this.defaultRetentionDays)),
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      serverAccessLogsBucket: props.accessLogs,
      serverAccessLogsPrefix: `${recordClass.name}/`,
      lifecycleRules: [
        {
          id: 'deep-archive',
          enabled: true,
          transitions: [{ storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: deepArchiveAfter }],
          noncurrentVersionTransitions: [
            { storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: deepArchiveAfter },
          ],
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const objects = this.bucket.arnForObjects('*');
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyGovernanceBypass',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:BypassGovernanceRetention'],
        resources: [objects],
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyLegalHoldsExceptLegalHoldRole',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObjectLegalHold'],
        resources: [objects],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': roleArn(config, 'legal-hold') } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyVersionDeletionExceptDisposalRole',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:DeleteObjectVersion'],
        resources: [objects],
        conditions: { ArnNotEquals: { 'aws:PrincipalArn': roleArn(config, 'disposal') } },
      }),
    );
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyDeleteMarkers',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:DeleteObject'],
        resources: [objects],
      }),
    );
  }
}
