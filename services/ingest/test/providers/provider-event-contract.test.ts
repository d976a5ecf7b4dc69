import { deterministicEventId, eventEnvelope, isEventId } from '@holdfast/core';
import { describe, expect, it } from 'vitest';
import {
  type ProviderEvent,
  parseSesNotification,
  parseTwilioInbound,
  parseTwilioStatus,
  parseWhatsAppNotification,
} from '../../src/providers/index.ts';
import { fixture, twilioFixture } from './fixtures.ts';
import { createSnsSigner, snsNotification } from './sns-signer.ts';

const receivedAt = new Date('2026-11-22T10:00:05.000Z');
const signer = createSnsSigner();

const every: [string, () => ProviderEvent[]][] = [
  ...['inbound-sms.json', 'inbound-mms.json'].map(
    (f) =>
      [`twilio/${f}`, () => parseTwilioInbound(twilioFixture(f), receivedAt)] as [
        string,
        () => ProviderEvent[],
      ],
  ),
  ...['status-sent.json', 'status-delivered.json', 'status-failed.json'].map(
    (f) =>
      [`twilio/${f}`, () => parseTwilioStatus(twilioFixture(f), receivedAt)] as [
        string,
        () => ProviderEvent[],
      ],
  ),
  ...[
    'text.json',
    'image.json',
    'document.json',
    'location.json',
    'interactive-button-reply.json',
    'statuses.json',
  ].map(
    (f) =>
      [`whatsapp/${f}`, () => parseWhatsAppNotification(fixture(`whatsapp/${f}`))] as [
        string,
        () => ProviderEvent[],
      ],
  ),
  ...['delivery.json', 'bounce-permanent.json', 'complaint.json', 'rendering-failure.json'].map(
    (f) =>
      [
        `ses/${f}`,
        () => parseSesNotification(signer.sign(snsNotification({ message: fixture(`ses/${f}`) }))),
      ] as [string, () => ProviderEvent[]],
  ),
];

describe('every fixture normalises to events the ingest envelope accepts', () => {
  it.each(every)('%s', (_name, parse) => {
    const events = parse();
    expect(events.length).toBeGreaterThan(0);
    for (const event of events) {
      expect(eventEnvelope.shape.type.safeParse(event.type).success, event.type).toBe(true);
      expect(event.type === 'provider.unknown' || event.type.startsWith('message.')).toBe(true);
      expect(Number.isNaN(event.occurredAt.getTime())).toBe(false);
      expect(event.providerEventId.length).toBeGreaterThan(0);
      expect(event.data).toHaveProperty('raw');
      expect(JSON.parse(JSON.stringify(event.data))).toEqual(event.data);
      expect(
        isEventId(deterministicEventId(event.occurredAt, `${event.provider}:${event.providerEventId}`)),
      ).toBe(true);
      for (const media of event.media) expect(media.url ?? media.mediaId).toBeTruthy();
    }
  });
});
