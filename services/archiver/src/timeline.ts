import { type EventEnvelope, QUEUE_PREFIX } from '@holdfast/core';
import { getJson, type ObjectStore } from '@holdfast/worm-store';
import type { Redis } from 'ioredis';

/**
 * The message read model: a projection of archived events, kept in Redis by the archiver and
 * rebuildable from the archive. A message's events live in a sorted set scored by the provider's
 * timestamp. Provider reports arrive keyed by the provider's message id (`<channel>:<id>`), often
 * before our own `message.sent` that links that id to the message: the read side merges both.
 */
export interface TimelineEntry {
  eventId: string;
  project: string;
  type: string;
  occurredAt: string;
  channel: string;
  direction: string;
  /** Where the event is archived. */
  key: string;
  providerMessageId?: string;
  status?: string;
  error?: unknown;
}

export interface MessageView {
  id: string;
  project: string;
  state: string;
  channel: string;
  direction: string;
  /** Every event, ordered by the provider's timestamp (then by how far it advances the state). */
  events: TimelineEntry[];
}

const timelineKey = (subject: string) => `${QUEUE_PREFIX}:timeline:${subject}`;

/** What a provider or the sender can say about a message, and how far along each says it is. */
const STATE_RANK: Readonly<Record<string, number>> = Object.freeze({
  'message.submitted': 0,
  'message.received': 0,
  'message.accepted': 1,
  'message.queued': 1,
  'message.send-attempted': 1,
  'message.send-uncertain': 1,
  'message.sent': 2,
  'message.delivered': 3,
  'message.opened': 4,
  'message.read': 4,
  'message.clicked': 5,
  'message.failed': 6,
  'message.send-failed': 6,
  'message.undelivered': 6,
  'message.rejected': 6,
  'message.bounced': 6,
  'message.complained': 7,
});

export function timelineEntry(event: EventEnvelope, key: string): TimelineEntry {
  const data = event.data as Record<string, unknown>;
  return {
    eventId: event.id,
    project: event.project,
    type: event.type,
    occurredAt: event.occurredAt,
    channel: event.channel,
    direction: event.direction,
    key,
    ...(typeof data.providerMessageId === 'string' ? { providerMessageId: data.providerMessageId } : {}),
    ...(typeof data.status === 'string' ? { status: data.status } : {}),
    ...(data.error !== undefined ? { error: data.error } : {}),
  };
}

/**
 * Add an archived message event to its timeline. Idempotent: the member is derived only from the
 * event (never from when it was processed), so a re-delivery adds nothing.
 */
export async function recordInTimeline(redis: Redis, event: EventEnvelope, key: string): Promise<void> {
  if (event.channel === 'record') return;
  const entry = timelineEntry(event, key);
  await redis.zadd(timelineKey(event.subject), String(Date.parse(event.occurredAt)), JSON.stringify(entry));
}

export async function readMessage(redis: Redis, id: string): Promise<MessageView | undefined> {
  const own = await readEntries(redis, id);
  if (own.length === 0) return undefined;
  const linked = new Set<string>();
  for (const e of own) if (e.providerMessageId) linked.add(`${e.channel}:${e.providerMessageId}`);
  const seen = new Set(own.map((e) => e.eventId));
  const events = [...own];
  for (const alias of linked) {
    for (const e of await readEntries(redis, alias)) {
      if (!seen.has(e.eventId)) {
        seen.add(e.eventId);
        events.push(e);
      }
    }
  }
  events.sort((a, b) => Date.parse(a.occurredAt) - Date.parse(b.occurredAt) || rank(a.type) - rank(b.type));
  return {
    id,
    project: own[0]!.project,
    state: foldState(events),
    channel: own[0]!.channel,
    direction: own[0]!.direction,
    events,
  };
}

/**
 * The message's state: the furthest any event says it got. Providers deliver out of order and
 * twice, so the order of arrival never decides it; among equals, the later timestamp wins.
 */
export function foldState(events: readonly TimelineEntry[]): string {
  let best: TimelineEntry | undefined;
  for (const e of events) {
    if (!(e.type in STATE_RANK)) continue;
    if (
      !best ||
      rank(e.type) > rank(best.type) ||
      (rank(e.type) === rank(best.type) && e.occurredAt > best.occurredAt)
    )
      best = e;
  }
  return best ? best.type.slice('message.'.length) : 'unknown';
}

function rank(type: string): number {
  return STATE_RANK[type] ?? -1;
}

async function readEntries(redis: Redis, subject: string): Promise<TimelineEntry[]> {
  return (await redis.zrange(timelineKey(subject), '0', '-1')).map((m) => JSON.parse(m) as TimelineEntry);
}

/**
 * Rebuild the read model from the archive alone (after losing Redis, or to verify it): every
 * message event's JSON and every message sidecar is replayed. Adding is idempotent, so this can
 * run over a live read model.
 */
export async function rebuildTimelines(
  store: Pick<ObjectStore, 'list' | 'get'>,
  redis: Redis,
): Promise<{ events: number }> {
  let events = 0;
  for await (const { key } of store.list('')) {
    if (key.startsWith('records/') || !key.endsWith('.json')) continue;
    const value = await getJson(store, key);
    if (key.endsWith('.meta.json')) {
      const sidecar = value as Omit<TimelineEntry, 'key'> & { subject: string; blob: { key: string } };
      const entry: TimelineEntry = {
        eventId: sidecar.eventId,
        project: sidecar.project,
        type: sidecar.type,
        occurredAt: sidecar.occurredAt,
        channel: sidecar.channel,
        direction: sidecar.direction,
        key: sidecar.blob.key,
      };
      await redis.zadd(
        timelineKey(sidecar.subject),
        String(Date.parse(sidecar.occurredAt)),
        JSON.stringify(entry),
      );
    } else {
      await recordInTimeline(redis, value as EventEnvelope, key);
    }
    events++;
  }
  return { events };
}
