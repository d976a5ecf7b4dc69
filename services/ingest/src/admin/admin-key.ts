import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * `HOLDFAST_ADMIN_API_KEY`, checked against a request's `Authorization`: `Bearer <key>` for
 * tools, or HTTP Basic with the key as the password (any user name) so a browser can open the
 * dashboard. Compared as SHA-256 digests with timingSafeEqual: equal lengths whatever was sent,
 * and the time says nothing about how much of the key matched. The key itself is not kept.
 */
export class AdminKey {
  readonly #digest: Buffer;

  constructor(key: string) {
    this.#digest = digest(key);
  }

  /** True when `authorization` carries the key. */
  accepts(authorization: string | undefined): boolean {
    const presented = presentedKey(authorization ?? '');
    // A missing key is still compared, so a request without one takes as long as a wrong one.
    return timingSafeEqual(digest(presented ?? ''), this.#digest) && presented !== undefined;
  }
}

function presentedKey(authorization: string): string | undefined {
  const bearer = /^Bearer +(\S+) *$/i.exec(authorization);
  if (bearer) return bearer[1];
  const basic = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(authorization);
  if (!basic) return undefined;
  const credentials = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  return colon === -1 ? undefined : credentials.slice(colon + 1);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
