import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

/** Shared by everything that syncs on behalf of one spool, for `stats()`. */
export interface SyncCounter {
  fsyncs: number;
  lastFsyncMs: number;
}

/** A positional write may be short (signals, quotas); loop until every byte is handed over. */
export async function writeFully(fh: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const { bytesWritten } = await fh.write(data, done, data.byteLength - done, position + done);
    done += bytesWritten;
  }
}

/** Reads until `buffer` is full or EOF; returns the bytes read. */
export async function readFully(fh: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buffer.length) {
    const { bytesRead } = await fh.read(buffer, done, buffer.length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** fdatasync: record data plus the file size, which is all an appended record needs. */
export async function syncData(fh: FileHandle, counter: SyncCounter): Promise<void> {
  const started = performance.now();
  await fh.datasync();
  counter.fsyncs++;
  counter.lastFsyncMs = performance.now() - started;
}

export async function syncFile(fh: FileHandle, counter: SyncCounter): Promise<void> {
  await fh.sync();
  counter.fsyncs++;
}

/** Makes creations, renames and unlinks of directory entries durable. */
export async function syncDir(dir: string, counter: SyncCounter): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
    counter.fsyncs++;
  } finally {
    await fh.close();
  }
}

/** For `.catch()`: a file that is already gone reads as `undefined`; any other error propagates. */
export function ignoreMissing(err: unknown): undefined {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  return undefined;
}
