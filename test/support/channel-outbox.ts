import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface ChannelOutboxEntry {
  eventId: string;
  providerMessageId: string;
  /** What the transport would have handed the provider. */
  message: Record<string, unknown>;
  writtenAt: Date;
}

/** Every send the SMS (`.sms.json`) or WhatsApp (`.whatsapp.json`) outbox recorded, one per send call. */
export async function readChannelOutbox(
  dir: string,
  suffix: '.sms.json' | '.whatsapp.json',
): Promise<ChannelOutboxEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const entries: ChannelOutboxEntry[] = [];
  for (const name of names.filter((n) => n.endsWith(suffix))) {
    const [eventId, sendId] = name.slice(0, -suffix.length).split('.') as [string, string];
    entries.push({
      eventId,
      providerMessageId: `outbox-${sendId}`,
      message: JSON.parse(await readFile(join(dir, name), 'utf8')),
      writtenAt: (await stat(join(dir, name))).mtime,
    });
  }
  return entries;
}
