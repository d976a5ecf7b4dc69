import { X509Certificate } from 'node:crypto';
import { ConfigError } from '@holdfast/core';
import { CertificateFetchError } from './errors.ts';
import { assertSnsCertificateUrl } from './sns-urls.ts';

/** Where SNS signing certificates come from; injectable so tests and air-gapped setups can pin them. */
export interface CertificateSource {
  /** The PEM certificate (or PEM public key) published at an SNS SigningCertURL. */
  get(url: string): Promise<string>;
}

export interface HttpsCertificateSourceOptions {
  /**
   * Give up on a certificate request after this long.
   * @defaultValue 5000
   */
  timeoutMs?: number;
  /**
   * Refuse certificate responses larger than this many bytes (a PEM certificate is ~2 KB).
   * @defaultValue 65536
   */
  maxBytes?: number;
  /**
   * Certificates kept in memory; SNS uses a handful of URLs, rotated rarely.
   * @defaultValue 32
   */
  maxEntries?: number;
  /**
   * The fetch used for requests: a hook for proxies and for tests that answer on loopback.
   * It only ever sees URLs that passed the SNS host check.
   * @defaultValue globalThis.fetch
   */
  fetch?: typeof fetch;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new ConfigError(name, 'must be a positive integer');
  return v;
}

async function readCapped(response: Response, maxBytes: number, url: string): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (declared > maxBytes) throw new CertificateFetchError(url, `response is larger than ${maxBytes} bytes`);
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      await response.body.cancel().catch(() => {});
      throw new CertificateFetchError(url, `response is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Fetches signing certificates from SNS over HTTPS, refusing any URL that is not
 * `https://sns.<region>.amazonaws.com[.cn]/….pem` before a request is made, never following
 * redirects (they could leave the SNS host). Certificates are cached by URL; failures are not.
 */
export function httpsCertificateSource(options: HttpsCertificateSourceOptions = {}): CertificateSource {
  const timeoutMs = positiveInt('timeoutMs', options.timeoutMs, 5000);
  const maxBytes = positiveInt('maxBytes', options.maxBytes, 65_536);
  const maxEntries = positiveInt('maxEntries', options.maxEntries, 32);
  const fetchImpl = options.fetch ?? globalThis.fetch;
  // Promises, so concurrent messages signed with a new certificate share one request.
  const cache = new Map<string, Promise<string>>();

  async function download(url: string): Promise<string> {
    let response: Response;
    try {
      response = await fetchImpl(url, { redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
    } catch (cause) {
      throw new CertificateFetchError(url, (cause as Error)?.message ?? String(cause), { cause });
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => {});
      throw new CertificateFetchError(url, `HTTP ${response.status}`);
    }
    let pem: string;
    try {
      pem = await readCapped(response, maxBytes, url);
    } catch (cause) {
      if (cause instanceof CertificateFetchError) throw cause;
      throw new CertificateFetchError(url, (cause as Error)?.message ?? String(cause), { cause });
    }
    try {
      new X509Certificate(pem);
    } catch (cause) {
      throw new CertificateFetchError(url, 'response is not a PEM certificate', { cause });
    }
    return pem;
  }

  return Object.freeze({
    async get(url: string): Promise<string> {
      const checked = assertSnsCertificateUrl(url).href;
      let pending = cache.get(checked);
      if (!pending) {
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
        pending = download(checked);
        cache.set(checked, pending);
        const mine = pending;
        mine.catch(() => {
          if (cache.get(checked) === mine) cache.delete(checked);
        });
      }
      return pending;
    },
  });
}
