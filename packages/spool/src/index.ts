export * from './errors.ts';
export {
  MAX_ID_BYTES as SPOOL_MAX_ID_BYTES,
  MAX_PAYLOAD_BYTES as SPOOL_MAX_PAYLOAD_BYTES,
} from './record-format.ts';
export { Spool } from './spool.ts';
export type { SpoolOptions } from './spool-options.ts';
export type { SpoolCorruption, SpoolOpenReport, SpoolRecord, SpoolStats } from './spool-types.ts';
