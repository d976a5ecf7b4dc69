import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConfigError } from '@holdfast/core';
import { secretsEqual } from './constant-time.ts';
import { PayloadInvalidError, SignatureInvalidError, SignatureMissingError } from './errors.ts';

export interface WhatsAppSignatureInput {
  /** The Meta app secret the webhook is signed with. */
  appSecret: string;
  /** The `X-Hub-Signature-256` header: `sha256=<hex>`. */
  signatureHeader: string | undefined;
  /** The request body exactly as received: re-serialised JSON would not match the signature. */
  rawBody: Uint8Array | string;
}

const SIGNATURE_HEADER = /^sha256=([0-9a-f]{64})$/i;

/** Throws SignatureMissingError / SignatureInvalidError unless the header is the HMAC-SHA256 of the raw body under the app secret. */
export function verifyWhatsAppSignature({
  appSecret,
  signatureHeader,
  rawBody,
}: WhatsAppSignatureInput): void {
  if (!appSecret) throw new ConfigError('appSecret', 'the WhatsApp app secret must be a non-empty string');
  if (!signatureHeader) throw new SignatureMissingError('whatsapp', 'no X-Hub-Signature-256 header');
  const match = SIGNATURE_HEADER.exec(signatureHeader.trim());
  if (!match) {
    throw new SignatureInvalidError(
      'whatsapp',
      'X-Hub-Signature-256 is not of the form sha256=<64 hex digits>',
    );
  }
  const given = Buffer.from(match[1]!, 'hex');
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  // Both are 32 bytes once the header matched the pattern; the check keeps timingSafeEqual from throwing.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SignatureInvalidError('whatsapp', 'X-Hub-Signature-256 does not match the request body');
  }
}

export interface WhatsAppHandshakeInput {
  /** `hub.mode` */
  mode: string | undefined;
  /** `hub.verify_token` */
  verifyToken: string | undefined;
  /** `hub.challenge` */
  challenge: string | undefined;
  /** The verify token configured in the Meta app dashboard. */
  expectedToken: string;
}

/**
 * The webhook verification request Meta sends when the callback URL is configured
 * (`GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`). Returns the challenge to echo
 * back as the response body; throws SignatureInvalidError for a wrong mode or token.
 */
export function verifyWhatsAppHandshake({
  mode,
  verifyToken,
  challenge,
  expectedToken,
}: WhatsAppHandshakeInput): string {
  if (!expectedToken) {
    throw new ConfigError('expectedToken', 'the WhatsApp verify token must be a non-empty string');
  }
  if (mode !== 'subscribe') throw new SignatureInvalidError('whatsapp', 'hub.mode must be "subscribe"');
  if (!verifyToken || !secretsEqual(verifyToken, expectedToken)) {
    throw new SignatureInvalidError(
      'whatsapp',
      'hub.verify_token does not match the configured verify token',
    );
  }
  // Only a verified caller gets here; the challenge is echoed as text, so keep it short and plain.
  if (!challenge || !/^[\w.-]{1,256}$/.test(challenge)) {
    throw new PayloadInvalidError('WhatsApp verification request', [
      { path: 'hub.challenge', message: 'is required: 1-256 letters, digits, "_", "." or "-"' },
    ]);
  }
  return challenge;
}
