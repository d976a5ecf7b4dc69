import { canonicalJson, extensionFor, messageKey, sha256Hex, sidecarKey } from '@holdfast/core';
import { type ObjectHead, type ObjectStore, putOnce } from '@holdfast/worm-store';
import type { MediaJob } from './media-job.ts';
import type { FetchedMedia } from './providers/fetched-media.ts';

/** The archiver's layout version, which media objects and their sidecars follow. */
export const ARCHIVE_VERSION = 1;

export interface ArchivedMedia {
  key: string;
  versionId: string;
  sidecarKey: string;
  sidecarVersionId: string;
  /** When the media version was written (its Last-Modified): the same on every retry. */
  capturedAt: string;
  retainUntil: string;
  legalHold: boolean;
  /** False when an earlier attempt of the same job had already written the media. */
  created: boolean;
  /** False when the parent message was not in the store (its hold and retention could not be read). */
  parentFound: boolean;
}

/**
 * Write downloaded media beside its message: same channel, project and instant as the message,
 * the media's own hash, a sid naming it media n of that message; then its `.meta.json` sidecar.
 * Retained as long as the message (the later of the job's date and the message's current one),
 * and held if the message is held. Idempotent: conditional puts, and an object already there with
 * the same hash counts as written; the sidecar is built only from facts that do not change
 * between attempts, so a retry writes the very same bytes.
 */
export async function archiveMedia(
  store: ObjectStore,
  job: MediaJob,
  media: FetchedMedia,
): Promise<ArchivedMedia> {
  const parent = await store.head(job.messageKey);
  const jobRetainUntil = new Date(job.retainUntil);
  const retainUntil =
    parent?.retainUntil && parent.retainUntil.getTime() > jobRetainUntil.getTime()
      ? parent.retainUntil
      : jobRetainUntil;
  const legalHold = parent?.legalHold ?? false;
  const index = job.media.index;
  const key = messageKey({
    channel: job.channel,
    project: job.project,
    direction: 'inbound',
    occurredAt: job.messageOccurredAt,
    sha256: media.sha256,
    // Leave room for the suffix within the key schema's 128-character sid.
    sid: `${(job.messageSid ?? 'message').slice(0, 100)}-media-${index}`,
    ext: extensionFor(media.contentType),
  });
  const metadata = {
    'holdfast-event-id': job.eventId,
    'holdfast-archive-version': String(ARCHIVE_VERSION),
    'holdfast-media-index': String(index),
  };
  const common = { retainUntil, ...(legalHold ? { legalHold: true } : {}), ifNoneMatch: true, metadata };

  const blob = await putOnce(store, {
    key,
    body: { path: media.path, size: media.size },
    sha256: media.sha256,
    contentType: media.contentType,
    ...common,
  });
  const head = await catchUp(store, key, blob.versionId, retainUntil, legalHold);
  const capturedAt = head.lastModified.toISOString();

  const sidecar = Buffer.from(
    canonicalJson({
      archiveVersion: ARCHIVE_VERSION,
      type: 'media',
      project: job.project,
      channel: job.channel,
      direction: 'inbound',
      provider: job.provider,
      capturedAt,
      retainUntil: job.retainUntil,
      message: {
        eventId: job.eventId,
        key: job.messageKey,
        occurredAt: job.messageOccurredAt,
        ...(job.subject === undefined ? {} : { subject: job.subject }),
        ...(job.category === undefined ? {} : { category: job.category }),
      },
      media: {
        index,
        source: media.source,
        ...(media.providerSha256 === undefined ? {} : { providerSha256: media.providerSha256 }),
      },
      blob: { key, sha256: media.sha256, size: media.size, contentType: media.contentType },
    }),
  );
  const meta = await putOnce(store, {
    key: sidecarKey(key),
    body: sidecar,
    sha256: sha256Hex(sidecar),
    contentType: 'application/json',
    ...common,
  });
  if (!meta.created) await catchUp(store, sidecarKey(key), meta.versionId, retainUntil, legalHold);
  return {
    key,
    versionId: blob.versionId,
    sidecarKey: sidecarKey(key),
    sidecarVersionId: meta.versionId,
    capturedAt,
    retainUntil: retainUntil.toISOString(),
    legalHold,
    created: blob.created,
    parentFound: parent !== undefined,
  };
}

/**
 * Bring a version written by an earlier attempt up to date: the message may have been held, or
 * its retention extended, since. Returns the version's head.
 */
async function catchUp(
  store: ObjectStore,
  key: string,
  versionId: string,
  retainUntil: Date,
  legalHold: boolean,
): Promise<ObjectHead> {
  const head = await store.head(key, { versionId });
  if (!head) throw new Error(`${key} version ${versionId} vanished after it was written`);
  if (legalHold && !head.legalHold) await store.setLegalHold(key, versionId, true);
  if (head.retainUntil && head.retainUntil.getTime() < retainUntil.getTime()) {
    await store.extendRetention(key, versionId, retainUntil);
  }
  return head;
}
