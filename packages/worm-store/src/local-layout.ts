/**
 * On-disk layout of the local WORM store (format 2; format 1 stores open and are upgraded):
 *
 * ```
 * <dir>/holdfast-worm-store.json          format marker
 * <dir>/tmp/<owner>.<…>                   in-flight temp files, <owner> = <host>-<pid>-<start ms>
 * <dir>/journal/<owner>.<inst>-<seq>.journal  write-ahead journal segments (local-journal.ts): puts
 *                                         not yet checkpointed; replayed on open if the owner died
 * <dir>/objects/<seg>/<seg>/…/<seg>/      one directory per key segment ("key node")
 *     @<versionId>.blob                   the version's bytes (0444, never rewritten); absent when
 *                                         they are small and kept in the manifest (format 2)
 *     @<versionId>.<generation>.json      its manifest; the highest generation is current (0444)
 * ```
 *
 * A key maps to a directory path, so head/put touch only that key's directory (never a listing
 * proportional to the archive) and list walks only the prefix's subtree, in key order.
 * Entries named `@…` belong to the store; a key segment starting with `@` or `%` is stored with a
 * `%` in front, so the two can never collide (`%` is stripped once when reading names back).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { InvalidKeyError, StoreCorruptError } from './errors.ts';

export const FORMAT_FILE = 'holdfast-worm-store.json';
export const FORMAT = Object.freeze({ format: 'holdfast-local-worm-store', version: 2 });
/** Format 1 differs only in never keeping bytes in a manifest: such a store is read as it is. */
export const UPGRADABLE_FORMAT_VERSION = 1;
/**
 * A version placed through the journal with at most this many bytes keeps them in its manifest
 * (base64), not in a blob file: one file fewer to create per version, which is most of what a
 * small put costs the kernel (`test/bench/tools/inline-body-probe.ts`: 1.55x versions/s).
 */
export const INLINE_MAX_BYTES = 4096;
export const OBJECTS_DIR = 'objects';
export const TMP_DIR = 'tmp';
export const JOURNAL_DIR = 'journal';
const MAX_NAME_BYTES = 255;

export function encodeSegment(segment: string): string {
  return segment.startsWith('@') || segment.startsWith('%') ? `%${segment}` : segment;
}

export function decodeSegment(name: string): string {
  return name.startsWith('%') ? name.slice(1) : name;
}

/** The key node directory of a (validated) key. */
export function keyDir(root: string, key: string): string {
  const names = key.split('/').map(encodeSegment);
  for (const name of names) {
    if (Buffer.byteLength(name) > MAX_NAME_BYTES) {
      throw new InvalidKeyError(
        key,
        `the local store allows at most ${MAX_NAME_BYTES} bytes per "/"-separated segment`,
      );
    }
  }
  return join(root, OBJECTS_DIR, ...names);
}

export function blobName(versionId: string): string {
  return `@${versionId}.blob`;
}

export function manifestName(versionId: string, generation: number): string {
  return `@${versionId}.${generation}.json`;
}

export type VersionEntry =
  | { versionId: string; kind: 'blob' }
  | { versionId: string; kind: 'manifest'; generation: number };

const ENTRY = /^@([0-9A-Z]{26})\.(?:(blob)|(0|[1-9][0-9]{0,8})\.json)$/;

export function parseEntryName(name: string): VersionEntry | undefined {
  const match = ENTRY.exec(name);
  if (!match) return undefined;
  const versionId = match[1]!;
  if (match[2]) return { versionId, kind: 'blob' };
  return { versionId, kind: 'manifest', generation: Number(match[3]) };
}

/** Everything about one version except its bytes. Each generation is a complete manifest. */
export interface VersionManifest {
  format: 1;
  key: string;
  versionId: string;
  size: number;
  sha256: string;
  contentType: string;
  metadata: Record<string, string>;
  mode: 'COMPLIANCE';
  retainUntil: string;
  legalHold: boolean;
  lastModified: string;
  /** Set on the tombstone generation that deleteVersion writes before removing the files. */
  deletedAt?: string;
  /** The bytes, base64, of a version of at most INLINE_MAX_BYTES; absent: they are in the blob. */
  inline?: string;
}

export function parseManifest(text: string, where: string): VersionManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new StoreCorruptError(where, 'manifest is not JSON');
  }
  const m = value as Partial<VersionManifest> | null;
  if (
    typeof m !== 'object' ||
    m === null ||
    m.format !== 1 ||
    typeof m.key !== 'string' ||
    typeof m.versionId !== 'string' ||
    typeof m.size !== 'number' ||
    typeof m.sha256 !== 'string' ||
    typeof m.contentType !== 'string' ||
    typeof m.metadata !== 'object' ||
    m.mode !== 'COMPLIANCE' ||
    typeof m.retainUntil !== 'string' ||
    typeof m.legalHold !== 'boolean' ||
    typeof m.lastModified !== 'string' ||
    (m.inline !== undefined && typeof m.inline !== 'string')
  ) {
    throw new StoreCorruptError(where, 'manifest is not a format-1 version manifest');
  }
  return m as VersionManifest;
}

/**
 * Identifies the process owning a temp file, so recovery never removes a live writer's files.
 * `host` is a short hash of the hostname: pids are only comparable within one host (container).
 */
export interface TempOwner {
  host: string;
  pid: number;
  startMs: number;
}

export function hostTag(hostname: string): string {
  return createHash('sha256').update(hostname).digest('hex').slice(0, 8);
}

export function ownerTag(owner: TempOwner): string {
  return `${owner.host}-${owner.pid}-${owner.startMs}`;
}

export function parseTempName(name: string): { owner: TempOwner; rest: string } | undefined {
  const match = /^([0-9a-f]{8})-(\d+)-(\d+)\.(.+)$/.exec(name);
  if (!match) return undefined;
  return { owner: { host: match[1]!, pid: Number(match[2]), startMs: Number(match[3]) }, rest: match[4]! };
}
