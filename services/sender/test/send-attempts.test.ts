import { createLogger, type EventEnvelope, newEvent, QUEUE_PREFIX } from '@holdfast/core';
import type { EventWriter } from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { startSesServer, type TestSesServer } from '@holdfast/testkit/ses-server';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type OutboundEmail, SendError, SesTransport } from '../src/index.ts';
import { SendAttempts } from '../src/send-attempts.ts';
import type { Transport } from '../src/transports/index.ts';

const log = createLogger({ name: 'send-attempts-test', level: 'silent' });
const raw = Buffer.from('From: a@acme.example\r\nTo: b@x.example\r\nSubject: hi\r\n\r\nhello\r\n');

/** The events SendAttempts records, in order (the spool and archive behind it are not under test). */
function recordingWriter() {
  const events: EventEnvelope[] = [];
  const writer = {
    submit: async (event: EventEnvelope) => {
      events.push(event);
    },
  } as unknown as EventWriter;
  return { writer, events };
}

/** Only the envelope matters to SendAttempts; a full message.submitted is the sender's business. */
function submitted() {
  return newEvent({
    type: 'test.outbound-email',
    occurredAt: new Date(),
    project: 'acme',
    channel: 'email',
    direction: 'outbound',
    subject: 'statement-1',
    category: 'default',
    data: {},
  });
}

describe('SendAttempts.deliver (real Redis, SES on loopback)', () => {
  let redis: TestRedis;
  let client: Redis;
  let ses: TestSesServer;
  let transport: SesTransport;
  beforeEach(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    ses = await startSesServer();
    transport = new SesTransport({
      region: 'eu-west-1',
      endpoint: ses.endpoint,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    });
  });
  afterEach(async () => {
    await transport.close();
    await ses.close();
    client.disconnect();
    await redis.stop();
  });

  const email = (event: EventEnvelope): OutboundEmail => ({
    eventId: event.id,
    project: 'acme',
    raw,
    from: 'a@acme.example',
    to: ['b@x.example'],
  });

  it('sends on a replay after a permanent rejection: the provider did not take the message', async () => {
    const { writer, events } = recordingWriter();
    const attempts = new SendAttempts(client, writer, log);
    const event = submitted();
    ses.failNext({ status: 400, type: 'MessageRejected', message: 'Email address is not verified.' });
    const rejected = await attempts
      .deliver(event, email(event), transport, 'at-most-once', { attempt: 1, last: false })
      .catch((e: unknown) => e);
    expect(rejected).toMatchObject({ retryable: false, code: 'HOLDFAST_ERR_SEND_REJECTED' });
    const failed = events.find((e) => e.type === 'message.send-failed')!;
    expect(failed.data).toMatchObject({ attempt: 1, reachedProvider: 'no', providerCode: 'MessageRejected' });

    // The operator verifies the address and replays the dead letter (a fresh attempt budget).
    const result = await attempts.deliver(event, email(event), transport, 'at-most-once', {
      attempt: 1,
      last: false,
    });
    expect(result).toMatchObject({ outcome: 'sent', sentNow: true });
    expect(ses.sent.map((s) => s.messageId)).toEqual([result.providerMessageId]);
    // The rejection stays on record under its own id, then the new attempt and its outcome.
    expect(events.map((e) => e.type)).toEqual([
      'message.send-attempted',
      'message.send-failed',
      'message.send-failed',
      'message.send-attempted',
      'message.sent',
    ]);
    expect(events[2]!.id).toBe(failed.id);
    expect(events[3]!.data.attempt).toBe(2);

    // Settled as sent now: a further run records the send again and sends nothing.
    const again = await attempts.deliver(event, email(event), transport, 'at-least-once');
    expect(again).toMatchObject({ outcome: 'sent', sentNow: false, outcomeEventId: result.outcomeEventId });
    expect(ses.sent).toHaveLength(1);
  });

  it('after a rejection, a replay whose own call had an unknown fate is resolved by the policy, never resent at-most-once', async () => {
    const { writer, events } = recordingWriter();
    const attempts = new SendAttempts(client, writer, log);
    const event = submitted();
    ses.failNext({ status: 400, type: 'MessageRejected', message: 'no' });
    await attempts.deliver(event, email(event), transport, 'at-most-once').catch(() => {});
    // The replay's call goes out, and its answer is lost (a crash, a timeout).
    const lost: Transport<OutboundEmail> = {
      name: 'ses',
      send: async (message) => {
        await transport.send(message);
        throw new SendError('ses', 'no answer within 15000 ms', {
          retryable: true,
          reachedProvider: 'unknown',
        });
      },
      close: async () => {},
    };
    await expect(attempts.deliver(event, email(event), lost, 'at-most-once')).rejects.toThrow(/no answer/);
    const result = await attempts.deliver(event, email(event), transport, 'at-most-once', {
      attempt: 2,
      last: false,
    });
    expect(result).toMatchObject({ outcome: 'uncertain', sentNow: false });
    expect(ses.sent).toHaveLength(1);
    expect(events.at(-1)).toMatchObject({
      type: 'message.send-uncertain',
      data: { resolution: 'not-resent' },
    });
  });

  it('keeps a rejection of unknown fate settled, and names the transport once in the replayed error', async () => {
    const { writer } = recordingWriter();
    const attempts = new SendAttempts(client, writer, log);
    const event = submitted();
    let calls = 0;
    // A transport that cannot tell whether its refused call took effect.
    const vague: Transport<OutboundEmail> = {
      name: 'custom',
      send: async () => {
        calls++;
        throw new SendError('custom', 'refused after the upload', {
          retryable: false,
          reachedProvider: 'unknown',
        });
      },
      close: async () => {},
    };
    await expect(attempts.deliver(event, email(event), vague, 'at-least-once')).rejects.toThrow(
      'custom: refused after the upload',
    );
    const replayed = await attempts
      .deliver(event, email(event), vague, 'at-least-once')
      .catch((e: unknown) => e as SendError);
    expect(calls).toBe(1);
    expect(replayed).toMatchObject({
      message: 'custom: refused after the upload',
      code: 'HOLDFAST_ERR_SEND_REJECTED',
      retryable: false,
    });
  });

  it('keeps a rejection recorded before reachedProvider was recorded settled (it may predate the answer check)', async () => {
    const { writer } = recordingWriter();
    const attempts = new SendAttempts(client, writer, log);
    const event = submitted();
    const old = newEvent({
      type: 'message.send-failed',
      occurredAt: new Date(),
      project: 'acme',
      channel: 'email',
      direction: 'outbound',
      subject: event.subject,
      category: 'default',
      data: { transport: 'ses', attempt: 1, reason: 'ses: rejected the message: MessageRejected: no' },
    });
    await client.set(`${QUEUE_PREFIX}:send-outcome:${event.id}`, JSON.stringify(old));
    const replayed = await attempts
      .deliver(event, email(event), transport, 'at-least-once')
      .catch((e: unknown) => e as SendError);
    expect(replayed).toMatchObject({
      message: 'ses: rejected the message: MessageRejected: no',
      retryable: false,
    });
    expect(ses.sent).toHaveLength(0);
  });

  it('retries a missing configuration set without settling anything, and sends once it exists', async () => {
    const { writer, events } = recordingWriter();
    const attempts = new SendAttempts(client, writer, log);
    const event = submitted();
    ses.failNext({
      status: 404,
      type: 'NotFoundException',
      message: 'Configuration set <cs> does not exist.',
    });
    const error = await attempts
      .deliver(event, email(event), transport, 'at-most-once')
      .catch((e: unknown) => e as SendError);
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no' });
    expect(events.map((e) => e.type)).toEqual(['message.send-attempted']);
    expect(await client.exists(`${QUEUE_PREFIX}:send-outcome:${event.id}`)).toBe(0);
    const result = await attempts.deliver(event, email(event), transport, 'at-most-once', {
      attempt: 2,
      last: false,
    });
    expect(result).toMatchObject({ outcome: 'sent', sentNow: true });
    expect(ses.sent).toHaveLength(1);
  });
});
