import { createPublicKey, type KeyObject, verify, X509Certificate } from 'node:crypto';
import { ConfigError } from '@holdfast/core';
import {
  MessageExpiredError,
  PayloadInvalidError,
  SignatureInvalidError,
  SignatureMissingError,
  TopicNotAllowedError,
} from './errors.ts';
import type { CertificateSource } from './sns-certificates.ts';
import { parseSnsMessage, type SnsMessage, snsStringToSign } from './sns-message.ts';
import { assertSnsCertificateUrl } from './sns-urls.ts';

export interface SnsVerifyOptions {
  /** Where signing certificates come from: `httpsCertificateSource()` in production. */
  certificates: CertificateSource;
  /**
   * Refuse messages whose Timestamp is older than this: a captured message cannot be replayed
   * later. SNS keeps a message's Timestamp across delivery retries (an HTTP delivery policy may
   * retry for up to an hour), so this must not be shorter than the retry window.
   * @defaultValue 3_600_000 (one hour)
   */
  maxAgeMs?: number;
  /**
   * How far in the future a Timestamp may lie before it is refused (clock difference).
   * @defaultValue 300_000 (five minutes)
   */
  maxClockSkewMs?: number;
  /**
   * The only topics whose messages are accepted; unset accepts any topic whose message verifies,
   * i.e. any AWS account's. A webhook must always pass its own topics.
   * @defaultValue undefined
   */
  allowedTopicArns?: readonly string[];
  /** @defaultValue () => new Date() */
  now?: () => Date;
}

const SIGNATURE_ALGORITHMS: Record<string, 'sha1' | 'sha256'> = { '1': 'sha1', '2': 'sha256' };
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * SubscribeURLs of confirmations verified here, with when they stop counting: confirmSubscription
 * requests only these, whichever object the caller hands it. Bounded, so floods cannot grow it.
 */
const verifiedSubscribeUrls = new Map<string, number>();
const MAX_VERIFIED_SUBSCRIBE_URLS = 256;
const SUBSCRIBE_URL_VALID_MS = 3_600_000;

function rememberSubscribeUrl(url: string): void {
  verifiedSubscribeUrls.delete(url);
  if (verifiedSubscribeUrls.size >= MAX_VERIFIED_SUBSCRIBE_URLS) {
    verifiedSubscribeUrls.delete(verifiedSubscribeUrls.keys().next().value!);
  }
  // Process time, not the message's (or an injected) clock: this is about how long we remember.
  verifiedSubscribeUrls.set(url, Date.now() + SUBSCRIBE_URL_VALID_MS);
}

/** Whether `url` is the SubscribeURL of a SubscriptionConfirmation verifySnsMessage accepted within the last hour. */
export function isVerifiedSubscribeUrl(url: string): boolean {
  const until = verifiedSubscribeUrls.get(url);
  return until !== undefined && Date.now() <= until;
}

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0) {
    throw new ConfigError(name, 'must be a non-negative number of milliseconds');
  }
  return v;
}

function signingKey(pem: string, now: Date): KeyObject {
  let key: KeyObject;
  try {
    if (pem.includes('-----BEGIN CERTIFICATE-----')) {
      const certificate = new X509Certificate(pem);
      if (now < certificate.validFromDate || now > certificate.validToDate) {
        throw new SignatureInvalidError(
          'sns',
          `the signing certificate is valid ${certificate.validFrom} to ${certificate.validTo}, not now`,
        );
      }
      key = certificate.publicKey;
    } else {
      key = createPublicKey(pem);
    }
  } catch (cause) {
    if (cause instanceof SignatureInvalidError) throw cause;
    throw new SignatureInvalidError('sns', 'the signing certificate is not a PEM certificate or public key', {
      cause,
    });
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new SignatureInvalidError('sns', 'the signing key is not an RSA key');
  }
  return key;
}

/**
 * Verify an SNS HTTP(S) delivery as AWS documents it, cheapest refusals first: shape, signature
 * version, topic allowlist, age, certificate URL (checked before any fetch), then the RSA
 * signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) over the string to sign.
 *
 * Returns the parsed message, frozen. Throws SignatureMissingError, SignatureInvalidError,
 * MessageExpiredError, TopicNotAllowedError, CertificateUrlRejectedError, CertificateFetchError
 * or PayloadInvalidError.
 */
export async function verifySnsMessage(body: unknown, options: SnsVerifyOptions): Promise<SnsMessage> {
  const maxAgeMs = nonNegative('maxAgeMs', options.maxAgeMs, 3_600_000);
  const maxClockSkewMs = nonNegative('maxClockSkewMs', options.maxClockSkewMs, 300_000);
  const now = options.now?.() ?? new Date();

  let message: SnsMessage;
  try {
    message = parseSnsMessage(body);
  } catch (error) {
    // Unsigned is an authentication failure (401), not a malformed payload.
    if (error instanceof PayloadInvalidError && error.issues.some((i) => i.path === 'Signature')) {
      throw new SignatureMissingError('sns', 'the message has no Signature');
    }
    throw error;
  }
  const algorithm = SIGNATURE_ALGORITHMS[message.SignatureVersion];
  if (!algorithm) {
    throw new SignatureInvalidError(
      'sns',
      `SignatureVersion ${JSON.stringify(message.SignatureVersion)} is not 1 or 2`,
    );
  }
  if (options.allowedTopicArns && !options.allowedTopicArns.includes(message.TopicArn)) {
    throw new TopicNotAllowedError(message.TopicArn);
  }
  const age = now.getTime() - Date.parse(message.Timestamp);
  if (age > maxAgeMs) throw new MessageExpiredError(message.Timestamp, `is older than ${maxAgeMs} ms`);
  if (-age > maxClockSkewMs) throw new MessageExpiredError(message.Timestamp, 'is in the future');

  assertSnsCertificateUrl(message.SigningCertURL);
  const key = signingKey(await options.certificates.get(message.SigningCertURL), now);
  if (!BASE64.test(message.Signature)) throw new SignatureInvalidError('sns', 'Signature is not base64');
  let valid: boolean;
  try {
    valid = verify(
      algorithm,
      Buffer.from(snsStringToSign(message), 'utf8'),
      key,
      Buffer.from(message.Signature, 'base64'),
    );
  } catch {
    valid = false;
  }
  if (!valid) throw new SignatureInvalidError('sns', 'Signature does not match the message');

  if (message.Type === 'SubscriptionConfirmation') rememberSubscribeUrl(message.SubscribeURL);
  return Object.freeze(message);
}
