import { createHash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Stored files are read-only: a guard against accidents, not a security boundary. */
export const READ_ONLY = 0o444;

const COPY_CHUNK = 64 * 1024;

/** Makes the directory's entries (creations, renames, unlinks) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Creates a new file (never overwrites), writes it fully and fsyncs it. */
export async function writeFileSynced(path: string, data: Uint8Array | string): Promise<void> {
  const handle = await open(path, 'wx', READ_ONLY);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Copies `source` into a new file (never overwrites) through one reused 64 KiB buffer, fsyncs
 * it, and returns the size and SHA-256 of the bytes that were written: memory stays bounded, and
 * a large file leaves no trail of chunk garbage for the GC to catch up with.
 */
export async function copyFileSynced(
  source: string,
  path: string,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(COPY_CHUNK);
  let size = 0;
  const input = await open(source, 'r');
  try {
    const output = await open(path, 'wx', READ_ONLY);
    try {
      for (;;) {
        const { bytesRead } = await input.read(buffer, 0, COPY_CHUNK, null);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        for (let offset = 0; offset < bytesRead; ) {
          offset += (await output.write(chunk, offset, bytesRead - offset)).bytesWritten;
        }
        size += bytesRead;
      }
      await output.sync();
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
  return { size, sha256: hash.digest('hex') };
}

/** `mkdir -p` whose new entries survive a crash: each created directory is fsynced in its parent. */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  const parents: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    parents.push(dirname(d));
    if (d === first || dirname(d) === d) break;
  }
  for (const parent of parents.reverse()) await fsyncDir(parent);
}
