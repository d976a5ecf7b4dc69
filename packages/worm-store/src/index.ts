export * from './errors.ts';
export { getJson } from './get-json.ts';
export { guardObjectStore, isStoreOutage, type StoreCallGuard } from './guarded-object-store.ts';
export { LocalWormStore, type LocalWormStoreOptions } from './local-worm-store.ts';
export type {
  ObjectHead,
  ObjectListEntry,
  ObjectStore,
  ObjectVersionOptions,
  ObjectVersionSummary,
  PutObjectFileBody,
  PutObjectInput,
  PutObjectResult,
  RetentionMode,
} from './object-store.ts';
export {
  type OpenObjectStoreOptions,
  openObjectStore,
  parseStoreSpec,
  type StoreSpec,
} from './open-object-store.ts';
export { type PutOnceResult, putOnce } from './put-once.ts';
export { S3WormStore, type S3WormStoreOptions } from './s3-worm-store.ts';
export {
  type CheckStoreOptions,
  checkStore,
  type PreflightStoreOptions,
  preflightStore,
} from './store-check.ts';
export type { StoreCheck, StoreCheckName, StoreCheckReport, StoreCheckStatus } from './store-check-report.ts';
