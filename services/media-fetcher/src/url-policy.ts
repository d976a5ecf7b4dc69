import { isIP } from 'node:net';
import type { AddressPolicy } from './address-policy.ts';
import {
  MediaAddressRefusedError,
  MediaHostNotAllowedError,
  MediaNotHttpsError,
  MediaUrlInvalidError,
} from './errors.ts';
import { type HostAllowlist, normalizeHost } from './host-allowlist.ts';

/**
 * The rules every URL the fetcher requests must pass, the first one and every redirect alike:
 * https only, no credentials in the URL, an allowlisted host, and for an IP literal an allowed
 * address. Host names are checked again after DNS resolution (`safe-lookup.ts`).
 */
export class UrlPolicy {
  readonly hosts: HostAllowlist;
  readonly addresses: AddressPolicy;

  constructor(hosts: HostAllowlist, addresses: AddressPolicy) {
    this.hosts = hosts;
    this.addresses = addresses;
  }

  /** The parsed URL when it may be requested; a typed error naming the broken rule otherwise. */
  check(raw: string | URL, base?: URL): URL {
    let url: URL;
    try {
      url = new URL(raw, base);
    } catch {
      throw new MediaUrlInvalidError(redactUrl(String(raw)), 'it is not a URL');
    }
    if (url.protocol !== 'https:') throw new MediaNotHttpsError(redactUrl(url));
    if (url.username !== '' || url.password !== '') {
      throw new MediaUrlInvalidError(redactUrl(url), 'it carries credentials of its own');
    }
    const host = normalizeHost(url.hostname);
    if (!this.hosts.allows(host)) throw new MediaHostNotAllowedError(host);
    if (isIP(host) !== 0) {
      const refusal = this.addresses.refusal(host);
      if (refusal !== undefined) throw new MediaAddressRefusedError(host, host, refusal);
    }
    return url;
  }
}

/**
 * A URL as it may appear in logs, errors and sidecars: scheme, host and path. The query string
 * (a signed URL's signature, Meta's hash) and any user info are dropped.
 */
export function redactUrl(url: string | URL): string {
  try {
    const u = typeof url === 'string' ? new URL(url) : url;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}
