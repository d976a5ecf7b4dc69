import { createHash, timingSafeEqual } from 'node:crypto';
import { UnauthorizedError } from './errors.ts';

interface KeyEntry {
  project: string;
  digest: Buffer;
}

/**
 * `HOLDFAST_API_KEYS` = `<project>:<key>[,<project>:<key>…]`. Keys are compared as SHA-256
 * digests with timingSafeEqual, every entry every time, so timing says nothing about which
 * key (or how much of one) matched.
 */
export class ApiKeys {
  readonly #entries: readonly KeyEntry[];

  constructor(spec: string | undefined) {
    this.#entries = Object.freeze(
      (spec ?? '')
        .split(',')
        .filter(Boolean)
        .map((pair) => {
          const colon = pair.indexOf(':');
          return { project: pair.slice(0, colon), digest: digest(pair.slice(colon + 1)) };
        }),
    );
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The project the bearer key in `authorization` is bound to; throws UnauthorizedError otherwise. */
  authenticate(authorization: string | undefined): string {
    const match = /^Bearer ([^\s]+)$/i.exec(authorization ?? '');
    if (!match) throw new UnauthorizedError();
    const presented = digest(match[1]!);
    let project: string | undefined;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, presented) && project === undefined) project = entry.project;
    }
    if (project === undefined) throw new UnauthorizedError('the API key is not valid');
    return project;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
