// The delivery guarantee under a real crash: the sender process is SIGKILLed after the provider
// accepted a message and before the sender recorded the result. The restarted sender must resolve
// that attempt as documented — never silently send twice.
import { join } from 'node:path';
import { QUEUES, UNCERTAIN_SENDS_KEY } from '@holdfast/core';
import { startTwilioServer, type TestTwilioServer } from '@holdfast/testkit/twilio-server';
import {
  startWhatsAppCloudServer,
  type TestWhatsAppCloudServer,
} from '@holdfast/testkit/whatsapp-cloud-server';
import type { ObjectStore } from '@holdfast/worm-store';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { freePort, ServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait-for.ts';

async function eventsOf(store: ObjectStore, prefix: string, subject: string) {
  const out: { type: string; data: Record<string, unknown> }[] = [];
  for await (const o of store.list(prefix)) {
    if (!o.key.endsWith('.json') || o.key.endsWith('.meta.json')) continue;
    const e = JSON.parse(Buffer.from((await store.get(o.key)).body).toString('utf8'));
    if (e.subject === subject) out.push(e);
  }
  return out;
}
const typesOf = (events: { type: string }[]) => events.map((e) => e.type).sort();

describe('a sender crash between the provider call and its recorded result', () => {
  let fleet: TestFleet | undefined;
  let sender: ServiceProcess | undefined;
  let twilio: TestTwilioServer | undefined;
  let whatsapp: TestWhatsAppCloudServer | undefined;
  afterEach(async () => {
    await sender?.kill();
    await fleet?.close();
    await twilio?.close();
    await whatsapp?.close();
    fleet = sender = twilio = whatsapp = undefined;
  });

  /** The sender as its own process, sharing the fleet's Redis and store; stalled jobs are picked up fast. */
  async function senderProcess(
    env: Record<string, string>,
  ): Promise<{ proc: ServiceProcess; ready: string }> {
    const port = await freePort();
    const proc = new ServiceProcess('sender', {
      REDIS_URL: fleet!.redis.url,
      HOLDFAST_STORE: fleet!.config.store,
      HOLDFAST_SPOOL_DIR: join(fleet!.dir, 'sender-process-spool'),
      HOLDFAST_METRICS_PORT: String(port),
      HOLDFAST_STALLED_JOB_MS: '2000',
      ...env,
    });
    return { proc, ready: `http://127.0.0.1:${port}/readyz` };
  }

  async function crashDuringSend(
    held: { whenHeld(n?: number): Promise<void>; release(): number },
    send: () => Promise<{ id: string }>,
    env: Record<string, string>,
  ): Promise<string> {
    const { proc, ready } = await senderProcess(env);
    sender = proc;
    await proc.start(ready);
    const { id } = await send();
    // The provider has the message; its answer is withheld: the sender is inside the call.
    await held.whenHeld(1);
    await proc.kill();
    held.release();
    await proc.start(ready);
    await waitFor(
      'the send job settled after the restart',
      async () => {
        const state = await fleet!.queue(QUEUES.sendSms).getJobState(id);
        const wa = await fleet!.queue(QUEUES.sendWhatsApp).getJobState(id);
        return state === 'completed' || wa === 'completed';
      },
      60_000,
    );
    return id;
  }

  it('Twilio (lookup available): the restarted sender finds the message at Twilio and does not send it again', async () => {
    twilio = await startTwilioServer();
    fleet = await startFleet();
    await fleet.startArchiver();
    const producer = await fleet.producer();
    twilio.hold();
    const env = {
      HOLDFAST_SMS_TRANSPORT: 'twilio',
      HOLDFAST_TWILIO_ACCOUNT_SID: twilio.accountSid,
      HOLDFAST_TWILIO_AUTH_TOKEN: twilio.authToken,
      HOLDFAST_TWILIO_API_URL: twilio.url,
    };
    const id = await crashDuringSend(
      twilio,
      () => producer.sendSms({ from: '+14155550100', to: '+447700900123', body: 'Your code is 551204' }),
      env,
    );
    expect(twilio.messages.filter((m) => m.body === 'Your code is 551204')).toHaveLength(1);
    const events = await waitFor('the outcome archived', async () => {
      const e = await eventsOf(fleet!.store, 'sms/acme/outbound/', id);
      return e.some((x) => x.type === 'message.sent') ? e : undefined;
    });
    expect(typesOf(events)).toEqual(['message.send-attempted', 'message.sent', 'message.submitted']);
    expect(events.find((e) => e.type === 'message.sent')!.data).toMatchObject({
      providerMessageId: twilio.messages[0]!.sid,
      attempt: 1,
      resolvedBy: 'lookup',
    });
  });

  it.each([
    ['at-least-once', 2, 'resent'],
    ['at-most-once', 1, 'not-resent'],
  ] as const)(
    'WhatsApp (no lookup), %s: records message.send-uncertain and sends %i time(s) in all',
    async (policy, sends, resolution) => {
      whatsapp = await startWhatsAppCloudServer();
      // The delivery policy is stamped on the message when it is accepted, like its fail mode.
      fleet = await startFleet({ env: { HOLDFAST_WHATSAPP_DELIVERY: policy } });
      await fleet.startArchiver();
      const producer = await fleet.producer();
      whatsapp.hold();
      const id = await crashDuringSend(
        whatsapp,
        () => producer.sendWhatsApp({ to: '+447700900123', text: 'Your statement is ready' }),
        {
          HOLDFAST_WHATSAPP_TRANSPORT: 'cloud-api',
          HOLDFAST_WHATSAPP_ACCESS_TOKEN: whatsapp.accessToken,
          HOLDFAST_WHATSAPP_PHONE_NUMBER_ID: whatsapp.phoneNumberId,
          HOLDFAST_WHATSAPP_GRAPH_URL: whatsapp.url,
        },
      );
      expect(whatsapp.sentFor(id)).toHaveLength(sends);
      const expected =
        resolution === 'resent'
          ? [
              'message.send-attempted',
              'message.send-attempted',
              'message.send-uncertain',
              'message.sent',
              'message.submitted',
            ]
          : ['message.send-attempted', 'message.send-uncertain', 'message.submitted'];
      const events = await waitFor('the outcome archived', async () => {
        const e = await eventsOf(fleet!.store, 'whatsapp/acme/outbound/', id);
        return e.length === expected.length ? e : undefined;
      });
      expect(typesOf(events)).toEqual(expected);
      expect(events.find((e) => e.type === 'message.send-uncertain')!.data).toMatchObject({
        transport: 'cloud-api',
        attempt: 1,
        policy,
        resolution,
      });
      const job = await fleet.queue(QUEUES.sendWhatsApp).getJob(id);
      expect(job!.returnvalue).toMatchObject({ outcome: resolution === 'resent' ? 'sent' : 'uncertain' });
      // A message that may not have gone out is listed for a person (`holdfast status` counts it).
      const redis = new Redis(fleet.redis.url);
      try {
        const listed = await redis.zscore(UNCERTAIN_SENDS_KEY, `whatsapp/${id}`);
        expect(listed !== null).toBe(resolution === 'not-resent');
      } finally {
        redis.disconnect();
      }
    },
  );
});
