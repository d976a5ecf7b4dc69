export { acceptProviderEvents, toEnvelope } from './accept-provider-events.ts';
export { ApiKeys } from './api-keys.ts';
export * from './errors.ts';
export { type IngestHandle, type IngestOptions, start } from './ingest.ts';
export type { IngestDeps } from './ingest-deps.ts';
export { buildServer } from './server.ts';
