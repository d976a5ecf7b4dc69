import { randomUUID } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { ignoreMissing, type SyncCounter, syncDir, syncFile } from './durable-fs.ts';

const ID_FILE = 'spool-id';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The spool directory's identity: made once, kept across restarts, so whatever the process that
 * owns the spool is told under it (its ack stream) reaches it again after a restart. Written
 * whole under a temporary name and renamed into place. Called with the directory locked.
 */
export async function spoolIdOf(dir: string, sync: SyncCounter): Promise<string> {
  const file = path.join(dir, ID_FILE);
  const existing = (await readFile(file, 'utf8').catch(ignoreMissing))?.trim();
  if (existing !== undefined && UUID.test(existing)) return existing;
  const id = randomUUID();
  const temp = `${file}.tmp`;
  const fh = await open(temp, 'w');
  try {
    await fh.writeFile(`${id}\n`);
    await syncFile(fh, sync);
  } finally {
    await fh.close();
  }
  await rename(temp, file);
  await syncDir(dir, sync);
  return id;
}
