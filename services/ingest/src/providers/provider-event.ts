import type { Channel } from '@holdfast/core';

/**
 * What a provider told us, normalised: one webhook request may carry several (a WhatsApp
 * notification batches messages and statuses). Ingest turns each into an event envelope with
 * `deterministicEventId(occurredAt, `${provider}:${providerEventId}`)` so duplicates collapse.
 */
export interface ProviderEvent {
  provider: 'twilio' | 'whatsapp' | 'ses';
  channel: Exclude<Channel, 'record'>;
  direction: 'inbound' | 'outbound';
  /**
   * `message.received` for inbound messages; `message.<status>` for statuses of messages we sent
   * (queued, sent, delivered, read, failed, undelivered, bounced, complained, rejected, opened,
   * clicked); `provider.unknown` for anything we cannot classify (archived as-is, never dropped).
   */
  type: string;
  /** The provider's timestamp for this event (not our receipt time). */
  occurredAt: Date;
  /** Unique per provider event; duplicates of one delivery share it. */
  providerEventId: string;
  /** The provider's id of the message this event is about (Twilio SID, wamid, SES messageId). */
  providerMessageId?: string;
  /** Normalised fields (from, to, text body, status, error {code, message}, …) plus `raw`: the provider's own payload for this event. */
  data: Record<string, unknown>;
  /** Media to fetch before its URL expires (inbound WhatsApp media ids, Twilio MMS URLs). */
  media: ProviderMedia[];
}

export interface ProviderMedia {
  /** WhatsApp media id (needs the two-step Graph API lookup) … */
  mediaId?: string;
  /** … or a direct URL (Twilio MediaUrlN). */
  url?: string;
  contentType?: string;
  /** Position in the message (MMS MediaUrl0..9, a WhatsApp message has one). */
  index: number;
}
