/** The preflight's report shape (`checkStore`), shared by the S3 and local checks. */

/** The checks, in report order. */
export type StoreCheckName =
  | 'object-lock'
  | 'versioning'
  | 'default-retention'
  | 'public-access-block'
  | 'encryption'
  | 'replication';

/** `fail` makes the report fail; `warn` is reported and does not. */
export type StoreCheckStatus = 'pass' | 'fail' | 'warn';

export interface StoreCheck {
  name: StoreCheckName;
  status: StoreCheckStatus;
  /** What was found; for `fail`, also what is expected instead. */
  detail: string;
}

export interface StoreCheckReport {
  /** The store's description, e.g. `s3://bucket (http://127.0.0.1:9000)`. */
  store: string;
  /** `false` when any check failed. */
  ok: boolean;
  checks: StoreCheck[];
}

/** Builds a report: ok unless a check failed. */
export function storeCheckReport(store: string, checks: StoreCheck[]): StoreCheckReport {
  return { store, ok: checks.every((c) => c.status !== 'fail'), checks };
}
