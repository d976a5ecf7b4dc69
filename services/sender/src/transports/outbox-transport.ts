import { OutboxFiles } from './outbox-files.ts';
import type { EmailTransport, LookupResult, OutboundEmail, SendResult } from './transport.ts';

/**
 * Writes the exact MIME it would send to `<dir>/<eventId>.<sendId>.eml` (and the envelope beside
 * it, as `.envelope.json`), like a provider that keeps a copy of every send. One file per send
 * call, so a duplicate send shows up as a second file: the embedded default and the tests rely on
 * that. `lookup` finds an earlier send of the same event by its file.
 */
export class OutboxTransport implements EmailTransport {
  readonly name = 'outbox';
  readonly dir: string;
  readonly #files: OutboxFiles;

  constructor(dir: string) {
    this.dir = dir;
    this.#files = new OutboxFiles(dir, '.eml');
  }

  send(email: OutboundEmail): Promise<SendResult> {
    return this.#files.write(email.eventId, [
      { suffix: '.envelope.json', bytes: Buffer.from(JSON.stringify({ from: email.from, to: email.to })) },
      // The .eml appears last and atomically: its presence means "sent".
      { suffix: '.eml', bytes: email.raw },
    ]);
  }

  lookup(email: OutboundEmail, _since: Date): Promise<LookupResult> {
    return this.#files.find(email.eventId);
  }

  async close(): Promise<void> {}
}
