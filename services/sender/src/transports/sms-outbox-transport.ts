import { OutboxFiles } from './outbox-files.ts';
import type { LookupResult, OutboundSms, SendResult, SmsTransport } from './transport.ts';

/**
 * The SMS outbox: each send call writes `<dir>/<eventId>.<sendId>.sms.json` with what would go to
 * the provider (`{ eventId, project, from, to, body, mediaUrls }`). `lookup` finds an earlier send
 * of the same event by its file.
 */
export class SmsOutboxTransport implements SmsTransport {
  readonly name = 'outbox';
  readonly dir: string;
  readonly #files: OutboxFiles;

  constructor(dir: string) {
    this.dir = dir;
    this.#files = new OutboxFiles(dir, '.sms.json');
  }

  send(sms: OutboundSms): Promise<SendResult> {
    const { eventId, project, from, to, body, mediaUrls } = sms;
    const json = JSON.stringify({ eventId, project, from, to, body, mediaUrls }, null, 2);
    return this.#files.write(eventId, [{ suffix: '.sms.json', bytes: Buffer.from(`${json}\n`) }]);
  }

  lookup(sms: OutboundSms, _since: Date): Promise<LookupResult> {
    return this.#files.find(sms.eventId);
  }

  async close(): Promise<void> {}
}
