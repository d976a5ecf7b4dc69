import { createHmac } from 'node:crypto';
import { whatsappText } from '../../support/provider-payloads.ts';

/** The app secret the bench's ingest verifies webhook signatures with. */
export const BENCH_APP_SECRET = 'bench-whatsapp-app-secret';

/** A signed WhatsApp text notification with a unique wamid, so every request is a new event. */
export function signedWebhook(n: number): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(whatsappText(`wamid.BENCH${process.pid}.${n}`, `message ${n}`, new Date()));
  const signature = `sha256=${createHmac('sha256', BENCH_APP_SECRET).update(body).digest('hex')}`;
  return { body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature } };
}
