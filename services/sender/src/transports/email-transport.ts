/** One outbound email, as composed and archived. */
export interface OutboundEmail {
  eventId: string;
  /** The exact RFC 5322 bytes that were archived. */
  raw: Uint8Array;
  /** SMTP envelope: these, not the headers, decide who receives it (Bcc lives only here). */
  from: string;
  to: readonly string[];
}

export interface EmailTransport {
  /** Recorded on the `message.sent` event, e.g. `ses` or `outbox`. */
  readonly name: string;
  /** Hand the message to the provider; resolves with the provider's message id. */
  send(email: OutboundEmail): Promise<{ providerMessageId: string }>;
  close(): Promise<void>;
}
