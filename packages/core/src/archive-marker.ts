import type { EventEnvelope } from './events.ts';
import { QUEUE_PREFIX } from './queues.ts';

/*
 * The archiver's per-event marker, `holdfast:archived:<identity>`: while an event is being
 * archived it holds a claim (`pending:<job id>`), and once archived the archive result (JSON),
 * kept for `ARCHIVED_MARKER_TTL_SECONDS`. It makes provider duplicates no-ops in the archiver, and
 * tells a producer that finds an event in its spool, and no job for it, that it was archived.
 */

/** Providers retry webhooks for up to a few days (Meta: 7); duplicates later than this are archived again. */
export const ARCHIVED_MARKER_TTL_SECONDS = 8 * 24 * 3600;

/** A claim in progress: `pending:<job id>`, so a retry of the same job can tell its own claim. */
export const ARCHIVE_CLAIM_PREFIX = 'pending:';

/** What makes two deliveries "the same": the provider's event identity, else our event id. */
function dedupeIdentity(event: EventEnvelope): string {
  const { provider, providerEventId } = event.data as { provider?: unknown; providerEventId?: unknown };
  return typeof provider === 'string' && typeof providerEventId === 'string'
    ? `${provider}:${providerEventId}`
    : event.id;
}

export function archivedMarkerKey(event: EventEnvelope): string {
  return `${QUEUE_PREFIX}:archived:${dedupeIdentity(event)}`;
}

/** True when a marker's value says the event is archived (not merely claimed). */
export function isArchivedMarker(value: string | null | undefined): value is string {
  return typeof value === 'string' && !value.startsWith(ARCHIVE_CLAIM_PREFIX);
}
