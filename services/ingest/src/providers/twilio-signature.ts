import { ConfigError } from '@holdfast/core';
// The webhooks module alone: the package root loads the whole REST client (~100 ms, axios).
import { validateRequest } from 'twilio/lib/webhooks/webhooks.js';
import { SignatureInvalidError, SignatureMissingError } from './errors.ts';

/** Form parameters of a Twilio webhook as a form parser yields them (repeated keys as arrays). */
export type TwilioParams = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface TwilioSignatureInput {
  /** The account's auth token (the secret Twilio signs with). */
  authToken: string;
  /** The `X-Twilio-Signature` header. */
  signature: string | undefined;
  /**
   * The full public URL Twilio requested, query string included. Behind a proxy this is not the
   * URL the server sees: build it from the configured public base URL + path + query.
   */
  url: string;
  /** The POSTed form parameters (for a GET webhook, pass `{}`: the query is part of `url`). */
  params: TwilioParams;
}

/**
 * Throws SignatureMissingError / SignatureInvalidError unless `X-Twilio-Signature` is Twilio's HMAC-SHA1 of the URL and
 * the sorted parameters. Twilio's own `validateRequest` does the comparison in constant time and
 * tries the URL with and without the default port, as Twilio's signers differ on that.
 */
export function verifyTwilioSignature({ authToken, signature, url, params }: TwilioSignatureInput): void {
  if (!authToken) throw new ConfigError('authToken', 'the Twilio auth token must be a non-empty string');
  if (!URL.canParse(url)) {
    throw new ConfigError('url', 'must be the absolute public URL Twilio called (base URL + path + query)');
  }
  if (!signature) throw new SignatureMissingError('twilio', 'no X-Twilio-Signature header');
  const signed: Record<string, string | readonly string[]> = {};
  for (const [key, value] of Object.entries(params)) if (value !== undefined) signed[key] = value;
  if (!validateRequest(authToken, signature, url, signed)) {
    throw new SignatureInvalidError(
      'twilio',
      'X-Twilio-Signature does not match the URL and parameters (is the public base URL the one configured at Twilio?)',
    );
  }
}
