import { loadConfig, RetentionPolicy } from '@holdfast/core';
import { type ObjectStore, openObjectStore } from '@holdfast/worm-store';

/** Open the store HOLDFAST_STORE names for one command, and close it after. */
export async function withStore<T>(fn: (store: ObjectStore) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const store = await openObjectStore(config.store, { s3Endpoint: config.s3Endpoint, region: config.region });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The retention policy in force (HOLDFAST_RETENTION_POLICY, else the built-in defaults). */
export async function loadPolicy(): Promise<RetentionPolicy> {
  return RetentionPolicy.fromConfig(loadConfig());
}
