import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTwilioServer, type TestTwilioServer } from '@holdfast/testkit/twilio-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type OutboundSms, PermanentSendError, SendError, TwilioSmsTransport } from '../src/index.ts';

const SERVICE_SID = `MG${'a'.repeat(32)}`;

function sms(overrides: Partial<OutboundSms> = {}): OutboundSms {
  return {
    eventId: 'e-1',
    project: 'acme',
    from: '+15005550006',
    to: '+14155550100',
    body: 'Your code is 4711',
    mediaUrls: [],
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<SendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SendError);
  return error as SendError;
}

/** A loopback port with nothing listening on it. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

describe('TwilioSmsTransport (the twilio library against Twilio on loopback)', () => {
  let twilio: TestTwilioServer;
  let transport: TwilioSmsTransport;
  const transportFor = (options: Partial<ConstructorParameters<typeof TwilioSmsTransport>[0]> = {}) =>
    new TwilioSmsTransport({
      accountSid: twilio.accountSid,
      authToken: twilio.authToken,
      apiUrl: twilio.url,
      timeoutMs: 2000,
      ...options,
    });
  beforeEach(async () => {
    twilio = await startTwilioServer();
    transport = transportFor({ publicBaseUrl: 'https://hooks.acme.example/' });
  });
  afterEach(async () => {
    await transport.close();
    await twilio.close();
  });

  it('creates the message and returns its SID, with the status callback on the ingest route', async () => {
    const result = await transport.send(
      sms({ mediaUrls: ['https://cdn.acme.example/a.png', 'https://cdn.acme.example/b.png'] }),
    );
    expect(twilio.messages).toHaveLength(1);
    const [message] = twilio.messages;
    expect(result.providerMessageId).toBe(message!.sid);
    expect(result.providerMessageId).toMatch(/^SM[0-9a-f]{32}$/);
    expect(message!.params).toEqual({
      To: ['+14155550100'],
      From: ['+15005550006'],
      Body: ['Your code is 4711'],
      MediaUrl: ['https://cdn.acme.example/a.png', 'https://cdn.acme.example/b.png'],
      StatusCallback: ['https://hooks.acme.example/webhooks/twilio/acme/status'],
    });
    expect(String(message!.headers['user-agent'])).toMatch(/^twilio-node\/6\..* holdfast-sender$/);
  });

  it('sends a Messaging Service SID as MessagingServiceSid, and no callback without a public URL', async () => {
    await transport.close();
    transport = transportFor();
    await transport.send(sms({ from: SERVICE_SID }));
    const [message] = twilio.messages;
    expect(message!.params.MessagingServiceSid).toEqual([SERVICE_SID]);
    expect(message!.params.From).toBeUndefined();
    expect(message!.params.StatusCallback).toBeUndefined();
    expect(message!.status).toBe('accepted');
  });

  it.each([
    [21211, 'invalid To'],
    [21610, 'unsubscribed recipient (STOP)'],
    [21614, 'not a mobile number'],
    [21408, 'region not enabled'],
    [21606, 'From not valid for the destination'],
    [21659, 'From not a Twilio number'],
    [21602, 'empty body'],
  ])('rejects permanently on %i (%s): not retryable, never reached', async (code) => {
    twilio.failNext(1, { status: 400, code });
    const error = await failure(transport.send(sms()));
    expect(error).toBeInstanceOf(PermanentSendError);
    expect(error.retryable).toBe(false);
    expect(error.reachedProvider).toBe('no');
    expect(error.providerCode).toBe(String(code));
    expect(error.status).toBe(400);
    expect(error.code).toBe('HOLDFAST_ERR_SEND_REJECTED');
    expect(twilio.messages).toHaveLength(0);
  });

  it('maps the server’s own validation answer (an invalid To) to a permanent rejection', async () => {
    const error = await failure(transport.send(sms({ to: '+1' })));
    expect(error).toBeInstanceOf(PermanentSendError);
    expect(error.providerCode).toBe('21211');
    expect(error.message).toContain('is not a valid phone number');
  });

  it('retries 429 later, with Retry-After, knowing Twilio did not take the message', async () => {
    twilio.failNext(1, { status: 429, code: 20429, retryAfterSeconds: 7 });
    const error = await failure(transport.send(sms()));
    expect(error).not.toBeInstanceOf(PermanentSendError);
    expect(error).toMatchObject({
      retryable: true,
      reachedProvider: 'no',
      status: 429,
      providerCode: '20429',
    });
    expect(error.retryAfterMs).toBe(7000);
  });

  it('keeps the Retry-After of concurrent sends apart', async () => {
    twilio.failNext(1, { status: 429, code: 20429, retryAfterSeconds: 3 });
    twilio.failNext(1, { status: 429, code: 20429 });
    const [a, b] = await Promise.all([
      failure(transport.send(sms({ eventId: 'e-a' }))),
      failure(transport.send(sms({ eventId: 'e-b' }))),
    ]);
    expect([a.retryAfterMs, b.retryAfterMs].sort()).toEqual([3000, undefined]);
  });

  it('treats a full sender queue (21611) as throttling', async () => {
    twilio.failNext(1, { status: 400, code: 21611 });
    const error = await failure(transport.send(sms()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no', providerCode: '21611' });
  });

  it('retries wrong credentials (a config problem must not dead-letter everything)', async () => {
    await transport.close();
    transport = transportFor({ authToken: 'not-the-token' });
    const error = await failure(transport.send(sms()));
    expect(error).toMatchObject({
      retryable: true,
      reachedProvider: 'no',
      status: 401,
      providerCode: '20003',
    });
    expect(twilio.messages).toHaveLength(0);
  });

  it.each([403, 404])('retries %i (account or permission), never reached', async (status) => {
    twilio.failNext(1, { status, code: status === 404 ? 20404 : 20003 });
    const error = await failure(transport.send(sms()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no', status });
  });

  it('retries a 5xx, and cannot tell whether the message was accepted', async () => {
    twilio.failNext(1, { status: 503, code: 20500 });
    const error = await failure(transport.send(sms()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'unknown', status: 503 });
  });

  it('times out after providerTimeoutMs with reachedProvider unknown; the message was in fact accepted', async () => {
    await transport.close();
    transport = transportFor({ timeoutMs: 200 });
    twilio.hold();
    const error = await failure(transport.send(sms()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'unknown' });
    expect(error.message).toContain('no answer within 200 ms');
    expect(twilio.messages).toHaveLength(1);
    expect(twilio.release()).toBe(1);
  });

  it.each([false, true])(
    'reports a connection reset after the request as unknown (accepted first: %s)',
    async (accept) => {
      twilio.failNext(1, { reset: true, accept });
      const error = await failure(transport.send(sms()));
      expect(error).toMatchObject({ retryable: true, reachedProvider: 'unknown' });
      expect(twilio.messages).toHaveLength(accept ? 1 : 0);
    },
  );

  it('reports a refused connection as never reached', async () => {
    await transport.close();
    transport = transportFor({ apiUrl: await closedPortUrl() });
    const error = await failure(transport.send(sms()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no' });
    expect(error.message).toContain('ECONNREFUSED');
  });

  describe('lookup', () => {
    it('finds a message Twilio accepted but never answered for, while still queued (no date_sent)', async () => {
      await transport.close();
      transport = transportFor({ timeoutMs: 200 });
      const since = new Date();
      twilio.hold();
      await failure(transport.send(sms()));
      twilio.release();
      const [accepted] = twilio.messages;
      expect(accepted!.dateSent).toBeNull();
      expect(await transport.lookup(sms(), since)).toEqual({ found: true, providerMessageId: accepted!.sid });
      // The scan reads the recipient's messages without a DateSent filter (it would hide queued ones).
      const list = twilio.requests.filter((r) => r.method === 'GET');
      expect(list.length).toBeGreaterThan(0);
      expect(list[0]!.query.get('To')).toBe('+14155550100');
      expect(list[0]!.query.get('From')).toBe('+15005550006');
      expect([...list[0]!.query.keys()].some((k) => k.startsWith('DateSent'))).toBe(false);
    });

    it('resolves a crash between the provider call and the recorded outcome', async () => {
      const since = new Date();
      twilio.hold();
      const pending = failure(transport.send(sms()));
      await twilio.whenHeld(1);
      // The sender dies while Twilio has the message but has not answered: its sockets go with it.
      await transport.close();
      expect(await pending).toMatchObject({ retryable: true, reachedProvider: 'unknown' });
      const restarted = transportFor();
      try {
        expect(await restarted.lookup(sms(), since)).toEqual({
          found: true,
          providerMessageId: twilio.messages[0]!.sid,
        });
      } finally {
        await restarted.close();
        twilio.release();
      }
    });

    it('finds it once sent too', async () => {
      const since = new Date();
      const { providerMessageId } = await transport.send(sms());
      twilio.markSent(providerMessageId);
      expect(await transport.lookup(sms(), since)).toEqual({ found: true, providerMessageId });
    });

    it('answers not found when only other messages exist', async () => {
      const since = new Date();
      const dayAgo = new Date(since.getTime() - 24 * 3600_000);
      // The same text to the same number yesterday (an earlier event), another text now, another sender.
      twilio.addMessage({
        to: '+14155550100',
        from: '+15005550006',
        body: 'Your code is 4711',
        dateCreated: dayAgo,
        dateSent: dayAgo,
      });
      twilio.addMessage({
        to: '+14155550100',
        from: '+15005550006',
        body: 'Something else',
        dateCreated: since,
      });
      twilio.addMessage({
        to: '+14155550100',
        from: '+15005550007',
        body: 'Your code is 4711',
        dateCreated: since,
      });
      twilio.addMessage({
        to: '+14155550100',
        from: '+15005550006',
        body: 'Your code is 4711',
        direction: 'inbound',
        dateCreated: since,
      });
      expect(await transport.lookup(sms(), since)).toEqual({ found: false });
    });

    it('matches through a Messaging Service, whose sender number Twilio picks', async () => {
      const since = new Date();
      const { providerMessageId } = await transport.send(sms({ from: SERVICE_SID }));
      twilio.markSent(providerMessageId);
      expect(twilio.messages[0]!.from).not.toBeNull();
      expect(await transport.lookup(sms({ from: SERVICE_SID }), since)).toEqual({
        found: true,
        providerMessageId,
      });
      const list = twilio.requests.filter((r) => r.method === 'GET');
      expect(list[0]!.query.get('From')).toBeNull();
    });

    it('recognises the trial-account prefix Twilio adds to the body', async () => {
      const since = new Date();
      const seeded = twilio.addMessage({
        to: '+14155550100',
        from: '+15005550006',
        body: 'Sent from your Twilio trial account - Your code is 4711',
        status: 'queued',
        dateCreated: since,
      });
      expect(await transport.lookup(sms(), since)).toEqual({ found: true, providerMessageId: seeded.sid });
    });

    it('follows the pages to the end of the recipient’s history', async () => {
      await transport.close();
      transport = transportFor({ lookupMaxMessages: 1000 });
      const since = new Date();
      const { providerMessageId } = await transport.send(sms());
      twilio.markSent(providerMessageId, new Date(since.getTime() + 1000));
      for (let i = 0; i < 250; i++) {
        twilio.addMessage({
          to: '+14155550100',
          from: '+15005550006',
          body: `other ${i}`,
          dateCreated: since,
          dateSent: new Date(since.getTime() + 5000),
        });
      }
      expect(await transport.lookup(sms(), since)).toEqual({ found: true, providerMessageId });
      expect(twilio.requests.filter((r) => r.method === 'GET').length).toBe(3);
    });

    it('fails, retryably, rather than answer not found past lookupMaxMessages', async () => {
      await transport.close();
      transport = transportFor({ lookupMaxMessages: 50 });
      const since = new Date();
      for (let i = 0; i < 120; i++) {
        twilio.addMessage({
          to: '+14155550100',
          from: '+15005550006',
          body: `other ${i}`,
          dateCreated: since,
        });
      }
      const error = await failure(transport.lookup(sms(), since));
      expect(error).toMatchObject({ retryable: true, reachedProvider: 'unknown' });
      expect(error.message).toContain('more than 50 messages');
    });

    it('throws a retryable SendError when the lookup itself fails', async () => {
      twilio.failNext(1, { status: 500, code: 20500, on: 'list' });
      const failed = await failure(transport.lookup(sms(), new Date()));
      expect(failed).toMatchObject({ retryable: true, status: 500 });
      // Even an error that would reject a send leaves a lookup retryable: the attempt's fate is still open.
      twilio.failNext(1, { status: 400, code: 21211, on: 'list' });
      const rejected = await failure(transport.lookup(sms(), new Date()));
      expect(rejected).not.toBeInstanceOf(PermanentSendError);
      expect(rejected).toMatchObject({ retryable: true, providerCode: '21211' });
    });
  });
});
