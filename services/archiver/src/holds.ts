import { randomUUID } from 'node:crypto';
import {
  type EventEnvelope,
  HoldfastError,
  QUEUE_PREFIX,
  type RetentionPolicy,
  ValidationError,
  zodIssues,
} from '@holdfast/core';
import { getJson, type ObjectStore } from '@holdfast/worm-store';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { withHoldsLock } from './holds-lock.ts';
import { archiveOperatorAction, OPERATOR_CATEGORY, operatorCategoryOf } from './operator-event.ts';

/**
 * Legal holds as matters. A matter selects objects; every version it selects gets the store's
 * legal hold (S3 Object Lock legal hold), independent of the retention clock. New writes that
 * match an open matter are held as they are written. An object stays held while any open matter
 * holds it. The registry of matters lives in Redis and is rebuilt from the archived hold.placed /
 * hold.released events by `rebuildMatters`; the store's hold flag is what actually protects.
 */
export const holdSelection = z
  .strictObject({
    keys: z.array(z.string().min(1)).optional(),
    prefix: z.string().min(1).optional(),
    project: z.string().min(1).optional(),
    channel: z.enum(['email', 'sms', 'whatsapp', 'record']).optional(),
    from: z.iso.datetime({ offset: true }).optional(),
    to: z.iso.datetime({ offset: true }).optional(),
    subject: z.string().min(1).optional(),
    participant: z.string().min(3).optional(),
  })
  .refine(
    (s) => Object.values(s).some((v) => v !== undefined),
    'select something: keys, prefix, project, channel, from/to, subject or participant',
  )
  .refine((s) => !s.from || !s.to || s.from <= s.to, { message: 'from must not be after to', path: ['to'] });
export type HoldSelection = z.infer<typeof holdSelection>;

export interface Matter {
  matter: string;
  reason: string;
  actor: string;
  placedAt: string;
  selection: HoldSelection;
}

export class MatterNotFoundError extends HoldfastError {
  constructor(matter: string) {
    super('HOLDFAST_ERR_MATTER_NOT_FOUND', `no open matter "${matter}"`);
  }
}

export class MatterExistsError extends HoldfastError {
  constructor(matter: string) {
    super('HOLDFAST_ERR_MATTER_EXISTS', `matter "${matter}" is already open; release it or use another name`);
  }
}

const MATTERS = `${QUEUE_PREFIX}:matters`;
const heldBy = (matter: string) => `${QUEUE_PREFIX}:matter-objects:${matter}`;
/** `key\0versionId` of an open matter's `hold.placed` record, which is held while the matter is open. */
const placementOf = (matter: string) => `${QUEUE_PREFIX}:matter-placement:${matter}`;
const member = (key: string, versionId: string) => `${key}\u0000${versionId}`;

/** What a selection can be matched against, from an event being written or an archived object. */
export interface ObjectFacts {
  key: string;
  project?: string;
  channel?: string;
  occurredAt?: string;
  subject?: string;
  participants: readonly string[];
}

export function matches(selection: HoldSelection, facts: ObjectFacts): boolean {
  if (selection.keys && !selection.keys.includes(facts.key)) return false;
  if (selection.prefix && !facts.key.startsWith(selection.prefix)) return false;
  if (selection.project && facts.project !== selection.project) return false;
  if (selection.channel && facts.channel !== selection.channel) return false;
  if (selection.from && (!facts.occurredAt || Date.parse(facts.occurredAt) < Date.parse(selection.from)))
    return false;
  if (selection.to && (!facts.occurredAt || Date.parse(facts.occurredAt) > Date.parse(selection.to)))
    return false;
  if (selection.subject && facts.subject !== selection.subject) return false;
  if (selection.participant) {
    const wanted = selection.participant.toLowerCase();
    if (!facts.participants.some((p) => p.toLowerCase().includes(wanted))) return false;
  }
  return true;
}

/** Facts of an event about to be written (or just written) at `key`. */
export function factsFromEvent(event: EventEnvelope, key: string): ObjectFacts {
  return {
    key,
    project: event.project,
    channel: event.channel,
    occurredAt: event.occurredAt,
    subject: event.subject,
    participants: participantsOf(event.data as Record<string, unknown>),
  };
}

function participantsOf(data: Record<string, unknown>): string[] {
  const out: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) for (const x of v) add(x);
  };
  const headers = (data.headers ?? {}) as Record<string, unknown>;
  const envelope = (data.envelope ?? {}) as Record<string, unknown>;
  for (const v of [
    data.from,
    data.to,
    headers.from,
    headers.to,
    headers.cc,
    headers.bcc,
    envelope.from,
    envelope.to,
  ])
    add(v);
  return out;
}

export async function openMatters(redis: Redis): Promise<Matter[]> {
  return Object.values(await redis.hgetall(MATTERS)).map((v) => JSON.parse(v) as Matter);
}

/** How stale the archiver's view of open matters may be; placeHold waits longer than this before scanning. */
export const MATTER_CACHE_MS = 1000;

/**
 * The archiver's view of open matters, refreshed at most every MATTER_CACHE_MS so the write
 * path does not pay a Redis round trip per event for a list that rarely changes. `ensure` runs
 * first when the registry is not known to match the archive (see `ensureMatterRegistry`).
 */
export function matterCache(redis: Redis, ensure: () => Promise<void>): () => Promise<Matter[]> {
  let cached: { at: number; matters: Promise<Matter[]> } | undefined;
  const read = async (): Promise<Matter[]> => {
    const [[, restored], [, entries]] = (await redis
      .multi()
      .exists(REGISTRY_RESTORED)
      .hgetall(MATTERS)
      .exec()) as [[Error | null, number], [Error | null, Record<string, string>]];
    if (restored === 1) return Object.values(entries).map((v) => JSON.parse(v) as Matter);
    await ensure();
    return openMatters(redis);
  };
  return () => {
    if (!cached || Date.now() - cached.at > MATTER_CACHE_MS) {
      cached = { at: Date.now(), matters: read() };
      cached.matters.catch(() => {
        cached = undefined;
      });
    }
    return cached.matters;
  };
}

/** Record that `matters` hold these versions (the archiver calls this for writes under an open matter). */
export async function recordHeld(
  redis: Redis,
  matters: readonly Matter[],
  objects: readonly { key: string; versionId: string }[],
): Promise<void> {
  if (matters.length === 0 || objects.length === 0) return;
  // At once for every matter: a release checking whether another matter holds a version must
  // not see one matter's membership without the other's.
  const members = objects.map((o) => member(o.key, o.versionId));
  const multi = redis.multi();
  for (const m of matters) multi.sadd(heldBy(m.matter), ...members);
  await multi.exec();
}

/**
 * Media captured for a message belong to the matters that hold the message: recorded as theirs, so
 * releasing the matter releases them too (the fetcher copies the message's hold, but cannot tell
 * whose it is), and held if a matter took the message after the fetcher looked.
 */
export async function holdMediaWithMessage(
  store: ObjectStore,
  redis: Redis,
  matters: () => Promise<Matter[]>,
  captured: {
    messageKey: string;
    key: string;
    versionId?: string;
    sidecarKey?: string;
    sidecarVersionId?: string;
  },
): Promise<void> {
  if ((await matters()).length === 0 || !captured.versionId) return;
  await withHoldsLock(redis, async () => {
    const message = await store.head(captured.messageKey);
    if (!message) return;
    const messageMember = member(captured.messageKey, message.versionId);
    const holding: Matter[] = [];
    for (const m of await openMatters(redis))
      if (await redis.sismember(heldBy(m.matter), messageMember)) holding.push(m);
    if (holding.length === 0) return;
    const objects = [{ key: captured.key, versionId: captured.versionId! }];
    if (captured.sidecarKey && captured.sidecarVersionId)
      objects.push({ key: captured.sidecarKey, versionId: captured.sidecarVersionId });
    await recordHeld(redis, holding, objects);
    for (const o of objects)
      if (!(await store.head(o.key, { versionId: o.versionId }))?.legalHold)
        await store.setLegalHold(o.key, o.versionId, true);
  });
}

export interface HoldManifestEntry {
  key: string;
  versionId: string;
  sha256: string;
}

/**
 * Open a matter and hold every version it selects. The matter is registered first, so writes
 * that land during the scan are held by the archiver; the hold.placed event (who, when, why, the
 * exact manifest with hashes) is archived under lock before any hold is set.
 */
export async function placeHold(
  store: ObjectStore,
  redis: Redis,
  policy: RetentionPolicy,
  input: { matter: string; reason: string; actor: string; selection: unknown },
): Promise<{ matter: Matter; manifest: HoldManifestEntry[]; eventKey: string }> {
  const selection = holdSelection.safeParse(input.selection);
  if (!selection.success) throw new ValidationError('hold selection', zodIssues(selection.error));
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(input.matter)) {
    throw new ValidationError('hold', [
      { path: 'matter', message: 'must be 1-128 of letters, digits . _ : -' },
    ]);
  }
  if (!input.reason.trim())
    throw new ValidationError('hold', [{ path: 'reason', message: 'required: why the hold is placed' }]);
  const matter: Matter = {
    matter: input.matter,
    reason: input.reason,
    actor: input.actor,
    placedAt: new Date().toISOString(),
    selection: selection.data,
  };
  return withHoldsLock(redis, async () => {
    if ((await redis.hsetnx(MATTERS, matter.matter, JSON.stringify(matter))) === 0)
      throw new MatterExistsError(matter.matter);
    let placement: { key: string; versionId: string } | undefined;
    try {
      // Every archiver now sees the matter for writes that finish after the scan starts.
      await new Promise((r) => setTimeout(r, MATTER_CACHE_MS * 1.5));
      const manifest = await selectVersions(store, selection.data);
      // The placement's own record is held with what it selects: the registry is rebuilt from it
      // after a Redis loss, so it must outlive its retention while the matter is open.
      const { archived } = await archiveOperatorAction(store, policy, {
        type: 'hold.placed',
        actor: input.actor,
        subject: matter.matter,
        data: { matter: matter.matter, reason: matter.reason, selection: selection.data, manifest },
        legalHold: true,
      });
      placement = archived;
      // Recorded before the holds are set: a release then never takes these for unheld by this matter.
      const recording = redis
        .multi()
        .set(placementOf(matter.matter), member(archived.key, archived.versionId));
      if (manifest.length > 0)
        recording.sadd(heldBy(matter.matter), ...manifest.map((o) => member(o.key, o.versionId)));
      await recording.exec();
      for (const o of manifest) await store.setLegalHold(o.key, o.versionId, true);
      return { matter, manifest, eventKey: archived.key };
    } catch (error) {
      // Nothing is held unless the placement is on record; let the operator retry cleanly.
      await redis
        .multi()
        .hdel(MATTERS, matter.matter)
        .del(heldBy(matter.matter), placementOf(matter.matter))
        .exec();
      if (placement) await store.setLegalHold(placement.key, placement.versionId, false).catch(() => {});
      throw error;
    }
  });
}

/**
 * Close a matter. Versions no other open matter holds are released; the rest stay held. The
 * hold.released event (with both lists) is archived before any hold is lifted.
 */
export async function releaseHold(
  store: ObjectStore,
  redis: Redis,
  policy: RetentionPolicy,
  input: { matter: string; actor: string; reason?: string },
): Promise<{ released: HoldManifestEntry[]; stillHeld: HoldManifestEntry[]; eventKey: string }> {
  return withHoldsLock(redis, () => releaseLocked(store, redis, policy, input));
}

async function releaseLocked(
  store: ObjectStore,
  redis: Redis,
  policy: RetentionPolicy,
  input: { matter: string; actor: string; reason?: string },
): Promise<{ released: HoldManifestEntry[]; stillHeld: HoldManifestEntry[]; eventKey: string }> {
  const raw = await redis.hget(MATTERS, input.matter);
  if (!raw) throw new MatterNotFoundError(input.matter);
  const others = (await openMatters(redis)).filter((m) => m.matter !== input.matter);
  const released: HoldManifestEntry[] = [];
  const stillHeld: HoldManifestEntry[] = [];
  for (const m of await redis.smembers(heldBy(input.matter))) {
    const [key, versionId] = m.split('\u0000') as [string, string];
    const head = await store.head(key, { versionId });
    if (!head) continue;
    const entry = { key, versionId, sha256: head.sha256 };
    let kept = false;
    for (const other of others) if (await redis.sismember(heldBy(other.matter), m)) kept = true;
    (kept ? stillHeld : released).push(entry);
  }
  const placementMember = await redis.get(placementOf(input.matter));
  const [placementKey, placementVersion] = placementMember?.split('\u0000') ?? [];
  const { archived } = await archiveOperatorAction(store, policy, {
    type: 'hold.released',
    actor: input.actor,
    subject: input.matter,
    data: {
      matter: input.matter,
      reason: input.reason ?? null,
      released,
      stillHeld,
      stillHeldBy: others.map((o) => o.matter),
      ...(placementKey ? { placement: { key: placementKey, versionId: placementVersion } } : {}),
    },
  });
  for (const o of released) await store.setLegalHold(o.key, o.versionId, false);
  if (placementKey && placementVersion) await store.setLegalHold(placementKey, placementVersion, false);
  await redis.hdel(MATTERS, input.matter);
  await redis.del(heldBy(input.matter), placementOf(input.matter));
  return { released, stillHeld, eventKey: archived.key };
}

/**
 * Set once the matter registry in this Redis is known to match the archive: by the first
 * archiver to find it missing (a new Redis, or one that lost its data), or by `rebuildMatters`.
 */
const REGISTRY_RESTORED = `${QUEUE_PREFIX}:matters-restored`;
const RESTORE_LOCK = `${QUEUE_PREFIX}:matters-restoring`;
const RESTORE_LOCK_MS = 60_000;

/**
 * Puts the registry back as the archive has it: the archived hold.placed and hold.released events
 * are replayed in order, and a matter placed and not released since is open. An open matter's
 * entry is rewritten with what the archive says; one the archive says is released is dropped,
 * unless it was placed again since (a placement is on record only once its scan is done).
 * Matters the archive does not know (a placement in progress) are left alone.
 */
export async function restoreMatterRegistry(
  store: ObjectStore,
  redis: Redis,
  categories: readonly string[] = [OPERATOR_CATEGORY, 'default'],
): Promise<{ open: Matter[]; released: string[]; placements: Map<string, string> }> {
  const open = new Map<string, Matter>();
  /** Open matter -> the key of its placement's record. */
  const placements = new Map<string, string>();
  /** Matter -> when the archive says it was last released. */
  const released = new Map<string, number>();
  for (const { event, key } of await holdEvents(store, categories)) {
    const data = event.data as { matter?: unknown; reason?: unknown; actor?: unknown; selection?: unknown };
    if (typeof data.matter !== 'string') continue;
    if (event.type === 'hold.released') {
      open.delete(data.matter);
      placements.delete(data.matter);
      released.set(data.matter, Date.parse(event.occurredAt));
      continue;
    }
    const selection = holdSelection.safeParse(data.selection);
    if (!selection.success) continue;
    released.delete(data.matter);
    placements.set(data.matter, key);
    open.set(data.matter, {
      matter: data.matter,
      reason: String(data.reason ?? ''),
      actor: String(data.actor ?? ''),
      placedAt: event.occurredAt,
      selection: selection.data,
    });
  }
  for (const matter of open.values()) await redis.hset(MATTERS, matter.matter, JSON.stringify(matter));
  for (const [matter, at] of released) {
    const entry = await redis.hget(MATTERS, matter);
    if (entry && Date.parse((JSON.parse(entry) as Matter).placedAt) > at) continue;
    await redis.hdel(MATTERS, matter);
    await redis.del(heldBy(matter), placementOf(matter));
  }
  return { open: [...open.values()], released: [...released.keys()].sort(), placements };
}

/**
 * Resolves once the registry is known to match the archive. A Redis that lost its data (or a new
 * one) has no record of that: the first archiver to notice restores it from the archive while
 * the others wait, so no write is archived against an empty registry and left unheld. Only the
 * operator events' category is read, and any other that an earlier policy put them in.
 */
export async function ensureMatterRegistry(
  store: ObjectStore,
  redis: Redis,
  policy: RetentionPolicy,
  onRestored?: (restored: { open: Matter[]; released: string[] }) => void,
): Promise<void> {
  while ((await redis.exists(REGISTRY_RESTORED)) === 0) {
    const token = randomUUID();
    if ((await redis.set(RESTORE_LOCK, token, 'PX', RESTORE_LOCK_MS, 'NX')) !== 'OK') {
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    try {
      const restored = await restoreMatterRegistry(store, redis, [operatorCategoryOf(policy)]);
      await redis.set(REGISTRY_RESTORED, new Date().toISOString());
      onRestored?.(restored);
    } finally {
      if ((await redis.get(RESTORE_LOCK)) === token) await redis.del(RESTORE_LOCK);
    }
  }
}

export interface RebuiltMatter {
  matter: string;
  /** Versions the matter holds now. */
  held: number;
  /**
   * Versions it selects that were not held (written while no archiver knew of the matter).
   * Held now, after a `hold.reapplied` event recorded them.
   */
  newlyHeld: HoldManifestEntry[];
  eventKey?: string;
}

/**
 * Rebuild the matter registry from the archive alone (`holdfast rebuild`; see
 * `restoreMatterRegistry`), then apply each open matter's selection again, so what it selects is
 * held and recorded as held by it, including writes made while the registry was wrong. Safe to
 * run over a live registry.
 */
export async function rebuildMatters(
  store: ObjectStore,
  redis: Redis,
  policy: RetentionPolicy,
  input: { actor: string },
): Promise<{ open: RebuiltMatter[]; released: string[] }> {
  return withHoldsLock(redis, () => rebuildLocked(store, redis, policy, input));
}

async function rebuildLocked(
  store: ObjectStore,
  redis: Redis,
  policy: RetentionPolicy,
  input: { actor: string },
): Promise<{ open: RebuiltMatter[]; released: string[] }> {
  const { open, released, placements } = await restoreMatterRegistry(store, redis);
  await redis.set(REGISTRY_RESTORED, new Date().toISOString());
  const rebuilt: RebuiltMatter[] = [];
  for (const matter of open) {
    const manifest = await selectVersions(store, matter.selection);
    // The placement's record is held with what it selects (it is what this rebuild read).
    const placementKey = placements.get(matter.matter);
    const placement = placementKey ? await store.head(placementKey) : undefined;
    const own = placement
      ? [{ key: placement.key, versionId: placement.versionId, sha256: placement.sha256 }]
      : [];
    const newlyHeld: HoldManifestEntry[] = [];
    for (const o of [...manifest, ...own])
      if (!(await store.head(o.key, { versionId: o.versionId }))?.legalHold) newlyHeld.push(o);
    let eventKey: string | undefined;
    if (newlyHeld.length > 0) {
      // On record before any hold is set, like a placement.
      const { archived } = await archiveOperatorAction(store, policy, {
        type: 'hold.reapplied',
        actor: input.actor,
        subject: matter.matter,
        data: {
          matter: matter.matter,
          reason: 'matter registry rebuilt from the archive',
          manifest: newlyHeld,
        },
      });
      eventKey = archived.key;
    }
    await recordHeld(redis, [matter], manifest);
    if (placement) await redis.set(placementOf(matter.matter), member(placement.key, placement.versionId));
    for (const o of newlyHeld) await store.setLegalHold(o.key, o.versionId, true);
    rebuilt.push({
      matter: matter.matter,
      held: manifest.length,
      newlyHeld,
      ...(eventKey ? { eventKey } : {}),
    });
  }
  return { open: rebuilt, released };
}

/**
 * Archived hold placements and releases, oldest first (event ids are UUIDv7: time-ordered). Operator
 * events go where the policy of the day put them (`operatorCategoryOf`): a `policy.changed` event
 * found in one category whose old policy put them in another adds that category to the read.
 */
async function holdEvents(
  store: ObjectStore,
  categories: readonly string[],
): Promise<{ event: EventEnvelope; key: string }[]> {
  const events: { event: EventEnvelope; key: string }[] = [];
  const toRead = new Set(categories);
  for (const category of toRead) {
    for await (const { key } of store.list(`records/${category}/`)) {
      if (!key.endsWith('.json')) continue;
      const value = (await getJson(store, key)) as EventEnvelope;
      if (value.type === 'hold.placed' || value.type === 'hold.released') events.push({ event: value, key });
      else if (value.type === 'policy.changed') {
        const old = (value.data as { old?: { categories?: Record<string, unknown> } | null }).old;
        if (old?.categories) toRead.add(OPERATOR_CATEGORY in old.categories ? OPERATOR_CATEGORY : 'default');
      }
    }
  }
  const at = (e: EventEnvelope) => Date.parse(e.occurredAt);
  return events.sort(
    ({ event: a }, { event: b }) => at(a) - at(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
}

/**
 * Every current version the selection matches. Key-derived facts (project, channel, date) need
 * no reads; subject and participant are read from JSON events and sidecars. A sidecar's match
 * holds the blob it describes, and a message's match holds the media captured for it. One pass
 * over the listing, keeping only what matched: O(archive) in time (a metadata index is planned),
 * not in memory.
 */
async function selectVersions(store: ObjectStore, selection: HoldSelection): Promise<HoldManifestEntry[]> {
  const needsContent = selection.subject !== undefined || selection.participant !== undefined;
  const prefix =
    selection.prefix ??
    (selection.channel && selection.channel !== 'record' && selection.project
      ? `${selection.channel}/${selection.project}/`
      : '');
  const matched = new Set<string>();
  /** Media sidecars read but not matched themselves: held if their message is. */
  const media: { key: string; blobKey: string | undefined; messageKey: string }[] = [];
  for await (const { key } of store.list(prefix)) {
    let facts: ObjectFacts = { key, ...factsFromKey(key), participants: [] };
    let sidecar: Sidecar | undefined;
    const readIt = needsContent || (selection.project !== undefined && key.startsWith('records/'));
    if (readIt && key.endsWith('.json')) {
      const value = (await getJson(store, key)) as Record<string, unknown>;
      if (key.endsWith('.meta.json')) {
        sidecar = value as Sidecar;
        facts = factsFromSidecar(key, sidecar);
      } else facts = factsFromEvent(value as unknown as EventEnvelope, key);
    }
    if (matches(selection, facts)) {
      matched.add(key);
      // Listed by key, a sidecar may stand without its blob: read it to hold what it describes.
      if (!sidecar && selection.keys && key.endsWith('.meta.json'))
        sidecar = (await getJson(store, key)) as Sidecar;
      const blobKey = blobKeyOf(sidecar);
      if (blobKey) matched.add(blobKey);
    } else if (sidecar?.type === 'media' && typeof sidecar.message?.key === 'string') {
      media.push({ key, blobKey: blobKeyOf(sidecar), messageKey: sidecar.message.key });
    }
  }
  for (const m of media) {
    if (!matched.has(m.messageKey)) continue;
    matched.add(m.key);
    if (m.blobKey) matched.add(m.blobKey);
  }
  const manifest: HoldManifestEntry[] = [];
  for (const key of [...matched].sort()) {
    const head = await store.head(key);
    if (head) manifest.push({ key, versionId: head.versionId, sha256: head.sha256 });
  }
  return manifest;
}

function blobKeyOf(sidecar: Sidecar | undefined): string | undefined {
  return typeof sidecar?.blob?.key === 'string' ? sidecar.blob.key : undefined;
}

/** What selection reads from a `.meta.json` (a message's, a record document's or a media item's). */
interface Sidecar {
  type?: string;
  project?: string;
  channel?: string;
  occurredAt?: string;
  subject?: string;
  blob?: { key?: unknown };
  message?: Record<string, unknown> & { key?: unknown };
}

function factsFromKey(key: string): Omit<ObjectFacts, 'key' | 'participants'> {
  const parts = key.split('/');
  const iso = parts[parts.length - 1]!.split('_')[0];
  if (parts[0] === 'records') return { channel: 'record', occurredAt: iso };
  return { channel: parts[0], project: parts[1], occurredAt: iso };
}

function factsFromSidecar(key: string, sidecar: Sidecar): ObjectFacts {
  const message = sidecar.message ?? {};
  return {
    key,
    project: sidecar.project,
    channel: sidecar.channel,
    occurredAt: sidecar.occurredAt,
    subject: sidecar.subject,
    participants: participantsOf(message),
  };
}
