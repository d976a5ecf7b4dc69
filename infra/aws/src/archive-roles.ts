import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { s3ServiceEndpoint } from './archive-key.ts';
import {
  type ArchiveRole,
  bucketArn,
  type HoldfastInfraConfig,
  keyAlias,
  OPERATOR_ROLES,
  recordBucketName,
  roleName,
  SERVICE_ROLES,
  WRITER_ROLES,
} from './config.ts';

/** Bucket-level reads every archive role needs (listing versions, checking the bucket is locked). */
export const BUCKET_READ_ACTIONS: readonly string[] = Object.freeze([
  's3:ListBucket',
  's3:ListBucketVersions',
  's3:GetBucketVersioning',
  's3:GetBucketObjectLockConfiguration',
  // The services' bucket preflight (holdfast store check) reads these and refuses to start without them.
  's3:GetBucketPublicAccessBlock',
  's3:GetEncryptionConfiguration',
  's3:GetReplicationConfiguration',
]);
/** Object reads (GET and HEAD of any version, its retention and legal hold). */
export const OBJECT_READ_ACTIONS: readonly string[] = Object.freeze([
  's3:GetObject',
  's3:GetObjectVersion',
  's3:GetObjectRetention',
  's3:GetObjectLegalHold',
]);
/**
 * Writes: a PutObject carrying Object Lock headers also needs s3:PutObjectRetention, which in
 * COMPLIANCE mode can only extend a retain-until date (contracts: "relationship + 7y").
 */
export const OBJECT_WRITE_ACTIONS: readonly string[] = Object.freeze([
  's3:PutObject',
  's3:PutObjectRetention',
]);

export interface ArchiveRolesProps {
  config: HoldfastInfraConfig;
  /** ARN of the primary Region's archive key (the replica key is matched by its alias). */
  primaryKeyArn: string;
}

/**
 * One IAM role per service and per operator duty, with least privilege, plus the S3 replication role.
 * Services are trusted through EKS Pod Identity; operator roles are assumed by people with MFA.
 * Nobody is granted s3:BypassGovernanceRetention, s3:DeleteObject (delete markers), or — except the
 * legal-hold and disposal roles — s3:PutObjectLegalHold and s3:DeleteObjectVersion.
 */
export class ArchiveRoles extends Construct {
  readonly roles: Readonly<Record<ArchiveRole, iam.Role>>;
  readonly replication: iam.Role;

  constructor(scope: Construct, id: string, props: ArchiveRolesProps) {
    super(scope, id);
    const { config, primaryKeyArn } = props;
    const bucketsIn = (region: string) =>
      config.recordClasses.map((c) => bucketArn(config, recordBucketName(config, c.name, region)));
    const primaryBuckets = bucketsIn(config.region);
    const replicaBuckets = bucketsIn(config.replicaRegion);
    const allBuckets = [...primaryBuckets, ...replicaBuckets];
    const objectsOf = (buckets: readonly string[]) => buckets.map((b) => `${b}/*`);
    const replicaKeys = `arn:${config.partition}:kms:${config.replicaRegion}:${config.account}:key/*`;
    const viaS3 = (region: string) => ({ 'kms:ViaService': s3ServiceEndpoint(config, region) });

    const readStatements = (sid: string, objectActions: readonly string[]) => [
      new iam.PolicyStatement({
        sid: `${sid}Buckets`,
        actions: [...BUCKET_READ_ACTIONS],
        resources: allBuckets,
      }),
      new iam.PolicyStatement({
        sid: `${sid}Objects`,
        actions: [...objectActions],
        resources: objectsOf(allBuckets),
      }),
    ];
    const decryptStatements = (writes: boolean) => [
      new iam.PolicyStatement({
        sid: 'UseArchiveKeyThroughS3',
        actions: writes ? ['kms:Decrypt', 'kms:GenerateDataKey'] : ['kms:Decrypt'],
        resources: [primaryKeyArn],
        conditions: { StringEquals: viaS3(config.region) },
      }),
      new iam.PolicyStatement({
        sid: 'ReadReplicasThroughS3',
        actions: ['kms:Decrypt'],
        resources: [replicaKeys],
        conditions: {
          StringEquals: viaS3(config.replicaRegion),
          'ForAnyValue:StringEquals': { 'kms:ResourceAliases': keyAlias(config) },
        },
      }),
    ];

    const documents: Record<ArchiveRole, iam.PolicyStatement[]> = {
      ingest: [],
      archiver: [],
      sender: [],
      'media-fetcher': [],
      'legal-hold': readStatements('ReadArchive', [...OBJECT_READ_ACTIONS, 's3:PutObjectLegalHold']),
      disposal: readStatements('ReadArchive', [...OBJECT_READ_ACTIONS, 's3:DeleteObjectVersion']),
    };
    for (const service of SERVICE_ROLES) {
      const writes = (WRITER_ROLES as readonly string[]).includes(service);
      documents[service].push(
        ...readStatements('ReadArchive', OBJECT_READ_ACTIONS),
        ...decryptStatements(writes),
      );
      if (writes) {
        documents[service].push(
          new iam.PolicyStatement({
            sid: 'WritePrimaryArchive',
            actions: [...OBJECT_WRITE_ACTIONS],
            resources: objectsOf(primaryBuckets),
          }),
        );
      }
    }
    documents.sender.push(
      new iam.PolicyStatement({
        sid: 'SendThroughSes',
        actions: ['ses:SendEmail', 'ses:SendRawEmail'],
        resources: [
          `arn:${config.partition}:ses:${config.region}:${config.account}:identity/*`,
          `arn:${config.partition}:ses:${config.region}:${config.account}:configuration-set/*`,
        ],
      }),
    );

    const podIdentity = new iam.SessionTagsPrincipal(
      new iam.ServicePrincipal('pods.eks.amazonaws.com'),
    ).withConditions({
      StringEquals: { 'aws:SourceAccount': config.account },
      ...(config.eksClusterName
        ? {
            ArnEquals: {
              'aws:SourceArn': `arn:${config.partition}:eks:${config.region}:${config.account}:cluster/${config.eksClusterName}`,
            },
          }
        : {}),
    });
    const person = new iam.AccountRootPrincipal().withConditions({
      Bool: { 'aws:MultiFactorAuthPresent': 'true' },
    });

    const roles = {} as Record<ArchiveRole, iam.Role>;
    for (const role of [...SERVICE_ROLES, ...OPERATOR_ROLES]) {
      const operator = (OPERATOR_ROLES as readonly string[]).includes(role);
      roles[role] = new iam.Role(this, role, {
        roleName: roleName(config, role),
        description: operator
          ? `Holdfast ${role} duty (people, with MFA)`
          : `Holdfast ${role} service (EKS Pod Identity)`,
        assumedBy: operator ? person : podIdentity,
        maxSessionDuration: Duration.hours(1),
        inlinePolicies: { archive: new iam.PolicyDocument({ statements: documents[role] }) },
      });
    }
    this.roles = Object.freeze(roles);

    this.replication = new iam.Role(this, 'replication', {
      roleName: roleName(config, 'replication'),
      description: 'S3 cross-Region replication of the Holdfast archive buckets',
      assumedBy: new iam.ServicePrincipal('s3.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': config.account },
      }),
      inlinePolicies: {
        replication: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'ReadSourceConfiguration',
              actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
              resources: primaryBuckets,
            }),
            new iam.PolicyStatement({
              sid: 'ReadSourceVersions',
              actions: [
                's3:GetObjectVersionForReplication',
                's3:GetObjectVersionAcl',
                's3:GetObjectVersionTagging',
                's3:GetObjectRetention',
                's3:GetObjectLegalHold',
              ],
              resources: objectsOf(primaryBuckets),
            }),
            new iam.PolicyStatement({
              sid: 'WriteReplicas',
              actions: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'],
              resources: objectsOf(replicaBuckets),
            }),
            new iam.PolicyStatement({
              sid: 'DecryptSource',
              actions: ['kms:Decrypt'],
              resources: [primaryKeyArn],
              conditions: { StringEquals: viaS3(config.region) },
            }),
            new iam.PolicyStatement({
              sid: 'EncryptReplicas',
              actions: ['kms:Encrypt', 'kms:GenerateDataKey'],
              resources: [replicaKeys],
              conditions: {
                StringEquals: viaS3(config.replicaRegion),
                'ForAnyValue:StringEquals': { 'kms:ResourceAliases': keyAlias(config) },
              },
            }),
          ],
        }),
      },
    });
  }
}
