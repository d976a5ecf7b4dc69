import type { WhatsAppContent } from '@holdfast/core';

/** One outbound email, as composed and archived. */
export interface OutboundEmail {
  eventId: string;
  project: string;
  /** The exact RFC 5322 bytes that were archived. */
  raw: Uint8Array;
  /** SMTP envelope: these, not the headers, decide who receives it (Bcc lives only here). */
  from: string;
  to: readonly string[];
}

/** One outbound SMS or MMS. */
export interface OutboundSms {
  eventId: string;
  project: string;
  /** E.164 number or Messaging Service SID. */
  from: string;
  to: string;
  body: string;
  mediaUrls: readonly string[];
}

/** One outbound WhatsApp message (Cloud API message object, minus the envelope fields). */
export interface OutboundWhatsApp {
  eventId: string;
  project: string;
  to: string;
  content: WhatsAppContent;
}

export interface SendResult {
  providerMessageId: string;
}

/**
 * What a lookup learned about an earlier attempt whose result was never recorded (the sender
 * crashed between the provider call and writing its outcome). `found: false` must mean the
 * provider says it never accepted the message, not "could not tell": then throw.
 */
export type LookupResult = { found: true; providerMessageId: string } | { found: false };

/**
 * A provider (or the outbox) for one channel. Implementations throw `SendError` (or a subclass)
 * for every failure so the sender can tell permanent from retryable and "the provider never got
 * it" from "it may have".
 */
export interface Transport<M> {
  /** Recorded on the send events, e.g. `ses`, `twilio`, `cloud-api`, `outbox`. */
  readonly name: string;
  /** Hand the message to the provider; resolves with the provider's message id. */
  send(message: M): Promise<SendResult>;
  /**
   * Present only where the provider can answer "did you accept this message?": the sender asks
   * before retrying an attempt whose outcome is unknown. `since` is when that attempt began.
   */
  lookup?(message: M, since: Date): Promise<LookupResult>;
  close(): Promise<void>;
}

export type EmailTransport = Transport<OutboundEmail>;
export type SmsTransport = Transport<OutboundSms>;
export type WhatsAppTransport = Transport<OutboundWhatsApp>;
