import { z } from 'zod';
import { PayloadInvalidError } from './errors.ts';
import { parsePayload } from './payload-issues.ts';

const WHAT = 'SNS message';

const isoInstant = z.iso.datetime({ offset: true });

const common = {
  MessageId: z.string().min(1),
  TopicArn: z.string().regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w.-]+$/, 'must be an SNS topic ARN'),
  Message: z.string(),
  Timestamp: isoInstant,
  SignatureVersion: z.string().min(1),
  Signature: z.string().min(1),
  SigningCertURL: z.string().min(1),
};

const notification = z.looseObject({
  Type: z.literal('Notification'),
  ...common,
  Subject: z.string().nullish(),
  UnsubscribeURL: z.string().optional(),
});

const confirmation = z.looseObject({
  Type: z.enum(['SubscriptionConfirmation', 'UnsubscribeConfirmation']),
  ...common,
  SubscribeURL: z.string().min(1),
  Token: z.string().min(1),
});

const snsMessageSchema = z.discriminatedUnion('Type', [notification, confirmation]);

/** An SNS HTTP(S) delivery: a Notification or a (Un)SubscriptionConfirmation. Unknown keys are kept. */
export type SnsMessage = z.infer<typeof snsMessageSchema>;
export type SnsNotification = z.infer<typeof notification>;
export type SnsConfirmation = z.infer<typeof confirmation>;

/** Check an SNS request body (the text SNS POSTed, or its parsed JSON) against the documented shape. */
export function parseSnsMessage(body: unknown): SnsMessage {
  let value = body;
  if (typeof body === 'string' || body instanceof Uint8Array) {
    try {
      value = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
    } catch {
      throw new PayloadInvalidError(WHAT, [{ path: '', message: 'body is not JSON' }]);
    }
  }
  return parsePayload(snsMessageSchema, value, WHAT);
}

function typeOf(message: unknown): unknown {
  return typeof message === 'object' && message !== null ? (message as { Type?: unknown }).Type : undefined;
}

/** For a message verifySnsMessage accepted: SNS asks us to confirm a subscription. */
export function isSubscriptionConfirmation(message: unknown): message is SnsConfirmation {
  return typeOf(message) === 'SubscriptionConfirmation';
}

/** For a message verifySnsMessage accepted: someone unsubscribed this endpoint. */
export function isUnsubscribeConfirmation(message: unknown): message is SnsConfirmation {
  return typeOf(message) === 'UnsubscribeConfirmation';
}

/**
 * The string SNS signs: `name\nvalue\n` for each documented key, in this byte order. Subject
 * counts only when the notification has one (SNS omits it otherwise).
 */
export function snsStringToSign(message: SnsMessage): string {
  const pairs: [string, string][] =
    message.Type === 'Notification'
      ? [
          ['Message', message.Message],
          ['MessageId', message.MessageId],
          ...(typeof message.Subject === 'string' ? [['Subject', message.Subject] as [string, string]] : []),
          ['Timestamp', message.Timestamp],
          ['TopicArn', message.TopicArn],
          ['Type', message.Type],
        ]
      : [
          ['Message', message.Message],
          ['MessageId', message.MessageId],
          ['SubscribeURL', message.SubscribeURL],
          ['Timestamp', message.Timestamp],
          ['Token', message.Token],
          ['TopicArn', message.TopicArn],
          ['Type', message.Type],
        ];
  return pairs.map(([name, value]) => `${name}\n${value}\n`).join('');
}
