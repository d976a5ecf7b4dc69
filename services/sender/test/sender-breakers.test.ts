import { join } from 'node:path';
import { createLogger, type HoldfastConfig, loadConfig, QUEUE_PREFIX, SEND_QUEUES } from '@holdfast/core';
import {
  type Breaker,
  type BreakerState,
  createProducer,
  type Producer,
  readBreakerStates,
} from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { startSesServer, type TestSesServer } from '@holdfast/testkit/ses-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { startTwilioServer, type TestTwilioServer } from '@holdfast/testkit/twilio-server';
import {
  startWhatsAppCloudServer,
  type TestWhatsAppCloudServer,
} from '@holdfast/testkit/whatsapp-cloud-server';
import { type Job, Queue, type Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SenderHandle, SesTransport, start } from '../src/index.ts';

const log = createLogger({ name: 'sender-breakers-test', level: 'silent' });
const TEST_TIMEOUT = 60_000;

async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Each state a breaker enters, with what its worker was doing at that moment. */
function observe(breaker: Breaker, worker: Worker) {
  const seen: { state: BreakerState; paused: boolean; concurrency: number }[] = [];
  breaker.onStateChange(({ state }) =>
    seen.push({ state, paused: worker.isPaused(), concurrency: worker.concurrency }),
  );
  return seen;
}

function nextState(breaker: Breaker, state: BreakerState): Promise<void> {
  return new Promise((resolve) => {
    const stop = breaker.onStateChange((c) => {
      if (c.state !== state) return;
      stop();
      resolve();
    });
  });
}

const metricsOf = async (handle: SenderHandle) => (await fetch(`${handle.opsUrl}/metrics`)).text();

describe('sender circuit breakers (Twilio, WhatsApp Cloud API and SES on loopback)', () => {
  let redis: TestRedis;
  let raw: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let twilio: TestTwilioServer;
  let whatsapp: TestWhatsAppCloudServer;
  let ses: TestSesServer;
  let config: Readonly<HoldfastConfig>;
  let producer: Producer | undefined;
  let sender: SenderHandle | undefined;
  const queues = new Map<string, Queue>();
  const queue = (name: string) => {
    let q = queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: raw, prefix: QUEUE_PREFIX });
      queues.set(name, q);
    }
    return q;
  };

  beforeEach(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { maxRetriesPerRequest: null });
    dir = await tempDir('holdfast-sender-breakers-');
    twilio = await startTwilioServer();
    whatsapp = await startWhatsAppCloudServer();
    ses = await startSesServer();
    config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
      HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
      HOLDFAST_SMS_TRANSPORT: 'twilio',
      HOLDFAST_TWILIO_ACCOUNT_SID: twilio.accountSid,
      HOLDFAST_TWILIO_AUTH_TOKEN: twilio.authToken,
      HOLDFAST_TWILIO_API_URL: twilio.url,
      HOLDFAST_WHATSAPP_TRANSPORT: 'cloud-api',
      HOLDFAST_WHATSAPP_ACCESS_TOKEN: whatsapp.accessToken,
      HOLDFAST_WHATSAPP_PHONE_NUMBER_ID: whatsapp.phoneNumberId,
      HOLDFAST_WHATSAPP_GRAPH_URL: whatsapp.url,
      // Every channel sends without waiting for the archive: no archiver runs here.
      HOLDFAST_EMAIL_FAIL_MODE: 'open',
      HOLDFAST_WHATSAPP_FAIL_MODE: 'open',
      HOLDFAST_METRICS_PORT: '0',
      HOLDFAST_LOG_LEVEL: 'silent',
    });
    producer = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'spool', 'producer'),
      logger: log,
      channels: config.channels,
    });
  });

  afterEach(async () => {
    await sender?.close();
    await producer?.close();
    sender = producer = undefined;
    for (const q of queues.values()) await q.close();
    queues.clear();
    raw.disconnect();
    await twilio.close();
    await whatsapp.close();
    await ses.close();
    await redis.stop();
    await dir.remove();
  });

  const startSender = async (resetTimeoutMs: number) => {
    sender = await start(config, {
      emailTransport: new SesTransport({
        region: 'eu-west-1',
        endpoint: ses.endpoint,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      }),
      logger: log,
      concurrency: 1,
      retryBaseMs: 50,
      retryCapMs: 200,
      breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, rollingWindowMs: 500, resetTimeoutMs },
    });
    return sender;
  };

  const sendSms = async (n: number, tag: string) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const { id } = await producer!.sendSms({
        from: '+14155550100',
        to: '+447700900123',
        body: `${tag} ${i}`,
      });
      ids.push(id);
    }
    return ids;
  };

  const jobsOf = async (name: string, ids: readonly string[]) =>
    (await Promise.all(ids.map((id) => queue(name).getJob(id)))) as Job[];
  const allIn = async (name: string, ids: readonly string[], state: 'completed' | 'failed') =>
    (await Promise.all(ids.map((id) => queue(name).getJobState(id)))).every((s) => s === state);

  it(
    'a Twilio outage opens the SMS breaker: the worker stops taking jobs, spends no attempts, a failed probe re-opens it, a good one closes it and the backlog drains',
    async () => {
      // Throttled three times in a row: two calls open the breaker, the first probe fails too.
      twilio.failNext(3, { status: 429, code: 20429 });
      const ids = await sendSms(6, 'code');
      const handle = await startSender(2000);
      const sms = handle.breakers.sms;
      const seen = observe(sms, handle.workers.sms);
      await nextState(sms, 'open');

      // While open: /metrics and holdfast:breakers say so, and the jobs behind stay in the queue.
      const metrics = await metricsOf(handle);
      expect(metrics).toContain('holdfast_breaker_state{service="sender",breaker="sms"} 2');
      expect(metrics).toContain('holdfast_breaker_state{service="sender",breaker="email"} 0');
      expect(metrics).toContain('holdfast_breaker_opens_total{service="sender",breaker="sms"} 1');
      const states = await eventually('the open state published', async () => {
        const s = await readBreakerStates(raw);
        return s.find((e) => e.breaker === 'sms')?.state === 'open' && s;
      });
      expect(states.map((s) => `${s.service}/${s.breaker}:${s.state}`)).toEqual([
        'sender/email:closed',
        'sender/sms:open',
        'sender/whatsapp:closed',
      ]);
      expect(states.find((s) => s.breaker === 'sms')!.since).toBe(sms.since.toISOString());
      const untouched = (await jobsOf(SEND_QUEUES.sms, ids)).filter((j) => !j.processedOn);
      expect(untouched).toHaveLength(4);
      for (const job of untouched) {
        expect(job.attemptsMade).toBe(0);
        expect(await job.getState()).toBe('waiting');
      }

      await eventually('every SMS sent', () => twilio.messages.length === ids.length);
      await eventually('every send job completed', () => allIn(SEND_QUEUES.sms, ids, 'completed'));
      expect(new Set(twilio.messages.map((m) => m.body)).size).toBe(ids.length);
      // Twilio was asked 3 times in vain (2 that opened the breaker, 1 failed probe), then once per SMS.
      expect(twilio.requests.filter((r) => r.method === 'POST')).toHaveLength(3 + ids.length);
      expect(seen.map((s) => s.state)).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
      for (const s of seen) {
        if (s.state === 'open') expect(s.paused).toBe(true);
        if (s.state === 'half-open') expect(s).toMatchObject({ paused: false, concurrency: 1 });
        if (s.state === 'closed') expect(s).toMatchObject({ paused: false, concurrency: 1 });
      }
      // Attempts spent: one per send, plus one per throttled call; none for waiting out the breaker.
      const attempts = (await jobsOf(SEND_QUEUES.sms, ids)).map((j) => j.attemptsMade);
      expect(attempts.reduce((a, b) => a + b, 0)).toBe(ids.length + 3);
      const after = await metricsOf(handle);
      expect(after).toContain('holdfast_breaker_state{service="sender",breaker="sms"} 0');
      expect(after).toContain('holdfast_breaker_opens_total{service="sender",breaker="sms"} 2');
      expect((await readBreakerStates(raw)).find((e) => e.breaker === 'sms')?.state).toBe('closed');

      await handle.close();
      sender = undefined;
      expect(await readBreakerStates(raw)).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'permanent rejections (an invalid number) never open the breaker: those messages fail, the next one goes out',
    async () => {
      twilio.failNext(6, { status: 400, code: 21211 });
      const rejected = await sendSms(6, 'invalid');
      const handle = await startSender(2000);
      const seen = observe(handle.breakers.sms, handle.workers.sms);
      await eventually('every rejected job failed', () => allIn(SEND_QUEUES.sms, rejected, 'failed'));
      for (const job of await jobsOf(SEND_QUEUES.sms, rejected)) expect(job.attemptsMade).toBe(1);
      const [ok] = await sendSms(1, 'valid');
      await eventually('the valid SMS sent', () => twilio.messages.length === 1);
      await eventually('the valid SMS job completed', () => allIn(SEND_QUEUES.sms, [ok!], 'completed'));
      expect(seen).toEqual([]);
      expect(handle.breakers.sms.state).toBe('closed');
      const metrics = await metricsOf(handle);
      expect(metrics).toContain('holdfast_breaker_opens_total{service="sender",breaker="sms"} 0');
    },
    TEST_TIMEOUT,
  );

  it(
    'an SES and a WhatsApp outage pause only the email and WhatsApp workers; SMS goes on; both drain once the providers answer',
    async () => {
      ses.failNext(
        { status: 429, type: 'TooManyRequestsException', message: 'Maximum sending rate exceeded.' },
        2,
      );
      // Throttling: Meta did not take the messages, so they are sent again (WhatsApp is at-most-once).
      whatsapp.failNext(2, { status: 429, code: 130429 });
      const emails: string[] = [];
      const messages: string[] = [];
      for (let i = 0; i < 4; i++) {
        const email = await producer!.sendEmail({
          from: 'alerts@acme.example',
          to: `ada${i}@customer.example`,
          subject: `Statement ${i}`,
          text: 'Attached.',
        });
        emails.push(email.id);
        const wa = await producer!.sendWhatsApp({ to: `+44770090012${i}`, text: `Thanks ${i}` });
        messages.push(wa.id);
      }
      const handle = await startSender(1500);
      const emailSeen = observe(handle.breakers.email, handle.workers.email);
      const whatsappSeen = observe(handle.breakers.whatsapp, handle.workers.whatsapp);
      await Promise.all([
        nextState(handle.breakers.email, 'open'),
        nextState(handle.breakers.whatsapp, 'open'),
      ]);
      expect(handle.workers.sms.isPaused()).toBe(false);
      const smsIds = await sendSms(2, 'meanwhile');
      await eventually('SMS sent while the others are open', () => twilio.messages.length === 2);
      expect(handle.breakers.sms.state).toBe('closed');

      await eventually('every email sent', () => ses.sent.length === emails.length);
      await eventually('every WhatsApp message sent', () =>
        messages.every((id) => whatsapp.sentFor(id).length === 1),
      );
      for (const [name, ids] of [
        [SEND_QUEUES.email, emails],
        [SEND_QUEUES.whatsapp, messages],
        [SEND_QUEUES.sms, smsIds],
      ] as const) {
        await eventually(`${name} jobs completed`, () => allIn(name, ids, 'completed'));
      }
      expect(emailSeen.map((s) => s.state)).toEqual(['open', 'half-open', 'closed']);
      expect(whatsappSeen.map((s) => s.state)).toEqual(['open', 'half-open', 'closed']);
      expect(emailSeen[0]!.paused).toBe(true);
      expect(whatsappSeen[0]!.paused).toBe(true);
      // Two failed calls per channel, one attempt per message besides.
      for (const ids of [emails, messages]) {
        const jobs = await jobsOf(ids === emails ? SEND_QUEUES.email : SEND_QUEUES.whatsapp, ids);
        expect(jobs.map((j) => j.attemptsMade).reduce((a, b) => a + b, 0)).toBe(ids.length + 2);
      }
    },
    TEST_TIMEOUT,
  );
});
