import { InvalidStoreSpecError } from './errors.ts';
import { LocalWormStore } from './local-worm-store.ts';
import type { ObjectStore } from './object-store.ts';
import { S3WormStore } from './s3-worm-store.ts';

export interface OpenObjectStoreOptions {
  /**
   * Endpoint of an S3-compatible server (`HOLDFAST_S3_ENDPOINT`); only for `s3://` specs.
   * @defaultValue AWS S3
   */
  s3Endpoint?: string;
  /**
   * Region for `s3://` specs (`AWS_REGION`).
   * @defaultValue `AWS_REGION`, else `us-east-1` when an endpoint is given
   */
  region?: string;
  /**
   * Source of "now" for retention checks.
   * @defaultValue `() => new Date()`
   */
  clock?: () => Date;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** A parsed store spec. */
export type StoreSpec = { kind: 'local'; dir: string } | { kind: 's3'; bucket: string };

/** Parses `local:<dir>` or `s3://<bucket>`; anything else fails with InvalidStoreSpecError naming the value. */
export function parseStoreSpec(spec: string): StoreSpec {
  if (typeof spec !== 'string') throw new InvalidStoreSpecError(String(spec), 'not a string');
  if (spec.startsWith('local:')) {
    const dir = spec.slice('local:'.length);
    if (dir.trim() === '') throw new InvalidStoreSpecError(spec, 'the directory is missing');
    return { kind: 'local', dir };
  }
  if (spec.startsWith('s3://')) {
    const bucket = spec.slice('s3://'.length);
    if (bucket === '') throw new InvalidStoreSpecError(spec, 'the bucket name is missing');
    if (bucket.includes('/'))
      throw new InvalidStoreSpecError(spec, 'a key prefix after the bucket is not supported');
    if (!BUCKET_NAME.test(bucket))
      throw new InvalidStoreSpecError(spec, `"${bucket}" is not an S3 bucket name`);
    return { kind: 's3', bucket };
  }
  throw new InvalidStoreSpecError(spec, 'unknown scheme');
}

/**
 * Opens the store named by a spec such as `HOLDFAST_STORE`: `local:<dir>` (the embedded default)
 * or `s3://<bucket>`. Anything else fails with InvalidStoreSpecError naming the value.
 */
export async function openObjectStore(spec: string, opts: OpenObjectStoreOptions = {}): Promise<ObjectStore> {
  const parsed = parseStoreSpec(spec);
  const clock = opts.clock === undefined ? {} : { clock: opts.clock };
  if (parsed.kind === 'local') return LocalWormStore.open({ dir: parsed.dir, ...clock });
  return S3WormStore.open({
    bucket: parsed.bucket,
    ...(opts.s3Endpoint === undefined ? {} : { endpoint: opts.s3Endpoint }),
    ...(opts.region === undefined ? {} : { region: opts.region }),
    ...clock,
  });
}
