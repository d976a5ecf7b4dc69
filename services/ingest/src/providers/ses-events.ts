import { sha256Hex } from '@holdfast/core';
import { z } from 'zod';
import { PayloadInvalidError } from './errors.ts';
import { parsePayload } from './payload-issues.ts';
import type { ProviderEvent } from './provider-event.ts';
import { parseSnsMessage } from './sns-message.ts';

const WHAT = 'SES notification';

const isoInstant = z.iso.datetime({ offset: true });

const mailSchema = z.looseObject({
  messageId: z.string().min(1),
  timestamp: isoInstant,
  source: z.string().optional(),
  sendingAccountId: z.string().optional(),
  destination: z.array(z.string()).optional(),
  tags: z.record(z.string(), z.array(z.string())).optional(),
});
type SesMail = z.infer<typeof mailSchema>;

const sesEventSchema = z
  .looseObject({
    eventType: z.string().min(1).optional(),
    notificationType: z.string().min(1).optional(),
  })
  .refine((e) => e.eventType !== undefined || e.notificationType !== undefined, {
    message: 'eventType (event publishing) or notificationType (identity notifications) is required',
    path: ['eventType'],
  });

const emailRecipient = z.looseObject({ emailAddress: z.string().min(1) });

interface KnownType {
  /** The ProviderEvent type. */
  type: string;
  /** Which of the event's own fields holds its details. */
  key: string;
  schema: z.ZodType;
  /** The addresses the event is about, when the event names them. */
  recipients?: (detail: Record<string, unknown>) => string[];
}

/**
 * The SES event types with a message status. Rendering Failure, DeliveryDelay, Subscription and
 * whatever SES adds are archived as `provider.unknown`.
 */
const knownTypes: Record<string, KnownType> = {
  Send: { type: 'message.accepted', key: 'send', schema: z.looseObject({}).optional() },
  Delivery: {
    type: 'message.delivered',
    key: 'delivery',
    schema: z.looseObject({ timestamp: isoInstant, recipients: z.array(z.string()) }),
    recipients: (d) => d.recipients as string[],
  },
  Bounce: {
    type: 'message.bounced',
    key: 'bounce',
    schema: z.looseObject({
      bounceType: z.string().min(1),
      bounceSubType: z.string().min(1),
      bouncedRecipients: z.array(emailRecipient),
      timestamp: isoInstant,
    }),
    recipients: (d) => (d.bouncedRecipients as { emailAddress: string }[]).map((r) => r.emailAddress),
  },
  Complaint: {
    type: 'message.complained',
    key: 'complaint',
    schema: z.looseObject({ complainedRecipients: z.array(emailRecipient), timestamp: isoInstant }),
    recipients: (d) => (d.complainedRecipients as { emailAddress: string }[]).map((r) => r.emailAddress),
  },
  Reject: {
    type: 'message.rejected',
    key: 'reject',
    schema: z.looseObject({ reason: z.string().optional() }),
  },
  Open: { type: 'message.opened', key: 'open', schema: z.looseObject({ timestamp: isoInstant }) },
  Click: {
    type: 'message.clicked',
    key: 'click',
    schema: z.looseObject({ timestamp: isoInstant, link: z.string().optional() }),
  },
};

/** Where other types keep their details (and maybe a timestamp). */
const otherKeys: Record<string, string> = {
  'Rendering Failure': 'failure',
  DeliveryDelay: 'deliveryDelay',
  Subscription: 'subscription',
};

/** Recipient lists can be long; past this the id carries their hash instead. */
const MAX_RECIPIENTS_IN_ID = 256;

function recipientsPart(recipients: string[]): string {
  const list = [...recipients].sort().join(',');
  return list.length <= MAX_RECIPIENTS_IN_ID ? list : `sha256-${sha256Hex(list).slice(0, 32)}`;
}

function mailData(mail: SesMail): Record<string, unknown> {
  const configurationSet = mail.tags?.['ses:configuration-set']?.[0];
  return {
    ...(mail.source !== undefined && { source: mail.source }),
    ...(mail.destination !== undefined && { destination: mail.destination }),
    ...(mail.sendingAccountId !== undefined && { sendingAccountId: mail.sendingAccountId }),
    ...(configurationSet !== undefined && { configurationSet }),
  };
}

/** The error fields statuses share across providers: a bounce's SMTP status, a rejection's reason. */
function errorOf(sesType: string, detail: Record<string, unknown>): Record<string, unknown> | undefined {
  if (sesType === 'Reject' && typeof detail.reason === 'string') return { message: detail.reason };
  if (sesType !== 'Bounce') return undefined;
  const first = (detail.bouncedRecipients as Record<string, unknown>[])[0];
  const code = first?.status;
  const message = first?.diagnosticCode;
  if (typeof code !== 'string' && typeof message !== 'string') return undefined;
  return {
    ...(typeof code === 'string' && { code }),
    ...(typeof message === 'string' && { message }),
  };
}

/**
 * The SES event in a verified SNS Notification (event publishing via a configuration set, or
 * identity notifications) as one ProviderEvent about the SES message `mail.messageId`, dated by
 * the event's own timestamp. `data.raw` is the SNS message verbatim, signature included, so the
 * archive can prove its origin; the normalised fields leave the email's headers (subject) out.
 */
export function parseSesNotification(message: unknown): ProviderEvent[] {
  const sns = parseSnsMessage(message);
  if (sns.Type !== 'Notification') {
    throw new PayloadInvalidError(WHAT, [
      { path: 'Type', message: `must be "Notification", got "${sns.Type}"` },
    ]);
  }
  let ses: unknown;
  try {
    ses = JSON.parse(sns.Message);
  } catch {
    throw new PayloadInvalidError(WHAT, [{ path: 'Message', message: 'is not JSON' }]);
  }
  const event = parsePayload(sesEventSchema, ses, WHAT, 'Message') as Record<string, unknown> & {
    eventType?: string;
    notificationType?: string;
  };
  const sesType = (event.eventType ?? event.notificationType)!;
  const known = Object.hasOwn(knownTypes, sesType) ? knownTypes[sesType]! : undefined;

  if (known) {
    const mail = parsePayload(mailSchema, event.mail, WHAT, 'Message.mail');
    parsePayload(known.schema, event[known.key], WHAT, `Message.${known.key}`);
    const detail = (event[known.key] ?? {}) as Record<string, unknown>;
    const timestamp = typeof detail.timestamp === 'string' ? detail.timestamp : mail.timestamp;
    const recipients = known.recipients?.(detail);
    const error = errorOf(sesType, detail);
    return [
      {
        provider: 'ses',
        channel: 'email',
        direction: 'outbound',
        type: known.type,
        occurredAt: new Date(timestamp),
        providerEventId: `${mail.messageId}:${sesType}:${timestamp}${recipients ? `:${recipientsPart(recipients)}` : ''}`,
        providerMessageId: mail.messageId,
        data: {
          sesType,
          ...mailData(mail),
          ...(recipients && { recipients }),
          ...(sesType === 'Bounce' && { permanent: detail.bounceType === 'Permanent' }),
          ...(error && { error }),
          [known.key]: detail,
          raw: sns,
        },
        media: [],
      },
    ];
  }

  // Unknown to us: date and identify it as best the payload allows, and archive it whole.
  const mail = mailSchema.safeParse(event.mail);
  const key = Object.hasOwn(otherKeys, sesType)
    ? otherKeys[sesType]!
    : sesType.charAt(0).toLowerCase() + sesType.slice(1).replaceAll(' ', '');
  const detail = event[key];
  const own = isoInstant.safeParse((detail as { timestamp?: unknown } | undefined)?.timestamp);
  const timestamp = own.success ? own.data : mail.success ? mail.data.timestamp : sns.Timestamp;
  return [
    {
      provider: 'ses',
      channel: 'email',
      direction: 'outbound',
      type: 'provider.unknown',
      occurredAt: new Date(timestamp),
      providerEventId: mail.success
        ? `${mail.data.messageId}:${sesType}:${timestamp}`
        : `sns:${sns.MessageId}`,
      ...(mail.success && { providerMessageId: mail.data.messageId }),
      data: {
        sesType,
        ...(mail.success && mailData(mail.data)),
        ...(detail !== undefined && { [key]: detail }),
        raw: sns,
      },
      media: [],
    },
  ];
}
