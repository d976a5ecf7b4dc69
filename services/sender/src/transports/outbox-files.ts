import { mkdir, open, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { newEventId } from '@holdfast/core';
import { PermanentSendError, SendError } from '../errors.ts';
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
 * files as `<eventId>.<sendId><suffix>`, each durably (fsync, atomic rename, fsync of the
 * directory). The marker file is written last, so its presence means "sent". Send ids are UUIDv7,
 * so they sort by time and the first send of an event is the smallest.
 */
export class OutboxFiles {
  readonly dir: string;
  readonly #marker: string;

  /** `marker`: the suffix of the file whose presence means the send happened, e.g. `.eml`. */
  constructor(dir: string, marker: string) {
    this.dir = dir;
    this.#marker = marker;
  }

  /** Writes the files in order (the marker last) and returns the send's provider message id. */
  async write(eventId: string, files: readonly OutboxFile[]): Promise<SendResult> {
    checkEventId(eventId);
    if (files.at(-1)?.suffix !== this.#marker)
      throw new Error(`the last outbox file must be the ${this.#marker}`);
    const sendId = newEventId();
    let markerInPlace = false;
    try {
      await mkdir(this.dir, { recursive: true });
      for (const file of files) {
        await writeDurably(this.dir, `${eventId}.${sendId}${file.suffix}`, file.bytes, () => {
          markerInPlace = file.suffix === this.#marker;
        });
      }
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

async function writeDurably(
  dir: string,
  name: string,
  bytes: Uint8Array,
  renamed: () => void,
): Promise<void> {
  const path = join(dir, name);
  const temp = `${path}.tmp`;
  const file = await open(temp, 'wx');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  renamed();
  // The rename is durable only once the directory entry is.
  const directory = await open(dir, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
