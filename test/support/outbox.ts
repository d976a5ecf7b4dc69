import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface OutboxEntry {
  eventId: string;
  providerMessageId: string;
  raw: Buffer;
  envelope: { from: string; to: string[] };
  writtenAt: Date;
}

/** Every send the outbox transport recorded, one entry per send call. */
export async function readOutbox(dir: string): Promise<OutboxEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const entries: OutboxEntry[] = [];
  for (const name of names.filter((n) => n.endsWith('.eml'))) {
    const [eventId, sendId] = name.split('.') as [string, string];
    const base = join(dir, `${eventId}.${sendId}`);
    entries.push({
      eventId,
      providerMessageId: `outbox-${sendId}`,
      raw: await readFile(`${base}.eml`),
      envelope: JSON.parse(await readFile(`${base}.envelope.json`, 'utf8')),
      writtenAt: (await stat(`${base}.eml`)).mtime,
    });
  }
  return entries;
}
