import { deterministicEventId, type EventEnvelope, newEvent } from '@holdfast/core';
import type { EventWriter } from '@holdfast/producer';
import type { ProviderEvent } from './providers/provider-event.ts';

/**
 * Turn what a provider told us into events and make them durable. Ids come from the provider's
 * own event identity, so a duplicate delivery is the same event (one job, one archived object).
 * Inbound messages are their own subject; status reports are about the provider's message id,
 * which the read model links to our message once `message.sent` names it.
 */
export function toEnvelope(project: string, pe: ProviderEvent): EventEnvelope {
  const id = deterministicEventId(pe.occurredAt, `${pe.provider}:${pe.providerEventId}`);
  const subject =
    pe.type !== 'message.received' && pe.providerMessageId ? `${pe.channel}:${pe.providerMessageId}` : id;
  return newEvent({
    id,
    type: pe.type,
    occurredAt: pe.occurredAt,
    project,
    channel: pe.channel,
    direction: pe.direction,
    subject,
    category: `${pe.channel}-transactional`,
    data: {
      ...pe.data,
      provider: pe.provider,
      providerEventId: pe.providerEventId,
      ...(pe.providerMessageId ? { providerMessageId: pe.providerMessageId } : {}),
      ...(pe.media.length > 0 ? { media: pe.media } : {}),
    },
  });
}

/** Resolves only when every event of the request is in the spool: then, and only then, answer 200. */
export async function acceptProviderEvents(
  writer: EventWriter,
  project: string,
  events: readonly ProviderEvent[],
): Promise<EventEnvelope[]> {
  const envelopes = events.map((pe) => toEnvelope(project, pe));
  await Promise.all(envelopes.map((e) => writer.submit(e, 'archive')));
  return envelopes;
}
