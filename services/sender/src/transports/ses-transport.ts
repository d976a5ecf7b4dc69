import { SESv2Client, SESv2ServiceException, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { PermanentSendError, SendError, TransportConfigError } from '../errors.ts';
import { noAnswer, parseRetryAfter } from './provider-failure.ts';
import type { EmailTransport, OutboundEmail, SendResult } from './transport.ts';

export interface SesTransportOptions {
  region: string;
  /** Override the SES endpoint (an SES-compatible server, or a test server on loopback). */
  endpoint?: string;
  /** SES configuration set, for event publishing to SNS. */
  configurationSet?: string;
  /** @defaultValue the AWS SDK's default credential chain */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * How long one SendEmail call (connecting included) may take before it counts as a timeout.
   * @defaultValue 15000
   */
  timeoutMs?: number;
}

/** SES rejections of the message itself, which retrying cannot fix. */
const PERMANENT_SES_ERRORS = new Set(['BadRequestException', 'MessageRejected']);

/**
 * SES refused because of the account or its configuration, not the message: a missing
 * configuration set (`NotFoundException`), an unverified MAIL FROM domain, a suspended account.
 * Like refused credentials these are retried: an operator fixes them, and meanwhile no email may
 * be dead-lettered for them.
 */
const ACCOUNT_SES_ERRORS = new Set([
  'NotFoundException',
  'MailFromDomainNotVerifiedException',
  'AccountSuspendedException',
]);

/** SES did not take the message now, but will later: sending rate or quota, or sending paused. */
const THROTTLING_SES_ERRORS = new Set([
  'TooManyRequestsException',
  'LimitExceededException',
  'SendingPausedException',
]);

/** Amazon SES v2 SendEmail with raw content: SES sends our bytes unchanged, to the envelope recipients. */
export class SesTransport implements EmailTransport {
  readonly name = 'ses';
  readonly #client: SESv2Client;
  readonly #configurationSet: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: SesTransportOptions) {
    const timeoutMs = options.timeoutMs ?? 15_000;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
      throw new TransportConfigError('ses', 'timeoutMs to be a positive integer');
    }
    this.#timeoutMs = timeoutMs;
    this.#client = new SESv2Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // Never retried inside the SDK: a retried SendEmail after a timeout is a second email. The
      // sender retries, knowing whether the earlier attempt may have gone out.
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: timeoutMs,
        requestTimeout: timeoutMs,
        throwOnRequestTimeout: true,
      },
    });
    this.#configurationSet = options.configurationSet;
  }

  async send(email: OutboundEmail): Promise<SendResult> {
    let messageId: string | undefined;
    try {
      const result = await this.#client.send(
        new SendEmailCommand({
          FromEmailAddress: email.from,
          Destination: { ToAddresses: [...email.to] },
          Content: { Raw: { Data: email.raw } },
          ConfigurationSetName: this.#configurationSet,
          EmailTags: [{ Name: 'holdfast-event-id', Value: email.eventId }],
        }),
      );
      messageId = result.MessageId;
    } catch (error) {
      throw sesFailure(error, this.#timeoutMs);
    }
    if (!messageId) {
      throw new SendError('ses', 'answered without a MessageId; the message may have been accepted', {
        retryable: true,
        reachedProvider: 'unknown',
      });
    }
    return { providerMessageId: messageId };
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}

/**
 * SES answered with an error, so it did not accept the message, unless it was a server fault
 * (5xx), after which it may have. Rejections of the message are permanent; throttling, and
 * credential, permission, account or configuration problems (a misconfiguration must not
 * dead-letter every email), are retried.
 */
function sesFailure(error: unknown, timeoutMs: number): SendError {
  if (error instanceof SESv2ServiceException) {
    const status = error.$metadata?.httpStatusCode;
    const name = error.name;
    const base = { providerCode: name, ...(status === undefined ? {} : { status }) };
    const headers = (error as { $response?: { headers?: Record<string, string | undefined> } }).$response
      ?.headers;
    const retryAfterMs = parseRetryAfter(headers?.['retry-after'] ?? headers?.['Retry-After']);
    const withRetryAfter = retryAfterMs === undefined ? {} : { retryAfterMs };
    if (PERMANENT_SES_ERRORS.has(name)) return new PermanentSendError('ses', name, error.message, status);
    if (ACCOUNT_SES_ERRORS.has(name)) {
      return new SendError(
        'ses',
        `refused the request (check the SES account and its setup): ${name}: ${error.message}`,
        {
          retryable: true,
          reachedProvider: 'no',
          ...base,
          cause: error,
        },
      );
    }
    if (THROTTLING_SES_ERRORS.has(name) || status === 429) {
      return new SendError('ses', `throttled: ${name}: ${error.message}`, {
        retryable: true,
        reachedProvider: 'no',
        ...base,
        ...withRetryAfter,
        cause: error,
      });
    }
    if (error.$fault === 'server' || status === undefined || status >= 500) {
      return new SendError(
        'ses',
        `${name}; the message may or may not have been accepted: ${error.message}`,
        {
          retryable: true,
          reachedProvider: 'unknown',
          ...base,
          ...withRetryAfter,
          cause: error,
        },
      );
    }
    return new SendError(
      'ses',
      `refused the request (check credentials and permissions): ${name}: ${error.message}`,
      {
        retryable: true,
        reachedProvider: 'no',
        ...base,
        cause: error,
      },
    );
  }
  // No credentials could be found: nothing was signed, nothing was sent.
  if (error instanceof Error && error.name === 'CredentialsProviderError') {
    return new SendError('ses', `no AWS credentials: ${error.message}`, {
      retryable: true,
      reachedProvider: 'no',
      cause: error,
    });
  }
  return noAnswer('ses', error, timeoutMs);
}
