import type { HoldfastConfig, Logger } from '@holdfast/core';
import type { MediaClient } from '../media-client.ts';

/** What a provider fetch leaves behind: the bytes in a temp file, and what is known about them. */
export interface FetchedMedia {
  /** The temp file holding the bytes; the caller removes it. */
  path: string;
  size: number;
  /** Lowercase hex SHA-256, computed while the bytes arrived. */
  sha256: string;
  contentType: string;
  /** Where the bytes came from, without query strings or credentials (for the sidecar). */
  source: Record<string, string>;
  /** The hash the provider reported for the media, when it reported one (it matched). */
  providerSha256?: string;
}

export interface FetchContext {
  client: MediaClient;
  config: Readonly<HoldfastConfig>;
  /** Aborted when HOLDFAST_MEDIA_TIMEOUT_MS has passed since the job started downloading. */
  signal: AbortSignal;
  timeoutMs: number;
  maxBytes: number;
  /** Where to write the bytes (a file that does not exist yet). */
  path: string;
  log: Logger;
}

/** `type/subtype`, lowercased, of a Content-Type value; `undefined` when it is not one. */
export function mediaType(value: string | undefined): string | undefined {
  const match = /^\s*([\w.+-]+\/[\w.+-]+)\s*(;|$)/.exec(value ?? '');
  return match ? match[1]!.toLowerCase() : undefined;
}
