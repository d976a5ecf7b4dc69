import { OutboxFiles } from './outbox-files.ts';
import type { LookupResult, OutboundWhatsApp, SendResult, WhatsAppTransport } from './transport.ts';
import { cloudApiMessage } from './whatsapp-message.ts';

/**
 * The WhatsApp outbox: each send call writes `<dir>/<eventId>.<sendId>.whatsapp.json` with
 * `{ eventId, project, message }`, `message` being the Cloud API request body the Cloud API
 * transport would post. `lookup` finds an earlier send of the same event by its file.
 */
export class WhatsAppOutboxTransport implements WhatsAppTransport {
  readonly name = 'outbox';
  readonly dir: string;
  readonly #files: OutboxFiles;

  constructor(dir: string) {
    this.dir = dir;
    this.#files = new OutboxFiles(dir, '.whatsapp.json');
  }

  send(message: OutboundWhatsApp): Promise<SendResult> {
    const json = JSON.stringify(
      { eventId: message.eventId, project: message.project, message: cloudApiMessage(message) },
      null,
      2,
    );
    return this.#files.write(message.eventId, [
      { suffix: '.whatsapp.json', bytes: Buffer.from(`${json}\n`) },
    ]);
  }

  lookup(message: OutboundWhatsApp, _since: Date): Promise<LookupResult> {
    return this.#files.find(message.eventId);
  }

  async close(): Promise<void> {}
}
