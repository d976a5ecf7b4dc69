/** Webhook payloads shaped as the providers document them, built per test so ids can vary. */

export function whatsappText(wamid: string, text: string, at: Date) {
  return whatsappMessage({
    id: wamid,
    from: '447700900123',
    timestamp: unix(at),
    type: 'text',
    text: { body: text },
  });
}

export function whatsappImage(wamid: string, mediaId: string, at: Date) {
  return whatsappMessage({
    id: wamid,
    from: '447700900123',
    timestamp: unix(at),
    type: 'image',
    image: {
      id: mediaId,
      mime_type: 'image/jpeg',
      sha256: 'q0JxDDfaLt3XnO9SjwyfzBqxGdZLhqy0fV1+cGyJZyE=',
      caption: 'receipt',
    },
  });
}

export function whatsappStatus(wamid: string, status: 'sent' | 'delivered' | 'read' | 'failed', at: Date) {
  return envelope({ statuses: [{ id: wamid, status, timestamp: unix(at), recipient_id: '447700900123' }] });
}

function whatsappMessage(message: object) {
  return envelope({ contacts: [{ profile: { name: 'Ada' }, wa_id: '447700900123' }], messages: [message] });
}

function envelope(value: object) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
              ...value,
            },
          },
        ],
      },
    ],
  };
}

export function twilioInboundSms(sid: string, body: string): Record<string, string> {
  return {
    ToCountry: 'US',
    SmsMessageSid: sid,
    NumMedia: '0',
    SmsSid: sid,
    SmsStatus: 'received',
    Body: body,
    To: '+15005550006',
    NumSegments: '1',
    MessageSid: sid,
    AccountSid: 'AC0123456789abcdef0123456789abcdef',
    From: '+14155550100',
    ApiVersion: '2010-04-01',
  };
}

export function sesDelivery(messageId: string, at: Date) {
  return {
    eventType: 'Delivery',
    mail: {
      timestamp: new Date(at.getTime() - 1000).toISOString(),
      source: 'alerts@acme.example',
      sourceArn: 'arn:aws:ses:eu-west-1:123456789012:identity/acme.example',
      sendingAccountId: '123456789012',
      messageId,
      destination: ['b@x.example'],
    },
    delivery: {
      timestamp: at.toISOString(),
      processingTimeMillis: 1000,
      recipients: ['b@x.example'],
      smtpResponse: '250 2.0.0 OK',
      reportingMTA: 'a8-70.smtp-out.amazonses.com',
    },
  };
}

function unix(at: Date): string {
  return String(Math.floor(at.getTime() / 1000));
}
