import { rebuildTimelines } from '@holdfast/archiver';
import type { IngestHandle } from '@holdfast/ingest';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  signTwilioRequest,
  signWhatsAppBody,
  TEST_TWILIO_AUTH_TOKEN,
  TEST_WHATSAPP_APP_SECRET,
  TEST_WHATSAPP_VERIFY_TOKEN,
  twilioFormBody,
} from '../../services/ingest/test/providers/signers.ts';
import {
  createSnsSigner,
  snsNotification,
  snsSubscriptionConfirmation,
  TEST_TOPIC_ARN,
} from '../../services/ingest/test/providers/sns-signer.ts';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { readOutbox } from '../support/outbox.ts';
import {
  sesDelivery,
  twilioInboundSms,
  whatsappImage,
  whatsappStatus,
  whatsappText,
} from '../support/provider-payloads.ts';
import { waitFor } from '../support/wait-for.ts';

const KEY = 'hf_acme_0123456789abcdef';

async function archivedKeys(fleet: TestFleet, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of fleet.store.list(prefix)) keys.push(o.key);
  return keys;
}

describe('provider webhooks', () => {
  let fleet: TestFleet;
  let ingest: IngestHandle;
  const sns = createSnsSigner();
  const confirmed: string[] = [];

  beforeEach(async () => {
    confirmed.length = 0;
    fleet = await startFleet({
      env: {
        HOLDFAST_API_KEYS: `acme:${KEY}`,
        HOLDFAST_TWILIO_AUTH_TOKEN: TEST_TWILIO_AUTH_TOKEN,
        HOLDFAST_WHATSAPP_APP_SECRET: TEST_WHATSAPP_APP_SECRET,
        HOLDFAST_WHATSAPP_VERIFY_TOKEN: TEST_WHATSAPP_VERIFY_TOKEN,
        HOLDFAST_SNS_TOPIC_ARNS: TEST_TOPIC_ARN,
      },
    });
    await fleet.startArchiver();
    ingest = await fleet.startIngest({
      snsCertificates: sns.certificates,
      confirmSnsSubscription: async (url) => {
        confirmed.push(url);
      },
    });
  });
  afterEach(async () => {
    await fleet.close();
  });

  const spooled = () => ingest.writer.stats().spool.appends;
  const postWhatsApp = (payload: unknown, signature?: string) => {
    const body = JSON.stringify(payload);
    return fetch(`${ingest.url}/webhooks/whatsapp/acme`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-hub-signature-256': signature ?? signWhatsAppBody(body),
      },
      body,
    });
  };
  const postTwilio = (
    kind: 'inbound' | 'status',
    params: Record<string, string>,
    authToken = TEST_TWILIO_AUTH_TOKEN,
  ) => {
    const url = `${ingest.url}/webhooks/twilio/acme/${kind}`;
    return fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-twilio-signature': signTwilioRequest(url, params, authToken),
      },
      body: twilioFormBody(params),
    });
  };
  const postSns = (message: object) =>
    fetch(`${ingest.url}/webhooks/ses/acme`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain; charset=UTF-8' },
      body: JSON.stringify(message),
    });
  const view = async (id: string) => {
    const res = await fetch(`${ingest.url}/v1/messages/${encodeURIComponent(id)}`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    return res.status === 200
      ? ((await res.json()) as { state: string; events: { type: string; key: string }[] })
      : undefined;
  };

  it('Twilio: a signed inbound SMS is spooled, answered with TwiML, archived once even when delivered twice', async () => {
    const params = twilioInboundSms('SM0f1e2d3c4b5a69788796a5b4c3d2e1f0', 'STOP');
    const first = await postTwilio('inbound', params);
    expect(first.status).toBe(200);
    expect(await first.text()).toContain('<Response></Response>');
    expect((await postTwilio('inbound', params)).status).toBe(200);

    const keys = await waitFor('inbound SMS archived', async () => {
      const k = await archivedKeys(fleet, 'sms/acme/inbound/');
      return k.length > 0 ? k : undefined;
    });
    await waitFor('both deliveries handled', () => ingest.writer.stats().backlog === 0);
    expect(await archivedKeys(fleet, 'sms/acme/inbound/')).toEqual(keys);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toContain('_SM0f1e2d3c4b5a69788796a5b4c3d2e1f0.json');
    const event = JSON.parse(Buffer.from((await fleet.store.get(keys[0]!)).body).toString());
    expect(event).toMatchObject({
      type: 'message.received',
      channel: 'sms',
      direction: 'inbound',
      data: { provider: 'twilio' },
    });
  });

  it('Twilio: a forged or missing signature is refused and nothing is written', async () => {
    const before = spooled();
    const forged = await postTwilio(
      'inbound',
      twilioInboundSms('SM1', 'hi'),
      'not-the-auth-token-0000000000000',
    );
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe(
      'HOLDFAST_ERR_SIGNATURE_INVALID',
    );
    const missing = await fetch(`${ingest.url}/webhooks/twilio/acme/inbound`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: twilioFormBody(twilioInboundSms('SM2', 'hi')),
    });
    expect(missing.status).toBe(401);
    expect(spooled()).toBe(before);
  });

  it('WhatsApp: the verification handshake echoes the challenge only for the right token', async () => {
    const ok = await fetch(
      `${ingest.url}/webhooks/whatsapp/acme?hub.mode=subscribe&hub.verify_token=${TEST_WHATSAPP_VERIFY_TOKEN}&hub.challenge=1158201444`,
    );
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('1158201444');
    const wrong = await fetch(
      `${ingest.url}/webhooks/whatsapp/acme?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1`,
    );
    expect(wrong.status).toBe(403);
  });

  it('WhatsApp: signed messages are archived, media becomes a media job, forged bodies are refused', async () => {
    const at = new Date('2026-11-20T08:00:00Z');
    expect((await postWhatsApp(whatsappText('wamid.TEXT1', 'hello', at))).status).toBe(200);
    expect((await postWhatsApp(whatsappImage('wamid.IMG1', '1479537139650973', at))).status).toBe(200);

    const before = spooled();
    const body = JSON.stringify(whatsappText('wamid.EVIL', 'forged', at));
    const forged = await fetch(`${ingest.url}/webhooks/whatsapp/acme`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-hub-signature-256': signWhatsAppBody(body, 'wrong-secret'),
      },
      body,
    });
    expect(forged.status).toBe(403);
    expect(spooled()).toBe(before);

    const keys = await waitFor('two inbound WhatsApp messages archived', async () => {
      const k = await archivedKeys(fleet, 'whatsapp/acme/inbound/2026/11/20/');
      return k.length === 2 ? k : undefined;
    });
    expect(keys.some((k) => k.endsWith('_wamid.IMG1.json'))).toBe(true);
    const media = new Queue('media', { connection: { url: fleet.redis.url }, prefix: 'holdfast' });
    try {
      const jobs = await waitFor('media job', async () => {
        const j = await media.getJobs(['waiting', 'delayed', 'active']);
        return j.length > 0 ? j : undefined;
      });
      expect(jobs).toHaveLength(1);
      expect(jobs[0]!.data).toMatchObject({
        project: 'acme',
        channel: 'whatsapp',
        provider: 'whatsapp',
        media: { mediaId: '1479537139650973', contentType: 'image/jpeg' },
      });
      expect(keys).toContain(jobs[0]!.data.messageKey);
    } finally {
      await media.close();
    }
  });

  it('WhatsApp: delivered arriving before sent still folds to delivered, events ordered by provider time', async () => {
    const sentAt = new Date('2026-11-20T09:00:00Z');
    const deliveredAt = new Date('2026-11-20T09:00:03Z');
    expect((await postWhatsApp(whatsappStatus('wamid.OUT1', 'delivered', deliveredAt))).status).toBe(200);
    expect((await postWhatsApp(whatsappStatus('wamid.OUT1', 'sent', sentAt))).status).toBe(200);
    const v = await waitFor('both statuses in the timeline', async () => {
      const r = await view('whatsapp:wamid.OUT1');
      return r && r.events.length === 2 ? r : undefined;
    });
    expect(v.state).toBe('delivered');
    expect(v.events.map((e) => e.type)).toEqual(['message.sent', 'message.delivered']);
  });

  it('SES via SNS: confirms a verified subscription, links a delivery to the sent email, refuses forgeries', async () => {
    const confirmation = sns.sign(snsSubscriptionConfirmation({ topicArn: TEST_TOPIC_ARN }));
    expect((await postSns(confirmation)).status).toBe(200);
    expect(confirmed).toEqual([confirmation.SubscribeURL]);

    await fleet.startSender();
    const producer = await fleet.producer();
    const { id } = await producer.sendEmail({
      from: 'alerts@acme.example',
      to: 'b@x.example',
      subject: 's',
      text: 't',
    });
    const [sent] = await waitFor('sent', async () => {
      const o = await readOutbox(fleet.outboxDir);
      return o.length > 0 ? o : undefined;
    });
    const delivery = sns.sign(
      snsNotification({
        message: sesDelivery(sent!.providerMessageId, new Date(Date.now() + 2000)),
        topicArn: TEST_TOPIC_ARN,
      }),
    );
    expect((await postSns(delivery)).status).toBe(200);
    const v = await waitFor('delivered state', async () => {
      const r = await view(id);
      return r?.state === 'delivered' ? r : undefined;
    });
    expect(v.events.map((e) => e.type)).toEqual([
      'message.submitted',
      'message.send-attempted',
      'message.sent',
      'message.delivered',
    ]);

    const before = spooled();
    const tampered = { ...delivery, Message: delivery.Message.replace('250 2.0.0 OK', '550 bounced') };
    const res = await postSns(tampered);
    expect(res.status).toBe(403);
    const foreignCert = { ...delivery, SigningCertURL: 'https://evil.example.com/cert.pem' };
    expect((await postSns(foreignCert)).status).toBe(403);
    expect(sns.certificates.calls.every((u: string) => u.startsWith('https://sns.'))).toBe(true);
    expect(spooled()).toBe(before);
  });

  it('archives an event type it does not know as provider.unknown, so nothing a provider sent is dropped', async () => {
    const payload = whatsappText('wamid.NEW1', 'x', new Date('2026-11-20T10:00:00Z'));
    const message = (
      payload.entry[0]!.changes[0]!.value as unknown as { messages: Record<string, unknown>[] }
    ).messages[0]!;
    delete message.text;
    message.type = 'hologram';
    message.hologram = { frames: 3 };
    expect((await postWhatsApp(payload)).status).toBe(200);
    const [key] = await waitFor('unknown event archived', async () => {
      const k = await archivedKeys(fleet, 'whatsapp/acme/inbound/2026/11/20/');
      return k.length > 0 ? k : undefined;
    });
    const event = JSON.parse(Buffer.from((await fleet.store.get(key!)).body).toString());
    expect(event.type).toBe('provider.unknown');
    expect(JSON.stringify(event.data.raw)).toContain('hologram');
  });

  describe('bad webhook input gets a clear error and nothing is spooled', () => {
    const signedPost = (path: string, body: string, contentType: string) =>
      fetch(`${ingest.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': contentType, 'x-hub-signature-256': signWhatsAppBody(body) },
        body,
      });
    const cases: [string, () => Promise<Response>, number, string][] = [
      [
        'malformed JSON (signed)',
        () => signedPost('/webhooks/whatsapp/acme', '{"object":', 'application/json'),
        400,
        'HOLDFAST_ERR_MALFORMED_BODY',
      ],
      [
        'a notification missing its entries',
        () =>
          signedPost('/webhooks/whatsapp/acme', '{"object":"whatsapp_business_account"}', 'application/json'),
        400,
        'HOLDFAST_ERR_PAYLOAD_INVALID',
      ],
      [
        'a wrong content type',
        () => signedPost('/webhooks/whatsapp/acme', '<xml/>', 'application/xml'),
        415,
        'HOLDFAST_ERR_UNSUPPORTED_MEDIA_TYPE',
      ],
      [
        'a body over the limit',
        () =>
          signedPost(
            '/webhooks/whatsapp/acme',
            JSON.stringify({ pad: 'x'.repeat(11 * 1024 * 1024) }),
            'application/json',
          ),
        413,
        'HOLDFAST_ERR_BODY_TOO_LARGE',
      ],
      [
        'a Twilio form missing MessageSid',
        () =>
          postTwilio('inbound', {
            From: '+14155550100',
            To: '+15005550006',
            Body: 'x',
            AccountSid: 'AC0123456789abcdef0123456789abcdef',
          }),
        400,
        'HOLDFAST_ERR_PAYLOAD_INVALID',
      ],
      [
        'an SNS body that is not an SNS message',
        () => postSns({ hello: 'world' }),
        400,
        'HOLDFAST_ERR_PAYLOAD_INVALID',
      ],
      [
        'an invalid project in the path',
        () => signedPost('/webhooks/whatsapp/Not%20A%20Project', '{}', 'application/json'),
        400,
        'HOLDFAST_ERR_VALIDATION',
      ],
    ];
    it.each(cases)('%s', async (_name, send, status, code) => {
      const before = spooled();
      const res = await send();
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe(code);
      expect(body.error.message.length).toBeGreaterThan(5);
      expect(spooled()).toBe(before);
    });
  });

  it('rebuilds the read model from the archive alone', async () => {
    await postWhatsApp(whatsappStatus('wamid.RB1', 'sent', new Date('2026-11-20T11:00:00Z')));
    await postWhatsApp(whatsappStatus('wamid.RB1', 'read', new Date('2026-11-20T11:00:09Z')));
    const before = await waitFor('timeline', async () => {
      const v = await view('whatsapp:wamid.RB1');
      return v && v.events.length === 2 ? v : undefined;
    });
    const redis = new Redis(fleet.redis.url);
    try {
      for (const key of await redis.keys('holdfast:timeline:*')) await redis.del(key);
      expect(await view('whatsapp:wamid.RB1')).toBeUndefined();
      const { events } = await rebuildTimelines(fleet.store, redis);
      expect(events).toBeGreaterThanOrEqual(2);
    } finally {
      redis.disconnect();
    }
    expect(await view('whatsapp:wamid.RB1')).toEqual(before);
  });
});
