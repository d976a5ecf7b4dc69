import { describe, expect, it } from 'vitest';
import { PayloadInvalidError, parseSesNotification } from '../../src/providers/index.ts';
import { fixture, fixtureText } from './fixtures.ts';
import { createSnsSigner, snsNotification, snsSubscriptionConfirmation } from './sns-signer.ts';

const signer = createSnsSigner();
const MESSAGE_ID = '0100019a7b3c5d6e-2f1a4b7c-9d8e-4f0a-b1c2-3d4e5f6a7b8c-000000';

/** A signed SNS Notification carrying `sesEvent` as SNS serialises it. */
function notification(sesEvent: object | string, messageId?: string) {
  return signer.sign(
    snsNotification({
      message: sesEvent,
      subject: 'Amazon SES Email Event Notification',
      timestamp: '2026-11-22T10:00:04.000Z',
      messageId,
    }),
  );
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const common = {
  provider: 'ses',
  channel: 'email',
  direction: 'outbound',
  providerMessageId: MESSAGE_ID,
  media: [],
};

describe('parseSesNotification', () => {
  it('Delivery -> message.delivered at delivery.timestamp; raw is the SNS message verbatim', () => {
    const sns = notification(fixtureText('ses/delivery.json'));
    const [event] = parseSesNotification(sns);
    expect(event).toMatchObject({
      ...common,
      type: 'message.delivered',
      occurredAt: new Date('2026-11-22T10:00:01.511Z'),
      providerEventId: `${MESSAGE_ID}:Delivery:2026-11-22T10:00:01.511Z:ada@customer.example`,
      data: {
        sesType: 'Delivery',
        source: 'alerts@acme.example',
        destination: ['ada@customer.example'],
        sendingAccountId: '123456789012',
        configurationSet: 'holdfast-events',
        recipients: ['ada@customer.example'],
        delivery: { smtpResponse: '250 2.6.0 Message received', processingTimeMillis: 3391 },
      },
    });
    expect(event!.data.raw).toEqual(sns);
    expect((event!.data.raw as { Message: string }).Message).toBe(fixtureText('ses/delivery.json'));
  });

  it('Bounce (Permanent/General) -> message.bounced with type, subtype, bounced recipients and SMTP status', () => {
    const [event] = parseSesNotification(notification(fixture('ses/bounce-permanent.json')));
    expect(event).toMatchObject({
      ...common,
      type: 'message.bounced',
      occurredAt: new Date('2026-11-22T10:00:03.004Z'),
      providerEventId: `${MESSAGE_ID}:Bounce:2026-11-22T10:00:03.004Z:old@customer.example`,
      data: {
        sesType: 'Bounce',
        permanent: true,
        recipients: ['old@customer.example'],
        error: { code: '5.1.1', message: 'smtp; 550 5.1.1 user unknown' },
        bounce: {
          bounceType: 'Permanent',
          bounceSubType: 'General',
          bouncedRecipients: [{ emailAddress: 'old@customer.example', action: 'failed', status: '5.1.1' }],
        },
      },
    });
  });

  it('a Transient bounce is a bounce that is not permanent', () => {
    const transient = fixture<{ bounce: Record<string, unknown> }>('ses/bounce-permanent.json');
    transient.bounce.bounceType = 'Transient';
    transient.bounce.bounceSubType = 'MailboxFull';
    expect(parseSesNotification(notification(transient))[0]!.data).toMatchObject({
      permanent: false,
      bounce: { bounceType: 'Transient', bounceSubType: 'MailboxFull' },
    });
  });

  it('Complaint (identity notification, notificationType) -> message.complained at complaint.timestamp', () => {
    const [event] = parseSesNotification(notification(fixture('ses/complaint.json')));
    expect(event).toMatchObject({
      ...common,
      type: 'message.complained',
      occurredAt: new Date('2026-11-22T18:30:12.000Z'),
      providerEventId: `${MESSAGE_ID}:Complaint:2026-11-22T18:30:12.000Z:ada@customer.example`,
      data: {
        sesType: 'Complaint',
        recipients: ['ada@customer.example'],
        complaint: { complaintFeedbackType: 'abuse' },
      },
    });
    expect(event!.data).not.toHaveProperty('configurationSet');
  });

  it('Send, Reject, Open and Click map to accepted, rejected, opened and clicked', () => {
    const mail = fixture<{ mail: object }>('ses/delivery.json').mail;
    const cases = [
      [{ eventType: 'Send', mail, send: {} }, 'message.accepted', '2026-11-22T09:59:58.120Z'],
      [
        { eventType: 'Reject', mail, reject: { reason: 'Bad content' } },
        'message.rejected',
        '2026-11-22T09:59:58.120Z',
      ],
      [
        {
          eventType: 'Open',
          mail,
          open: { ipAddress: '192.0.2.1', timestamp: '2026-11-22T11:00:00.000Z', userAgent: 'x' },
        },
        'message.opened',
        '2026-11-22T11:00:00.000Z',
      ],
      [
        {
          eventType: 'Click',
          mail,
          click: {
            timestamp: '2026-11-22T11:01:00.000Z',
            link: 'https://acme.example/statement',
            ipAddress: '192.0.2.1',
          },
        },
        'message.clicked',
        '2026-11-22T11:01:00.000Z',
      ],
    ] as const;
    for (const [ses, type, at] of cases) {
      const [event] = parseSesNotification(notification(ses));
      expect(event).toMatchObject({
        type,
        occurredAt: new Date(at),
        providerEventId: `${MESSAGE_ID}:${ses.eventType}:${at}`,
      });
    }
    expect(parseSesNotification(notification(cases[1][0]))[0]!.data.error).toEqual({
      message: 'Bad content',
    });
  });

  it('keeps the email subject and headers out of the normalised fields (they stay in raw)', () => {
    for (const name of ['delivery.json', 'bounce-permanent.json', 'complaint.json']) {
      const { raw, ...normalised } = parseSesNotification(notification(fixture(`ses/${name}`)))[0]!.data;
      expect(JSON.stringify(normalised)).not.toMatch(/November statement|commonHeaders|headers/);
      expect(JSON.stringify(raw)).toMatch(/November statement/);
    }
  });

  it('gives the same providerEventId to redeliveries and to the same event from both SES feeds', () => {
    const bounce = fixture<Record<string, unknown>>('ses/bounce-permanent.json');
    const first = parseSesNotification(notification(bounce))[0]!;
    const again = parseSesNotification(notification(bounce))[0]!;
    const { eventType: _e, ...rest } = bounce;
    const viaIdentityNotification = parseSesNotification(
      notification({ notificationType: 'Bounce', ...rest }),
    )[0]!;
    expect(again.providerEventId).toBe(first.providerEventId);
    expect(viaIdentityNotification.providerEventId).toBe(first.providerEventId);
    // Recipient order does not matter.
    const twoRecipients = structuredClone(bounce) as { bounce: { bouncedRecipients: object[] } };
    twoRecipients.bounce.bouncedRecipients.push({
      emailAddress: 'a@customer.example',
      action: 'failed',
      status: '5.1.1',
    });
    const reversed = structuredClone(twoRecipients);
    reversed.bounce.bouncedRecipients.reverse();
    expect(parseSesNotification(notification(twoRecipients))[0]!.providerEventId).toBe(
      parseSesNotification(notification(reversed))[0]!.providerEventId,
    );
  });

  it('archives types it does not model as provider.unknown, dated and identified as well as possible', () => {
    const [failure] = parseSesNotification(notification(fixture('ses/rendering-failure.json')));
    expect(failure).toMatchObject({
      type: 'provider.unknown',
      providerMessageId: MESSAGE_ID,
      occurredAt: new Date('2026-11-22T11:00:00.000Z'),
      providerEventId: `${MESSAGE_ID}:Rendering Failure:2026-11-22T11:00:00.000Z`,
      data: { sesType: 'Rendering Failure', failure: { templateName: 'statement-ready' } },
    });
    const mail = fixture<{ mail: object }>('ses/delivery.json').mail;
    const delay = {
      eventType: 'DeliveryDelay',
      mail,
      deliveryDelay: {
        timestamp: '2026-11-22T12:00:00.000Z',
        delayType: 'MailboxFull',
        delayedRecipients: [],
      },
    };
    expect(parseSesNotification(notification(delay))[0]).toMatchObject({
      type: 'provider.unknown',
      occurredAt: new Date('2026-11-22T12:00:00.000Z'),
    });

    const sns = notification({
      notificationType: 'AmazonSnsSubscriptionSucceeded',
      message: 'You have successfully subscribed',
    });
    expect(parseSesNotification(sns)).toEqual([
      {
        provider: 'ses',
        channel: 'email',
        direction: 'outbound',
        type: 'provider.unknown',
        occurredAt: new Date('2026-11-22T10:00:04.000Z'),
        providerEventId: `sns:${sns.MessageId}`,
        data: { sesType: 'AmazonSnsSubscriptionSucceeded', raw: sns },
        media: [],
      },
    ]);
  });

  it('throws PayloadInvalidError naming what is malformed', () => {
    const bounce = fixture<{ bounce: Record<string, unknown>; mail: Record<string, unknown> }>(
      'ses/bounce-permanent.json',
    );
    const noTimestamp = structuredClone(bounce);
    delete noTimestamp.bounce.timestamp;
    const noMessageId = structuredClone(bounce);
    delete noMessageId.mail.messageId;
    const cases: [unknown, string][] = [
      [notification('not json'), 'Message'],
      [notification({ mail: bounce.mail }), 'Message.eventType'],
      [notification(noTimestamp), 'Message.bounce.timestamp'],
      [notification(noMessageId), 'Message.mail.messageId'],
      [signer.sign(snsSubscriptionConfirmation()), 'Type'],
      [{ Type: 'Notification' }, 'MessageId'],
    ];
    for (const [message, path] of cases) {
      const error = errorOf(() => parseSesNotification(message));
      expect(error, path).toBeInstanceOf(PayloadInvalidError);
      expect((error as PayloadInvalidError).issues.map((i) => i.path)).toContain(path);
    }
  });
});
