import {
  canonicalJson,
  type DeliveryPolicy,
  type EmailSubmittedData,
  type EventEnvelope,
  type OutboundChannel,
  type SmsSubmittedData,
  sha256Hex,
  type WhatsAppSubmittedData,
} from '@holdfast/core';
import type { OutboundEmail, OutboundSms, OutboundWhatsApp } from './transports/index.ts';

export interface OutboundByChannel {
  email: OutboundEmail;
  sms: OutboundSms;
  whatsapp: OutboundWhatsApp;
}

/** What the sender needs from a submitted message event, whatever its channel. */
export interface Outbound<C extends OutboundChannel> {
  message: OutboundByChannel[C];
  failMode: 'open' | 'closed';
  delivery: DeliveryPolicy;
  /** SHA-256 of the archived object: the archive child's result must carry it. */
  archivedSha256: string;
}

const channelOutbound: { [C in OutboundChannel]: (event: EventEnvelope) => Outbound<C> } = {
  email(event) {
    const data = event.data as EmailSubmittedData;
    return {
      message: {
        eventId: event.id,
        project: event.project,
        raw: Buffer.from(data.mime, 'utf8'),
        from: data.envelope.from,
        to: data.envelope.to,
      },
      failMode: data.failMode,
      // Email events from before delivery policies existed were sent at least once.
      delivery: data.delivery ?? 'at-least-once',
      archivedSha256: data.sha256,
    };
  },
  // SMS and WhatsApp messages are archived as the event's canonical JSON.
  sms(event) {
    const data = event.data as SmsSubmittedData;
    return {
      message: {
        eventId: event.id,
        project: event.project,
        from: data.from,
        to: data.to,
        body: data.body,
        mediaUrls: data.mediaUrls,
      },
      failMode: data.failMode,
      delivery: data.delivery,
      archivedSha256: sha256Hex(canonicalJson(event)),
    };
  },
  whatsapp(event) {
    const data = event.data as WhatsAppSubmittedData;
    return {
      message: { eventId: event.id, project: event.project, to: data.to, content: data.content },
      failMode: data.failMode,
      delivery: data.delivery,
      archivedSha256: sha256Hex(canonicalJson(event)),
    };
  },
};

/** Turn a validated `message.submitted` event into what its transport sends. */
export function outboundOf<C extends OutboundChannel>(channel: C, event: EventEnvelope): Outbound<C> {
  return channelOutbound[channel](event);
}
