import { isIP } from 'node:net';
import { ConfigError } from '@holdfast/core';
import ipaddr from 'ipaddr.js';

const HOST_PATTERN = /^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/**
 * The hosts media may be fetched from (HOLDFAST_MEDIA_ALLOWED_HOSTS): exact names, or `*.example.com`
 * for any name below example.com (not example.com itself). Names compare case-insensitively and
 * without a trailing dot, as DNS does.
 */
export class HostAllowlist {
  readonly #exact: ReadonlySet<string>;
  readonly #suffixes: readonly string[];

  constructor(patterns: readonly string[]) {
    const exact = new Set<string>();
    const suffixes: string[] = [];
    for (const raw of patterns) {
      const pattern = normalizeHost(raw);
      if (!HOST_PATTERN.test(pattern) && isIP(pattern) === 0) {
        throw new ConfigError(
          'HOLDFAST_MEDIA_ALLOWED_HOSTS',
          `${JSON.stringify(raw)} is not a host name, an IP address or a *.domain pattern`,
        );
      }
      if (pattern.startsWith('*.')) suffixes.push(pattern.slice(1));
      else exact.add(pattern);
    }
    this.#exact = exact;
    this.#suffixes = Object.freeze(suffixes);
  }

  allows(host: string): boolean {
    const name = normalizeHost(host);
    return this.#exact.has(name) || this.#suffixes.some((suffix) => name.endsWith(suffix));
  }
}

/** Lowercase, no trailing dot; an IP literal in one canonical spelling, without URL brackets. */
export function normalizeHost(host: string): string {
  const lower = host.trim().toLowerCase().replace(/\.$/, '');
  const bare = lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
  return isIP(bare) === 0 ? bare : ipaddr.parse(bare).toString();
}
