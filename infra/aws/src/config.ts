import { RetentionPolicy } from '@holdfast/core';
import { InfraConfigError } from './errors.ts';
import { DEFAULT_RECORD_CLASSES, defaultRetentionDays, type RecordClass } from './record-classes.ts';

/** Services that run in the cluster and get an IAM role each (names fixed by DESIGN.md). */
export const SERVICE_ROLES = Object.freeze(['ingest', 'archiver', 'sender', 'media-fetcher'] as const);
/** Services that write archive objects; the others only read. */
export const WRITER_ROLES = Object.freeze(['ingest', 'archiver', 'media-fetcher'] as const);
/** People (through `holdfast` CLI commands), not services: assumed with MFA. */
export const OPERATOR_ROLES = Object.freeze(['legal-hold', 'disposal'] as const);

export type ServiceRole = (typeof SERVICE_ROLES)[number];
export type OperatorRole = (typeof OPERATOR_ROLES)[number];
export type ArchiveRole = ServiceRole | OperatorRole;

/** Placeholders so `cdk synth` works with no AWS account or credentials; a deploy supplies real ones. */
export const PLACEHOLDER_ACCOUNT = '123456789012';
export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_REPLICA_REGION = 'us-west-2';

export interface HoldfastInfraConfig {
  account: string;
  /** Region of the primary buckets, the roles' home and the services. */
  region: string;
  /** Region of the Object Lock replica buckets; must differ from `region`. */
  replicaRegion: string;
  /** `aws`, `aws-us-gov` or `aws-cn`. @defaultValue `aws` */
  partition: string;
  /** First segment of every bucket, role and key alias name. @defaultValue `holdfast` */
  namePrefix: string;
  recordClasses: readonly RecordClass[];
  /** The retention policy the services use; bucket default retention is derived from it. */
  policy: RetentionPolicy;
  /** Days after which versions move to Glacier Deep Archive. @defaultValue 180 */
  deepArchiveAfterDays: number;
  /** Days server access logs are kept. @defaultValue 2557 (seven calendar years) */
  accessLogRetentionDays: number;
  /** If set, an EKS Pod Identity association is created for each service's service account. */
  eksClusterName: string | undefined;
  /** Namespace of the Kubernetes service accounts (`infra/k8s`). @defaultValue `holdfast` */
  kubernetesNamespace: string;
}

/**
 * CDK feature flags the stacks rely on, set on each stack so they hold in any app: server access log
 * delivery is granted by bucket policy (ACLs stay disabled on the log buckets).
 */
export const FEATURE_FLAGS: Readonly<Record<string, boolean>> = Object.freeze({
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
});

/** Reads one CDK context value (`-c key=value` or `cdk.json`); `app.node.tryGetContext` fits. */
export type ContextReader = (key: string) => unknown;

const BUCKET_NAME = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const NAME_SEGMENT = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const ACCOUNT = /^\d{12}$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d$/;

/**
 * Resolve the app's settings from CDK context, then the CLI's environment (`CDK_DEFAULT_ACCOUNT`,
 * `CDK_DEFAULT_REGION`), then placeholders. The retention policy is the file named by the
 * `retentionPolicy` context or `HOLDFAST_RETENTION_POLICY` — the same file the services read —
 * or the built-in defaults.
 */
export async function resolveConfig(
  context: ContextReader,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Readonly<HoldfastInfraConfig>> {
  const text = (key: string): string | undefined => {
    const value = context(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new InfraConfigError(key, `must be a string, got ${JSON.stringify(value)}`);
    }
    return String(value);
  };
  const days = (key: string, fallback: number): number => {
    const raw = text(key);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new InfraConfigError(key, `must be a whole number of days ≥ 1`);
    return n;
  };

  const policyPath = text('retentionPolicy') ?? (env.HOLDFAST_RETENTION_POLICY || undefined);
  const config: HoldfastInfraConfig = {
    account: text('account') ?? (env.CDK_DEFAULT_ACCOUNT || PLACEHOLDER_ACCOUNT),
    region: text('region') ?? (env.CDK_DEFAULT_REGION || DEFAULT_REGION),
    replicaRegion: text('replicaRegion') ?? DEFAULT_REPLICA_REGION,
    partition: text('partition') ?? 'aws',
    namePrefix: text('namePrefix') ?? 'holdfast',
    recordClasses: parseRecordClasses(context('recordClasses')),
    policy: policyPath ? await RetentionPolicy.load(policyPath) : RetentionPolicy.defaults(),
    deepArchiveAfterDays: days('deepArchiveAfterDays', 180),
    accessLogRetentionDays: days('accessLogRetentionDays', 2557),
    eksClusterName: text('eksClusterName'),
    kubernetesNamespace: text('kubernetesNamespace') ?? 'holdfast',
  };
  validate(config);
  return Object.freeze(config);
}

function parseRecordClasses(raw: unknown): readonly RecordClass[] {
  if (raw === undefined || raw === null || raw === '') return DEFAULT_RECORD_CLASSES;
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      throw new InfraConfigError('recordClasses', 'must be JSON: {"<class>": ["<category>", …], …}');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InfraConfigError('recordClasses', 'must map each class name to its retention categories');
  }
  const classes: RecordClass[] = [];
  for (const [name, spec] of Object.entries(value)) {
    // Either a list of categories or { categories, deepArchiveAfterDays }.
    const categories = Array.isArray(spec) ? spec : (spec as { categories?: unknown })?.categories;
    const after = Array.isArray(spec)
      ? undefined
      : (spec as { deepArchiveAfterDays?: unknown })?.deepArchiveAfterDays;
    if (!Array.isArray(categories) || !categories.every((c) => typeof c === 'string')) {
      throw new InfraConfigError(`recordClasses.${name}`, 'must list retention categories (strings)');
    }
    if (after !== undefined && (!Number.isInteger(after) || (after as number) < 1)) {
      throw new InfraConfigError(`recordClasses.${name}.deepArchiveAfterDays`, 'must be a whole number ≥ 1');
    }
    classes.push({
      name,
      categories,
      ...(after === undefined ? {} : { deepArchiveAfterDays: after as number }),
    });
  }
  if (classes.length === 0) throw new InfraConfigError('recordClasses', 'needs at least one class');
  return Object.freeze(classes);
}

function validate(config: HoldfastInfraConfig): void {
  if (!ACCOUNT.test(config.account))
    throw new InfraConfigError('account', 'must be a 12-digit AWS account id');
  for (const key of ['region', 'replicaRegion'] as const) {
    if (!REGION.test(config[key])) throw new InfraConfigError(key, `"${config[key]}" is not an AWS Region`);
  }
  if (config.region === config.replicaRegion) {
    throw new InfraConfigError('replicaRegion', 'must differ from region (cross-Region replication)');
  }
  if (!NAME_SEGMENT.test(config.namePrefix)) {
    throw new InfraConfigError('namePrefix', 'must be lowercase letters, digits and hyphens');
  }
  for (const recordClass of config.recordClasses) {
    if (!NAME_SEGMENT.test(recordClass.name)) {
      throw new InfraConfigError(
        `recordClasses.${recordClass.name}`,
        'class names are lowercase letters, digits and hyphens',
      );
    }
    for (const region of [config.region, config.replicaRegion]) {
      const name = recordBucketName(config, recordClass.name, region);
      if (!BUCKET_NAME.test(name)) {
        throw new InfraConfigError(
          `recordClasses.${recordClass.name}`,
          `bucket name "${name}" is longer than 63 characters or invalid`,
        );
      }
    }
    // Fails on categories the policy does not know.
    defaultRetentionDays(config.policy, recordClass);
  }
}

/** `<prefix>-<class>-<account>-<region>`: globally unique and known to both stacks before deploy. */
export function recordBucketName(
  config: Pick<HoldfastInfraConfig, 'namePrefix' | 'account'>,
  recordClass: string,
  region: string,
): string {
  return `${config.namePrefix}-${recordClass}-${config.account}-${region}`;
}

export function accessLogBucketName(
  config: Pick<HoldfastInfraConfig, 'namePrefix' | 'account'>,
  region: string,
): string {
  return `${config.namePrefix}-access-logs-${config.account}-${region}`;
}

export function roleName(
  config: Pick<HoldfastInfraConfig, 'namePrefix'>,
  role: ArchiveRole | 'replication',
): string {
  return `${config.namePrefix}-${role}`;
}

/** Role ARNs are built from names, so key and bucket policies need no cross-stack reference. */
export function roleArn(
  config: Pick<HoldfastInfraConfig, 'namePrefix' | 'account' | 'partition'>,
  role: ArchiveRole | 'replication',
): string {
  return `arn:${config.partition}:iam::${config.account}:role/${roleName(config, role)}`;
}

export function bucketArn(config: Pick<HoldfastInfraConfig, 'partition'>, bucketName: string): string {
  return `arn:${config.partition}:s3:::${bucketName}`;
}

/** The same alias in both Regions; replication names the replica key by its alias ARN. */
export function keyAlias(config: Pick<HoldfastInfraConfig, 'namePrefix'>): string {
  return `alias/${config.namePrefix}-archive`;
}

export function keyAliasArn(
  config: Pick<HoldfastInfraConfig, 'namePrefix' | 'account' | 'partition'>,
  region: string,
): string {
  return `arn:${config.partition}:kms:${region}:${config.account}:${keyAlias(config)}`;
}

/** `audit-log` -> `AuditLog`, for CloudFormation logical ids and output names. */
export function pascal(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}
