// The media fetcher: downloads inbound media before the provider's URL expires and archives it.
export { AddressPolicy } from './address-policy.ts';
export { ARCHIVE_VERSION, type ArchivedMedia, archiveMedia } from './archive-media.ts';
export * from './errors.ts';
export { HostAllowlist } from './host-allowlist.ts';
export { MediaClient, type MediaClientOptions } from './media-client.ts';
export {
  type MediaFetcherHandle,
  type MediaFetcherOptions,
  type MediaJobResult,
  start,
} from './media-fetcher.ts';
export { type MediaJob, parseMediaJob } from './media-job.ts';
export { type Resolve, safeLookup } from './safe-lookup.ts';
export { redactUrl, UrlPolicy } from './url-policy.ts';
