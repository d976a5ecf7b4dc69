/**
 * Sign webhook requests the way Twilio and Meta do, for tests that post them (here and in the
 * HTTP tests). Twilio's own helper computes the signature, so the test exercises the real scheme.
 */
import { createHmac } from 'node:crypto';
import { getExpectedTwilioSignature } from 'twilio/lib/webhooks/webhooks.js';

export const TEST_TWILIO_AUTH_TOKEN = '9f2b7c4e1d0a3b6c8e5f7a9b1c3d5e7f';
export const TEST_WHATSAPP_APP_SECRET = 'holdfast-test-app-secret-3c9a71e2';
export const TEST_WHATSAPP_VERIFY_TOKEN = 'holdfast-test-verify-token-58d1';

/**
 * The `X-Twilio-Signature` for a POST of `params` to `url` (the full public URL, query included).
 * For a GET webhook pass `{}`: the query string is in `url`.
 */
export function signTwilioRequest(
  url: string,
  params: Readonly<Record<string, string | readonly string[]>>,
  authToken: string = TEST_TWILIO_AUTH_TOKEN,
): string {
  return getExpectedTwilioSignature(authToken, url, params as Record<string, string | string[]>);
}

/** The `X-Hub-Signature-256` header for a WhatsApp webhook body (sign the exact bytes you send). */
export function signWhatsAppBody(
  rawBody: string | Uint8Array,
  appSecret: string = TEST_WHATSAPP_APP_SECRET,
): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}

/** application/x-www-form-urlencoded body for Twilio params (what Twilio POSTs). */
export function twilioFormBody(params: Readonly<Record<string, string>>): string {
  return new URLSearchParams(params).toString();
}
