import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Stored files are read-only: a guard against accidents, not a security boundary. */
export const READ_ONLY = 0o444;

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
