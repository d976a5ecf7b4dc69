import { randomUUID } from 'node:crypto';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { EmailTransport, OutboundEmail } from './transport.ts';

/**
 * Writes the exact MIME it would send to `<dir>/<eventId>.<sendId>.eml` (and the envelope beside
 * it), like a provider that keeps a copy of every send. One file per send call, so a duplicate
 * send shows up as a second file: the embedded default and the tests rely on that.
 */
export class OutboxTransport implements EmailTransport {
  readonly name = 'outbox';
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async send(email: OutboundEmail): Promise<{ providerMessageId: string }> {
    await mkdir(this.dir, { recursive: true });
    const sendId = randomUUID();
    const base = join(this.dir, `${email.eventId}.${sendId}`);
    await writeDurably(
      `${base}.envelope.json`,
      Buffer.from(JSON.stringify({ from: email.from, to: email.to })),
    );
    // The .eml appears last and atomically: its presence means "sent".
    await writeDurably(`${base}.eml`, email.raw);
    return { providerMessageId: `outbox-${sendId}` };
  }

  async close(): Promise<void> {}
}

async function writeDurably(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.tmp`;
  const file = await open(temp, 'wx');
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
}
