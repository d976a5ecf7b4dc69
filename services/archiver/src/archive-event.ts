import {
  type ArchiveJobResult,
  canonicalJson,
  type EmailSubmittedData,
  type EventEnvelope,
  extensionFor,
  messageKey,
  type RetentionPolicy,
  recordDocument,
  recordKey,
  sha256Hex,
  sidecarKey,
  ValidationError,
  zodIssues,
} from '@holdfast/core';
import { ObjectConflictError, type ObjectHead, type ObjectStore, putOnce } from '@holdfast/worm-store';
import { PayloadHashMismatchError } from './errors.ts';

/** Bumped when the layout of archived objects or sidecars changes. */
export const ARCHIVE_VERSION = 1;

interface PlannedObject {
  key: string;
  body: Uint8Array;
  sha256: string;
  contentType: string;
  /** A `.meta.json` describing the blob before it, retention included. */
  sidecar?: true;
}

interface WrittenObject {
  versionId: string;
  created: boolean;
  sha256: string;
  /** What the version is locked until: an earlier run's version keeps its own date. */
  retainUntil: Date;
}

const EVENT_ID_METADATA = 'holdfast-event-id';
/**
 * How long an event is locked whose retention had already ended when it was archived (archived
 * late, or dated far back): kept, not refused, so nothing accepted is lost.
 */
const LATE_LOCK_MS = 24 * 3600 * 1000;

/**
 * Write one event to the WORM store under its category's retention, counted from the event's
 * own date. Idempotent: keys are derived from content, puts are conditional, and an object
 * already present with the same hash counts as written. Safe to run twice, or to crash anywhere
 * and run again.
 */
export async function archiveEvent(
  store: ObjectStore,
  policy: RetentionPolicy,
  event: EventEnvelope,
  options: { legalHold?: boolean } = {},
): Promise<ArchiveJobResult> {
  const retainUntil = lockUntil(policy, event);
  const objects = plan(event, retainUntil);
  const written: WrittenObject[] = [];
  for (const object of objects)
    written.push(await writeObject(store, event, object, retainUntil, options.legalHold === true));
  const [blob, blobWrite] = [objects[0]!, written[0]!];
  return {
    key: blob.key,
    versionId: blobWrite.versionId,
    sha256: blob.sha256,
    retainUntil: blobWrite.retainUntil.toISOString(),
    created: blobWrite.created,
    objects: objects.map((o, i) => ({
      key: o.key,
      versionId: written[i]!.versionId,
      sha256: written[i]!.sha256,
    })),
  };
}

/** The policy's retain-until, or, when that has passed already, a short lock from now. */
function lockUntil(policy: RetentionPolicy, event: EventEnvelope): Date {
  const retainUntil = policy.retainUntil(event.category, event.occurredAt);
  const earliest = Date.now() + LATE_LOCK_MS;
  return retainUntil.getTime() >= earliest ? retainUntil : new Date(earliest);
}

/**
 * One object, written once. A version an earlier run of this event left at the key is taken as
 * written, and gets the legal hold this run asks for if it lacks it (a matter may have opened in
 * between). An earlier run's sidecar may differ from this run's in what the policy said then (its
 * retainUntil): the first one stands, like the lock it describes.
 */
async function writeObject(
  store: ObjectStore,
  event: EventEnvelope,
  object: PlannedObject,
  retainUntil: Date,
  legalHold: boolean,
): Promise<WrittenObject> {
  let existing: ObjectHead;
  try {
    const put = await putOnce(store, {
      key: object.key,
      body: object.body,
      sha256: object.sha256,
      contentType: object.contentType,
      retainUntil,
      ...(legalHold ? { legalHold: true } : {}),
      ifNoneMatch: true,
      metadata: { [EVENT_ID_METADATA]: event.id, 'holdfast-archive-version': String(ARCHIVE_VERSION) },
    });
    if (put.created) return { versionId: put.versionId, created: true, sha256: object.sha256, retainUntil };
    existing = put.existing;
  } catch (error) {
    if (!(object.sidecar && error instanceof ObjectConflictError)) throw error;
    const found = await store.head(object.key);
    if (found?.metadata[EVENT_ID_METADATA] !== event.id) throw error;
    existing = found;
  }
  if (legalHold && !existing.legalHold) await store.setLegalHold(object.key, existing.versionId, true);
  return {
    versionId: existing.versionId,
    created: false,
    sha256: existing.sha256,
    retainUntil: existing.retainUntil ?? retainUntil,
  };
}

/** The key an event's (first) object is archived under. */
export function archiveKeyOf(event: EventEnvelope): string {
  return plan(event, new Date(0))[0]!.key;
}

function plan(event: EventEnvelope, retainUntil: Date): PlannedObject[] {
  if (event.channel === 'record' && event.data.document !== undefined) {
    const parsed = recordDocument.safeParse(event.data.document);
    if (!parsed.success)
      throw new ValidationError('record document', zodIssues(parsed.error, 'data.document'));
    const { base64, ...document } = parsed.data;
    const body = Buffer.from(base64, 'base64');
    const sha256 = sha256Hex(body);
    if (sha256 !== document.sha256 || body.byteLength !== document.size)
      throw new PayloadHashMismatchError(event.id);
    const key = recordKey({
      category: event.category,
      occurredAt: event.occurredAt,
      sha256,
      ext: extensionFor(document.contentType),
    });
    const sidecar = Buffer.from(
      canonicalJson({
        ...describe(event, retainUntil),
        blob: { key, sha256, size: body.byteLength, contentType: document.contentType },
        record: { ...event.data, document },
      }),
    );
    return [
      { key, body, sha256, contentType: document.contentType },
      {
        key: sidecarKey(key),
        body: sidecar,
        sha256: sha256Hex(sidecar),
        contentType: 'application/json',
        sidecar: true,
      },
    ];
  }
  if (event.channel === 'record') {
    const body = Buffer.from(canonicalJson(event));
    const sha256 = sha256Hex(body);
    return [
      {
        key: recordKey({ category: event.category, occurredAt: event.occurredAt, sha256, ext: 'json' }),
        body,
        sha256,
        contentType: 'application/json',
      },
    ];
  }
  if (event.type === 'message.submitted' && event.channel === 'email') {
    const data = event.data as EmailSubmittedData;
    const body = Buffer.from(data.mime, 'utf8');
    const sha256 = sha256Hex(body);
    if (sha256 !== data.sha256) throw new PayloadHashMismatchError(event.id);
    const key = messageKey({
      channel: 'email',
      project: event.project,
      direction: 'outbound',
      occurredAt: event.occurredAt,
      sha256,
      ext: 'eml',
    });
    const { mime: _mime, ...described } = data;
    const sidecar = Buffer.from(
      canonicalJson({
        ...describe(event, retainUntil),
        blob: { key, sha256, size: body.byteLength, contentType: 'message/rfc822' },
        message: described,
      }),
    );
    return [
      { key, body, sha256, contentType: 'message/rfc822' },
      {
        key: sidecarKey(key),
        body: sidecar,
        sha256: sha256Hex(sidecar),
        contentType: 'application/json',
        sidecar: true,
      },
    ];
  }
  // Every other message event (sent, delivered, …) is archived as its canonical JSON.
  const body = Buffer.from(canonicalJson(event));
  const sha256 = sha256Hex(body);
  const sid = typeof event.data.providerMessageId === 'string' ? event.data.providerMessageId : undefined;
  const direction = event.direction === 'inbound' ? 'inbound' : 'outbound';
  return [
    {
      key: messageKey({
        channel: event.channel,
        project: event.project,
        direction,
        occurredAt: event.occurredAt,
        sha256,
        sid,
        ext: 'json',
      }),
      body,
      sha256,
      contentType: 'application/json',
    },
  ];
}

/** The part of a sidecar every blob shares: who, when, what, and until when it is locked. */
function describe(event: EventEnvelope, retainUntil: Date): Record<string, unknown> {
  return {
    archiveVersion: ARCHIVE_VERSION,
    project: event.project,
    capturedAt: event.recordedAt,
    occurredAt: event.occurredAt,
    eventId: event.id,
    type: event.type,
    channel: event.channel,
    direction: event.direction,
    category: event.category,
    subject: event.subject,
    retainUntil: retainUntil.toISOString(),
  };
}
