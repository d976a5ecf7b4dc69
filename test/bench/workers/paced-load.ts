/**
 * The ingest scenario's paced load generator in a process of its own: the bench process carries
 * the heap the scenarios before it grew, and its garbage collection would be charged to every
 * request it delays. Asked over IPC: `{ type: 'paced', id, url, rate, durationS, connections }`
 * answers `{ type: 'reply', id, value: PacedLoadResult }` (signed WhatsApp webhooks).
 */
import { type PacedLoadOptions, pacedLoad } from '../lib/paced-load.ts';
import { signedWebhook } from '../lib/whatsapp-webhook.ts';
import { serveUntilStopped } from './serve.ts';

type PacedRequest = { type: 'paced'; id: number } & Omit<PacedLoadOptions, 'build'>;

process.on('message', (message: PacedRequest) => {
  if (message?.type !== 'paced') return;
  const { url, rate, durationS, connections } = message;
  pacedLoad({ url, rate, durationS, connections, build: signedWebhook }).then(
    (value) => process.send?.({ type: 'reply', id: message.id, value }),
    (error: Error) => process.send?.({ type: 'reply', id: message.id, error: error.message }),
  );
});

serveUntilStopped('paced-load', { close: async () => {} });
