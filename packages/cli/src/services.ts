import type { HoldfastConfig, ServiceHandle } from '@holdfast/core';

type Start = (config: Readonly<HoldfastConfig>) => Promise<ServiceHandle>;

/**
 * Every service `holdfast run` and `holdfast dev` can start, by name. Loaded on demand so the
 * operator commands do not pay for importing every service and its SDKs.
 */
export const SERVICES: Readonly<Record<string, () => Promise<Start>>> = Object.freeze({
  archiver: async () => (await import('@holdfast/archiver')).start,
  sender: async () => (await import('@holdfast/sender')).start,
  ingest: async () => (await import('@holdfast/ingest')).start,
  'media-fetcher': async () => (await import('@holdfast/media-fetcher')).start,
});
