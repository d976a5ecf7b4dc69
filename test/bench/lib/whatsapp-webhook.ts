import { createHmac } from 'node:crypto';

/** The app secret the bench's ingest verifies webhook signatures with. */
export const BENCH_APP_SECRET = 'bench-whatsapp-app-secret';

/** A signed WhatsApp text notification with a unique wamid, so every request is a new event. */
export function signedWebhook(n: number): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify({
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
              contacts: [{ profile: { name: 'Ada' }, wa_id: '447700900123' }],
              messages: [
                {
                  id: `wamid.BENCH${process.pid}.${n}`,
                  from: '447700900123',
                  timestamp: String(Math.floor(Date.now() / 1000)),
                  type: 'text',
                  text: { body: `message ${n}` },
                },
              ],
            },
          },
        ],
      },
    ],
  });
  const signature = `sha256=${createHmac('sha256', BENCH_APP_SECRET).update(body).digest('hex')}`;
  return { body, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature } };
}
