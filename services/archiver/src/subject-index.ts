import { type ArchiveJobResult, QUEUE_PREFIX, type RetentionPolicy, sidecarKey } from '@holdfast/core';
import { RedisScript } from '@holdfast/producer';
import type { ObjectStore } from '@holdfast/worm-store';
import type { Redis } from 'ioredis';

/**
 * Where the archiver finds a subject's objects when a trigger (e.g. `relationship.ended`) extends
 * them: a projection in Redis, written at archive time for triggered categories only, and
 * rebuildable from the archive (`rebuildSubjectIndex`).
 *
 *   holdfast:subject:<project>:<category>:<subject>  set of `<key>\u0000<versionId>`
 *   holdfast:trigger:<project>:<eventType>:<subject>  ISO date of the latest trigger event seen
 *
 * The project is part of both keys: subjects (customer ids, account numbers) are only unique
 * within a project, and one archive serves many. The subject comes last so any character in it
 * is unambiguous.
 */
export interface IndexedVersion {
  key: string;
  versionId: string;
}

const SEP = '\u0000';

export const subjectIndexKey = (project: string, category: string, subject: string): string =>
  `${QUEUE_PREFIX}:subject:${project}:${category}:${subject}`;

export const triggerMarkerKey = (project: string, eventType: string, subject: string): string =>
  `${QUEUE_PREFIX}:trigger:${project}:${eventType}:${subject}`;

export async function indexSubjectVersions(
  redis: Redis,
  project: string,
  category: string,
  subject: string,
  versions: readonly IndexedVersion[],
): Promise<void> {
  if (versions.length === 0) return;
  await redis.sadd(
    subjectIndexKey(project, category, subject),
    ...versions.map((v) => `${v.key}${SEP}${v.versionId}`),
  );
}

export async function subjectVersions(
  redis: Redis,
  project: string,
  category: string,
  subject: string,
): Promise<IndexedVersion[]> {
  const members = await redis.smembers(subjectIndexKey(project, category, subject));
  return members
    .map((m) => {
      const at = m.indexOf(SEP);
      return { key: m.slice(0, at), versionId: m.slice(at + 1) };
    })
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Keeps the later of the stored and the given date (atomically), and answers with it. */
const KEEP_LATEST = new RedisScript(`
local current = redis.call('GET', KEYS[1])
if (not current) or current < ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return current`);

/**
 * Remember that a trigger event happened for a subject. Returns the latest such date: a subject's
 * relationship may end, resume and end again, and an older, late delivery must not count.
 */
export async function recordTrigger(
  redis: Redis,
  project: string,
  eventType: string,
  subject: string,
  occurredAt: string | Date,
): Promise<string> {
  const iso = new Date(occurredAt).toISOString();
  return (await KEEP_LATEST.run(redis, [triggerMarkerKey(project, eventType, subject)], [iso])) as string;
}

export async function lastTrigger(
  redis: Redis,
  project: string,
  eventType: string,
  subject: string,
): Promise<string | undefined> {
  return (await redis.get(triggerMarkerKey(project, eventType, subject))) ?? undefined;
}

/**
 * Every object version one archive write produced: the blob and, for a blob that is not itself
 * JSON (an `.eml`, a contract PDF), its `.meta.json` sidecar, which carries the same retention.
 */
export async function archivedVersions(
  store: Pick<ObjectStore, 'head'>,
  archived: Pick<ArchiveJobResult, 'key' | 'versionId' | 'objects'>,
): Promise<IndexedVersion[]> {
  if (archived.objects && archived.objects.length > 0)
    return archived.objects.map((o) => ({ key: o.key, versionId: o.versionId }));
  const out: IndexedVersion[] = [{ key: archived.key, versionId: archived.versionId }];
  if (!archived.key.endsWith('.json')) {
    const sidecar = await store.head(sidecarKey(archived.key));
    if (sidecar) out.push({ key: sidecar.key, versionId: sidecar.versionId });
  }
  return out;
}

/**
 * Rebuild the subject index and the trigger markers from the archive alone (after losing Redis):
 * every record and sidecar is read once. Adding is idempotent, so this can run over a live index.
 * It does not itself extend anything; extensions already made are in the objects' retention.
 */
export async function rebuildSubjectIndex(
  store: Pick<ObjectStore, 'list' | 'get' | 'head'>,
  redis: Redis,
  policy: RetentionPolicy,
): Promise<{ objects: number; triggers: number }> {
  const triggerTypes = new Set([...policy.triggers.values()].map((t) => t.extendOn));
  let objects = 0;
  let triggers = 0;
  for await (const { key } of store.list('')) {
    if (!key.endsWith('.json')) continue;
    const { head, body } = await store.get(key);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      continue;
    }
    const { project, category, subject, type, occurredAt } = doc;
    if (typeof project !== 'string' || typeof subject !== 'string' || typeof category !== 'string') continue;
    if (policy.triggerOf(category)) {
      const versions: IndexedVersion[] = [{ key, versionId: head.versionId }];
      const blobKey = (doc.blob as { key?: unknown } | undefined)?.key;
      if (key.endsWith('.meta.json') && typeof blobKey === 'string') {
        const blob = await store.head(blobKey);
        if (blob) versions.push({ key: blob.key, versionId: blob.versionId });
      }
      await indexSubjectVersions(redis, project, category, subject, versions);
      objects += versions.length;
    }
    if (typeof type === 'string' && triggerTypes.has(type) && typeof occurredAt === 'string') {
      await recordTrigger(redis, project, type, subject, occurredAt);
      triggers++;
    }
  }
  return { objects, triggers };
}
