import { SESv2Client, SESv2ServiceException, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { PermanentSendError } from '../errors.ts';
import type { EmailTransport, OutboundEmail } from './transport.ts';

export interface SesTransportOptions {
  region: string;
  /** Override the SES endpoint (an SES-compatible server, or a test server on loopback). */
  endpoint?: string;
  /** SES configuration set, for event publishing to SNS. */
  configurationSet?: string;
  /** @defaultValue the AWS SDK's default credential chain */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** SES rejections that retrying cannot fix. Throttling, pauses and 5xx are retried. */
const PERMANENT_SES_ERRORS = new Set([
  'BadRequestException',
  'MessageRejected',
  'MailFromDomainNotVerifiedException',
  'NotFoundException',
  'AccountSuspendedException',
]);

/** Amazon SES v2 SendEmail with raw content: SES sends our bytes unchanged, to the envelope recipients. */
export class SesTransport implements EmailTransport {
  readonly name = 'ses';
  readonly #client: SESv2Client;
  readonly #configurationSet: string | undefined;

  constructor(options: SesTransportOptions) {
    this.#client = new SESv2Client({
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
    this.#configurationSet = options.configurationSet;
  }

  async send(email: OutboundEmail): Promise<{ providerMessageId: string }> {
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
      if (!result.MessageId) throw new Error('SES answered without a MessageId');
      return { providerMessageId: result.MessageId };
    } catch (error) {
      if (error instanceof SESv2ServiceException && PERMANENT_SES_ERRORS.has(error.name)) {
        throw new PermanentSendError('ses', error.name, error.message);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}
