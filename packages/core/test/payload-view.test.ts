import { describe, expect, it } from 'vitest';
import { newEvent, payloadView } from '../src/index.ts';

const SECRET_BODY = 'Your one-time code is 493817';

const message = () =>
  newEvent({
    type: 'message.received',
    occurredAt: new Date('2026-11-22T10:00:00Z'),
    project: 'acme',
    channel: 'whatsapp',
    direction: 'inbound',
    subject: 'whatsapp:wamid.1',
    category: 'whatsapp-transactional',
    data: { from: '447700900123', text: SECRET_BODY },
  });

describe('payloadView', () => {
  it("shows a job's event by its envelope and the payload's size, never the event's data", () => {
    const event = message();
    const view = payloadView({ event });
    expect(view).toEqual({
      bytes: Buffer.byteLength(JSON.stringify({ event })),
      event: {
        id: event.id,
        type: 'message.received',
        channel: 'whatsapp',
        direction: 'inbound',
        project: 'acme',
        subject: 'whatsapp:wamid.1',
        category: 'whatsapp-transactional',
        occurredAt: '2026-11-22T10:00:00.000Z',
      },
    });
    expect(JSON.stringify(view)).not.toContain(SECRET_BODY);
    expect(JSON.stringify(view)).not.toContain('447700900123');
  });

  it("shows an archive batch as its events' ids", () => {
    const events = [message(), message()];
    const view = payloadView({ events });
    expect(view.events).toEqual(events.map((e) => e.id));
    expect(view.event).toBeUndefined();
    expect(JSON.stringify(view)).not.toContain(SECRET_BODY);
  });

  it("shows a media job's references without the provider's URL", () => {
    const view = payloadView({
      eventId: 'evt-1',
      project: 'acme',
      channel: 'sms',
      provider: 'twilio',
      messageKey: 'messages/sms/acme/inbound/x.json',
      retainUntil: '2033-11-22T10:00:00.000Z',
      media: { url: 'https://api.twilio.com/Media/ME1?token=abc', contentType: 'image/png', index: 0 },
    });
    expect(view.media).toEqual({
      eventId: 'evt-1',
      project: 'acme',
      channel: 'sms',
      provider: 'twilio',
      messageKey: 'messages/sms/acme/inbound/x.json',
      retainUntil: '2033-11-22T10:00:00.000Z',
      attachment: { index: 0, contentType: 'image/png' },
    });
    expect(JSON.stringify(view)).not.toContain('token=abc');
  });

  it('shows a payload of a shape it does not know as its size alone', () => {
    expect(payloadView({ text: SECRET_BODY })).toEqual({ bytes: 11 + SECRET_BODY.length });
    expect(payloadView(null)).toEqual({ bytes: 4 });
    expect(payloadView([SECRET_BODY])).toEqual({ bytes: SECRET_BODY.length + 4 });
  });
});
