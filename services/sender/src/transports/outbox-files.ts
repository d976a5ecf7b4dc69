import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newEventId } from '@holdfast/core';
import { PermanentSendError, SendError } from '../errors.ts';
import { DirectorySync } from './directory-sync.ts';
import type { LookupResult, SendResult } from './transport.ts';

/** One file of a send: its name ends with `suffix`, after `<eventId>.<sendId>`. */
export interface OutboxFile {
  suffix: string;
  bytes: Uint8Array;
}

/** Event ids become file names: no separators, no dots (the dot splits event id and send id). */
const SAFE_EVENT_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * A directory that keeps a copy of every send, like a provider's log: each send call writes its
 * files as `<eventId>.<sendId><suffix>`, each durably (written and synced under a temp name, then
 * renamed in order, the marker last, so its presence means "sent"). One sync of the directory
 * makes a send's renames durable, and sends that finish their renames together share it. Send
 * ids are UUIDv7, so they sort by time and the first send of an event is the smallest.
 */
export class OutboxFiles {
  readonly dir: string;
  readonly #marker: string;
  readonly #dirSync: DirectorySync;

  /** `marker`: the suffix of the file whose presence means the send happened, e.g. `.eml`. */
  constructor(dir: string, marker: string) {
    this.dir = dir;
    this.#marker = marker;
    this.#dirSync = new DirectorySync(dir);
  }

  /** Writes the files (the marker last) and returns the send's provider message id. */
  async write(eventId: string, files: readonly OutboxFile[]): Promise<SendResult> {
    checkEventId(eventId);
    if (files.at(-1)?.suffix !== this.#marker)
      throw new Error(`the last outbox file must be the ${this.#marker}`);
    const sendId = newEventId();
    const paths = files.map((file) => join(this.dir, `${eventId}.${sendId}${file.suffix}`));
    let markerInPlace = false;
    try {
      await this.#writeTemps(paths, files);
      for (const path of paths) await rename(`${path}.tmp`, path);
      markerInPlace = true;
      // The renames are durable only once the directory's entries are.
      await this.#dirSync.sync();
    } catch (error) {
      // Before the marker's rename nothing counts as sent; after it, only its durability is in doubt.
      throw new SendError('outbox', `could not write to ${this.dir}: ${(error as Error).message}`, {
        retryable: true,
        reachedProvider: markerInPlace ? 'unknown' : 'no',
        cause: error,
      });
    }
    return { providerMessageId: `outbox-${sendId}` };
  }

  async #writeTemps(paths: readonly string[], files: readonly OutboxFile[]): Promise<void> {
    const writeAll = () => Promise.all(files.map((file, i) => writeSynced(`${paths[i]}.tmp`, file.bytes)));
    try {
      await writeAll();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      // No directory yet (the first send), or an operator removed it: make it, then write once more.
      await mkdir(this.dir, { recursive: true });
      await writeAll();
    }
  }

  /** The first send of this event, if there was one. */
  async find(eventId: string): Promise<LookupResult> {
    checkEventId(eventId);
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { found: false };
      throw new SendError('outbox', `could not read ${this.dir}: ${(error as Error).message}`, {
        retryable: true,
        reachedProvider: 'unknown',
        cause: error,
      });
    }
    const prefix = `${eventId}.`;
    const sendIds = names
      .filter((name) => name.startsWith(prefix) && name.endsWith(this.#marker))
      .map((name) => name.slice(prefix.length, name.length - this.#marker.length))
      .filter((sendId) => sendId.length > 0 && !sendId.includes('.'))
      .sort();
    return sendIds[0] === undefined
      ? { found: false }
      : { found: true, providerMessageId: `outbox-${sendIds[0]}` };
  }
}

function checkEventId(eventId: string): void {
  if (!SAFE_EVENT_ID.test(eventId)) {
    throw new PermanentSendError(
      'outbox',
      'invalid-event-id',
      `event id ${JSON.stringify(eventId)} cannot name a file`,
    );
  }
}

/** A new file, its bytes on disk before it is closed (`flush` syncs it). */
function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  return writeFile(path, bytes, { flag: 'wx', flush: true });
}
