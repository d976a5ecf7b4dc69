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
import { type ObjectStore, putOnce } from '@holdfast/worm-store';
import { PayloadHashMismatchError } from './errors.ts';

/** Bumped when the layout of archived objects or sidecars changes. */
export const ARCHIVE_VERSION = 1;

interface PlannedObject {
  key: string;
  body: Uint8Array;
  sha256: string;
  contentType: string;
}

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
  const retainUntil = policy.retainUntil(event.category, event.occurredAt);
  const objects = plan(event, retainUntil);
  let first: { versionId: string; created: boolean } | undefined;
  const written: { key: string; versionId: string; sha256: string }[] = [];
  for (const object of objects) {
    const put = await putOnce(store, {
      key: object.key,
      body: object.body,
      sha256: object.sha256,
      contentType: object.contentType,
      retainUntil,
      ...(options.legalHold ? { legalHold: true } : {}),
      ifNoneMatch: true,
      metadata: { 'holdfast-event-id': event.id, 'holdfast-archive-version': String(ARCHIVE_VERSION) },
    });
    first ??= put;
    written.push({ key: object.key, versionId: put.versionId, sha256: object.sha256 });
  }
  const blob = objects[0]!;
  return {
    key: blob.key,
    versionId: first!.versionId,
    sha256: blob.sha256,
    retainUntil: retainUntil.toISOString(),
    created: first!.created,
    objects: written,
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
      { key: sidecarKey(key), body: sidecar, sha256: sha256Hex(sidecar), contentType: 'application/json' },
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
      { key: sidecarKey(key), body: sidecar, sha256: sha256Hex(sidecar), contentType: 'application/json' },
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
