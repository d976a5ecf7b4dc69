import type { Channel, Direction } from './events.ts';

/**
 * The archive's key schema, fixed by its first users:
 *   <channel>/<project>/<direction>/<yyyy>/<mm>/<dd>/<iso8601>_<hash12>[_<sid>].<ext>
 *   records/<category>/<yyyy>/<mm>/<dd>/<iso8601>_<hash12>.<ext>
 * Keys are derived only from the content and its own date, so writing the same event twice
 * lands on the same key: that is what makes archiving idempotent.
 */
export interface MessageKeyParts {
  channel: Exclude<Channel, 'record'>;
  project: string;
  direction: Exclude<Direction, 'internal'>;
  occurredAt: string | Date;
  sha256: string;
  /** Provider id (SES message id, Twilio SID, WhatsApp wamid); unsafe characters are replaced. */
  sid?: string;
  ext: string;
}

export interface RecordKeyParts {
  category: string;
  occurredAt: string | Date;
  sha256: string;
  ext: string;
}

export function messageKey(parts: MessageKeyParts): string {
  const sid = parts.sid ? `_${safeSid(parts.sid)}` : '';
  return `${parts.channel}/${parts.project}/${parts.direction}/${datePath(parts.occurredAt)}_${hash12(parts.sha256)}${sid}.${parts.ext}`;
}

export function recordKey(parts: RecordKeyParts): string {
  return `records/${parts.category}/${datePath(parts.occurredAt)}_${hash12(parts.sha256)}.${parts.ext}`;
}

/** The `.meta.json` sidecar that sits beside every message blob. */
export function sidecarKey(blobKey: string): string {
  const dot = blobKey.lastIndexOf('.');
  const slash = blobKey.lastIndexOf('/');
  return `${dot > slash ? blobKey.slice(0, dot) : blobKey}.meta.json`;
}

function datePath(at: string | Date): string {
  const iso = (at instanceof Date ? at : new Date(at)).toISOString();
  return `${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso}`;
}

function hash12(sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new TypeError('sha256 must be 64 lowercase hex characters');
  return sha256.slice(0, 12);
}

function safeSid(sid: string): string {
  return sid.replace(/[^A-Za-z0-9.=-]/g, '-').slice(0, 128);
}
