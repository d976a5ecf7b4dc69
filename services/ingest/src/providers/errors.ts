import { HoldfastError, type ValidationIssue } from '@holdfast/core';

export type ProviderName = 'twilio' | 'whatsapp' | 'sns';

/**
 * The request does not prove it came from the provider (missing, malformed or wrong signature,
 * wrong handshake token). Answer 401/403 and process nothing: an attacker must learn nothing
 * beyond "no".
 */
export class SignatureInvalidError extends HoldfastError {
  readonly provider: ProviderName;

  constructor(provider: ProviderName, reason: string, options?: ErrorOptions) {
    super('HOLDFAST_ERR_SIGNATURE_INVALID', `${provider} signature invalid: ${reason}`, options);
    this.provider = provider;
  }
}

/** The request carries no signature at all (answer 401): not signed by the provider, or a proxy stripped the header. */
export class SignatureMissingError extends HoldfastError {
  readonly provider: ProviderName;

  constructor(provider: ProviderName, what: string) {
    super('HOLDFAST_ERR_SIGNATURE_MISSING', `${provider} signature missing: ${what}`);
    this.provider = provider;
  }
}

/**
 * A verified request whose body is not what the provider documents. Answer 400: retrying the
 * same bytes cannot help, and the issues name the offending field or parameter.
 */
export class PayloadInvalidError extends HoldfastError {
  readonly issues: readonly ValidationIssue[];

  constructor(what: string, issues: readonly ValidationIssue[]) {
    const detail = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ');
    super('HOLDFAST_ERR_PAYLOAD_INVALID', `invalid ${what}: ${detail}`);
    this.issues = Object.freeze([...issues]);
  }
}

/**
 * An SNS message names a signing certificate URL that is not an SNS endpoint. Refused before any
 * request is made: fetching attacker-chosen URLs would be SSRF and would let anyone "sign".
 */
export class CertificateUrlRejectedError extends HoldfastError {
  readonly url: string;

  constructor(url: string, reason: string) {
    super(
      'HOLDFAST_ERR_CERTIFICATE_URL_REJECTED',
      `SigningCertURL ${JSON.stringify(url)} rejected: ${reason}`,
    );
    this.url = url;
  }
}

/** The SNS signing certificate could not be fetched or is not a certificate. Worth a retry (503). */
export class CertificateFetchError extends HoldfastError {
  readonly url: string;

  constructor(url: string, reason: string, options?: ErrorOptions) {
    super('HOLDFAST_ERR_CERTIFICATE_FETCH', `signing certificate ${url} unavailable: ${reason}`, options);
    this.url = url;
  }
}

/**
 * A correctly signed SNS message older than the accepted window (or dated in the future): a
 * replay of a captured message, refused like a bad signature.
 */
export class MessageExpiredError extends HoldfastError {
  readonly timestamp: string;

  constructor(timestamp: string, reason: string) {
    super('HOLDFAST_ERR_MESSAGE_EXPIRED', `SNS message timestamp ${timestamp} ${reason}`);
    this.timestamp = timestamp;
  }
}

/** The SNS message comes from a topic that is not in the configured allowlist. */
export class TopicNotAllowedError extends HoldfastError {
  readonly topicArn: string;

  constructor(topicArn: string) {
    super('HOLDFAST_ERR_TOPIC_NOT_ALLOWED', `SNS topic ${topicArn} is not in the allowed topic list`);
    this.topicArn = topicArn;
  }
}

/** A SubscribeURL that is not an SNS endpoint: never requested. */
export class SubscribeUrlRejectedError extends HoldfastError {
  readonly url: string;

  constructor(url: string, reason: string) {
    super('HOLDFAST_ERR_SUBSCRIBE_URL_REJECTED', `SubscribeURL ${JSON.stringify(url)} rejected: ${reason}`);
    this.url = url;
  }
}

/**
 * Confirming an SNS subscription failed (not verified first, SNS unreachable or refusing).
 * SNS re-sends the confirmation, so a 5xx lets it try again.
 */
export class SubscriptionConfirmError extends HoldfastError {
  constructor(reason: string, options?: ErrorOptions) {
    super('HOLDFAST_ERR_SUBSCRIPTION_CONFIRM', `SNS subscription not confirmed: ${reason}`, options);
  }
}
