import { QUEUES, sidecarKey } from '@holdfast/core';
import { DeadLetters } from '@holdfast/producer';
import { type S3Server, startS3Server } from '@holdfast/testkit/s3-server';
import { startSesServer } from '@holdfast/testkit/ses-server';
import { startTwilioServer, type TestTwilioServer } from '@holdfast/testkit/twilio-server';
import {
  startWhatsAppCloudServer,
  type TestWhatsAppCloudServer,
} from '@holdfast/testkit/whatsapp-cloud-server';
import { type ObjectStore, S3WormStore } from '@holdfast/worm-store';
import { afterEach, describe, expect, it } from 'vitest';
import { readChannelOutbox } from '../support/channel-outbox.ts';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { sleep, waitFor } from '../support/wait-for.ts';

const sms = { from: '+14155550100', to: '+447700900123', body: 'Your code is 402913' };

async function archivedEvents(store: ObjectStore, prefix: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const o of store.list(prefix)) {
    if (o.key.endsWith('.json') && !o.key.endsWith('.meta.json'))
      out.push(JSON.parse(Buffer.from((await store.get(o.key)).body).toString('utf8')));
  }
  return out;
}

/** The sender's SMS transport pointed at the loopback Twilio API. */
const twilioEnv = (twilio: TestTwilioServer): Record<string, string> => ({
  HOLDFAST_SMS_TRANSPORT: 'twilio',
  HOLDFAST_TWILIO_ACCOUNT_SID: twilio.accountSid,
  HOLDFAST_TWILIO_AUTH_TOKEN: twilio.authToken,
  HOLDFAST_TWILIO_API_URL: twilio.url,
});

const ofType = async (store: ObjectStore, prefix: string, type: string) =>
  (await archivedEvents(store, prefix)).filter((e) => e.type === type);

describe('SMS and WhatsApp end to end', () => {
  let fleet: TestFleet | undefined;
  let s3: S3Server | undefined;
  let s3Store: S3WormStore | undefined;
  let twilio: TestTwilioServer | undefined;
  let whatsapp: TestWhatsAppCloudServer | undefined;
  afterEach(async () => {
    await fleet?.close();
    await s3Store?.close();
    await s3?.close();
    await twilio?.close();
    await whatsapp?.close();
    fleet = s3 = s3Store = twilio = whatsapp = undefined;
  });

  it('SMS fails open: it goes out while the store is down, and is archived once the store is back', async () => {
    s3 = await startS3Server();
    s3Store = await S3WormStore.open({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    });
    fleet = await startFleet({ store: s3Store });
    await fleet.startArchiver();
    await fleet.startSender();
    const producer = await fleet.producer();
    s3.setUnavailable(true);

    const { id, archiveKey } = await producer.sendSms(sms);
    const [sent] = await waitFor('the SMS in the outbox', async () => {
      const o = await readChannelOutbox(fleet!.outboxDirs.sms, '.sms.json');
      return o.length > 0 ? o : undefined;
    });
    expect(sent!.eventId).toBe(id);
    expect(sent!.message).toMatchObject({ to: sms.to, from: sms.from, body: sms.body });
    // Sent, and not archived: the store refuses every put.
    expect(s3.requests.some((r) => r.key === archiveKey && r.status === 200)).toBe(false);
    expect(producer.stats().backlog).toBe(1);

    s3.setUnavailable(false);
    const head = await waitFor('the SMS archived', () => s3Store!.head(archiveKey), 30_000);
    expect(head.mode).toBe('COMPLIANCE');
    const [submitted] = await ofType(s3Store, 'sms/acme/outbound/', 'message.submitted');
    expect(submitted).toMatchObject({ id, category: 'sms-transactional', data: { body: sms.body } });
    await waitFor(
      'message.sent archived',
      async () => (await ofType(s3Store!, 'sms/acme/outbound/', 'message.sent')).length === 1,
      30_000,
    );
    // Fully handled: nothing left in the producer's spool; sent exactly once.
    await waitFor('producer spool drained', () => producer.stats().backlog === 0, 30_000);
    expect(await readChannelOutbox(fleet.outboxDirs.sms, '.sms.json')).toHaveLength(1);
  });

  it('WhatsApp fails closed: nothing goes out before the archive write, then it is sent once', async () => {
    fleet = await startFleet();
    await fleet.startSender();
    const producer = await fleet.producer();
    const { id, archiveKey } = await producer.sendWhatsApp({
      to: '+447700900123',
      template: { name: 'statement_ready', language: 'en_GB', components: [] },
    });
    await sleep(1_500);
    expect(await readChannelOutbox(fleet.outboxDirs.whatsapp, '.whatsapp.json')).toHaveLength(0);
    expect(await fleet.queue(QUEUES.sendWhatsApp).getJobState(id)).toBe('waiting-children');

    await fleet.startArchiver();
    const [sent] = await waitFor('the WhatsApp message in the outbox', async () => {
      const o = await readChannelOutbox(fleet!.outboxDirs.whatsapp, '.whatsapp.json');
      return o.length > 0 ? o : undefined;
    });
    expect(sent!.message).toMatchObject({
      message: { to: '+447700900123', type: 'template', template: { name: 'statement_ready' } },
    });
    const head = await fleet.store.head(archiveKey);
    expect(head!.lastModified.getTime()).toBeLessThanOrEqual(sent!.writtenAt.getTime());
    const archiveJob = await fleet.queue(QUEUES.archive).getJob(id);
    const sendJob = await fleet.queue(QUEUES.sendWhatsApp).getJob(id);
    expect(archiveJob!.finishedOn).toBeLessThanOrEqual(sendJob!.processedOn!);
    await waitFor('producer spool drained', () => producer.stats().backlog === 0);
    expect(await readChannelOutbox(fleet.outboxDirs.whatsapp, '.whatsapp.json')).toHaveLength(1);
  });

  it('SMS through the Twilio Messages API: status callback to ingest, message.sent with the SID archived', async () => {
    twilio = await startTwilioServer();
    fleet = await startFleet({
      env: { ...twilioEnv(twilio), HOLDFAST_PUBLIC_BASE_URL: 'https://holdfast.acme.example' },
    });
    await fleet.startArchiver();
    await fleet.startSender();
    const producer = await fleet.producer();
    const { id } = await producer.sendSms({ ...sms, mediaUrls: ['https://cdn.acme.example/receipt.png'] });

    const [message] = await waitFor('the message at Twilio', () =>
      twilio!.messages.length > 0 ? twilio!.messages : undefined,
    );
    expect(message).toMatchObject({
      to: sms.to,
      from: sms.from,
      body: sms.body,
      mediaUrls: ['https://cdn.acme.example/receipt.png'],
    });
    expect(message!.statusCallback).toBe('https://holdfast.acme.example/webhooks/twilio/acme/status');
    const [sent] = await waitFor('message.sent archived', async () => {
      const e = await ofType(fleet!.store, 'sms/acme/outbound/', 'message.sent');
      return e.length > 0 ? e : undefined;
    });
    expect(sent).toMatchObject({
      subject: id,
      data: { transport: 'twilio', providerMessageId: message!.sid, attempt: 1 },
    });
    const attempted = await ofType(fleet.store, 'sms/acme/outbound/', 'message.send-attempted');
    expect(attempted).toHaveLength(1);
    expect(twilio.messages).toHaveLength(1);
  });

  it('WhatsApp through the Cloud API: archived, then sent with the event id as callback data', async () => {
    whatsapp = await startWhatsAppCloudServer();
    fleet = await startFleet({
      env: {
        HOLDFAST_WHATSAPP_TRANSPORT: 'cloud-api',
        HOLDFAST_WHATSAPP_ACCESS_TOKEN: whatsapp.accessToken,
        HOLDFAST_WHATSAPP_PHONE_NUMBER_ID: whatsapp.phoneNumberId,
        HOLDFAST_WHATSAPP_GRAPH_URL: whatsapp.url,
      },
    });
    await fleet.startArchiver();
    await fleet.startSender();
    const producer = await fleet.producer();
    const { id, archiveKey } = await producer.sendWhatsApp({
      to: '+447700900123',
      text: 'Your statement is ready',
    });

    const [message] = await waitFor('the message at the Cloud API', () =>
      whatsapp!.sent.length > 0 ? whatsapp!.sent : undefined,
    );
    expect(message!.bizOpaqueCallbackData).toBe(id);
    expect(message!.body).toMatchObject({ messaging_product: 'whatsapp', to: '+447700900123', type: 'text' });
    expect(await fleet.store.head(archiveKey)).toMatchObject({ mode: 'COMPLIANCE' });
    const [sent] = await waitFor('message.sent archived', async () => {
      const e = await ofType(fleet!.store, 'whatsapp/acme/outbound/', 'message.sent');
      return e.length > 0 ? e : undefined;
    });
    expect(sent).toMatchObject({
      subject: id,
      data: { transport: 'cloud-api', providerMessageId: message!.id },
    });
    expect(whatsapp.sent).toHaveLength(1);
  });

  it('email through SES v2: the archived bytes are the bytes SES got, and message.sent carries its MessageId', async () => {
    const ses = await startSesServer();
    // The SES client takes its credentials from the environment, as in production.
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    try {
      fleet = await startFleet({
        env: { HOLDFAST_EMAIL_TRANSPORT: 'ses', HOLDFAST_SES_ENDPOINT: ses.endpoint },
      });
      await fleet.startArchiver();
      await fleet.startSender();
      const producer = await fleet.producer();
      const { id, archiveKey } = await producer.sendEmail({
        from: 'alerts@acme.example',
        to: 'ada@customer.example',
        subject: 'Your statement',
        text: 'Attached.',
      });
      const [mail] = await waitFor('the email at SES', () => (ses.sent.length > 0 ? ses.sent : undefined));
      const archived = await fleet.store.get(archiveKey);
      expect(Buffer.from(archived.body).equals(mail!.raw)).toBe(true);
      expect(mail!.tags).toContainEqual({ Name: 'holdfast-event-id', Value: id });
      const [sent] = await waitFor('message.sent archived', async () => {
        const e = await ofType(fleet!.store, 'email/acme/outbound/', 'message.sent');
        return e.length > 0 ? e : undefined;
      });
      expect(sent).toMatchObject({
        subject: id,
        data: { transport: 'ses', providerMessageId: mail!.messageId },
      });
      expect(ses.sent).toHaveLength(1);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      if (saved.id === undefined) delete process.env.AWS_ACCESS_KEY_ID;
      if (saved.secret === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      await ses.close();
    }
  });

  it('a permanent provider rejection is recorded as message.send-failed and not retried', async () => {
    twilio = await startTwilioServer();
    fleet = await startFleet({
      env: twilioEnv(twilio),
    });
    await fleet.startArchiver();
    await fleet.startSender();
    const producer = await fleet.producer();
    twilio.failNext(1, { status: 400, code: 21610 });
    const { id } = await producer.sendSms(sms);

    await waitFor(
      'the send job failed',
      async () => (await fleet!.queue(QUEUES.sendSms).getJobState(id)) === 'failed',
    );
    const job = await fleet.queue(QUEUES.sendSms).getJob(id);
    expect(job!.attemptsMade).toBe(1);
    expect(job!.failedReason).toMatch(/21610|unsubscribed/i);
    const [failed] = await waitFor('message.send-failed archived', async () => {
      const e = await ofType(fleet!.store, 'sms/acme/outbound/', 'message.send-failed');
      return e.length > 0 ? e : undefined;
    });
    expect(failed).toMatchObject({
      subject: id,
      data: { transport: 'twilio', providerCode: '21610', attempt: 1 },
    });
    expect(twilio.messages).toHaveLength(0);
    // The submitted SMS itself is archived regardless (fail-open: its archive job is its own).
    await waitFor(
      'submission archived',
      async () => (await ofType(fleet!.store, 'sms/acme/outbound/', 'message.submitted')).length === 1,
    );
  });

  it('a send that runs out of retries is recorded as message.send-failed and dead-lettered', async () => {
    twilio = await startTwilioServer();
    fleet = await startFleet({
      env: twilioEnv(twilio),
    });
    await fleet.startArchiver();
    await fleet.startSender();
    const producer = await fleet.producer();
    // Throttled on every one of the job's 10 attempts (an answer: it certainly was not sent).
    twilio.failNext(10, { status: 429, code: 20429 });
    const { id } = await producer.sendSms(sms);

    await waitFor(
      'the send job failed for good',
      async () => (await fleet!.queue(QUEUES.sendSms).getJobState(id)) === 'failed',
      60_000,
    );
    expect((await fleet.queue(QUEUES.sendSms).getJob(id))!.attemptsMade).toBe(10);
    const [failed] = await waitFor('message.send-failed archived', async () => {
      const e = await ofType(fleet!.store, 'sms/acme/outbound/', 'message.send-failed');
      return e.length > 0 ? e : undefined;
    });
    expect(failed).toMatchObject({
      subject: id,
      data: { attempt: 10, reachedProvider: 'no', reason: expect.stringMatching(/^retries exhausted: /) },
    });
    expect(twilio.messages).toHaveLength(0);
    const dead = new DeadLetters({ redisUrl: fleet.redis.url });
    try {
      expect((await dead.list()).map((d) => [d.queue, d.jobId, d.classification])).toEqual([
        [QUEUES.sendSms, id, 'exhausted'],
      ]);
    } finally {
      await dead.close();
    }
  });

  it('the ingest API takes SMS and WhatsApp messages for the caller’s project', async () => {
    fleet = await startFleet({ env: { HOLDFAST_API_KEYS: 'acme:acme-test-key-0123456789' } });
    await fleet.startArchiver();
    await fleet.startSender();
    const ingest = await fleet.startIngest();
    const post = (path: string, body: unknown) =>
      fetch(`${ingest.url}${path}`, {
        method: 'POST',
        headers: { authorization: 'Bearer acme-test-key-0123456789', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const smsRes = await post('/v1/messages/sms', sms);
    expect(smsRes.status).toBe(202);
    const { id: smsId, archiveKey } = (await smsRes.json()) as { id: string; archiveKey: string };
    expect(archiveKey).toMatch(/^sms\/acme\/outbound\//);
    const waRes = await post('/v1/messages/whatsapp', {
      to: '+447700900123',
      media: { type: 'document', link: 'https://cdn.acme.example/statement.pdf', filename: 'statement.pdf' },
    });
    expect(waRes.status).toBe(202);
    const { id: waId } = (await waRes.json()) as { id: string };

    await waitFor('both sent', async () => {
      const s = await readChannelOutbox(fleet!.outboxDirs.sms, '.sms.json');
      const w = await readChannelOutbox(fleet!.outboxDirs.whatsapp, '.whatsapp.json');
      return s.some((e) => e.eventId === smsId) && w.some((e) => e.eventId === waId);
    });
    const view = await waitFor('the SMS timeline shows it sent', async () => {
      const r = await fetch(`${ingest.url}/v1/messages/${smsId}`, {
        headers: { authorization: 'Bearer acme-test-key-0123456789' },
      });
      const v = r.status === 200 ? ((await r.json()) as { state: string; channel?: string }) : undefined;
      return v?.state === 'sent' ? v : undefined;
    });
    expect(view.state).toBe('sent');
    expect(await fleet.store.head(sidecarKey(archiveKey))).toBeUndefined();
  });
});
