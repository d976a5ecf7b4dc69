import { describe, expect, it } from 'vitest';
import {
  PayloadInvalidError,
  parseTwilioInbound,
  parseTwilioStatus,
  SignatureInvalidError,
  verifyTwilioSignature,
} from '../../src/providers/index.ts';
import { twilioFixture } from './fixtures.ts';
import { signTwilioRequest, TEST_TWILIO_AUTH_TOKEN } from './signers.ts';

const url = 'https://hooks.acme.example/webhooks/twilio/acme/inbound?source=sms';
const receivedAt = new Date('2026-11-22T10:00:05.000Z');

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('verifyTwilioSignature (twilio validateRequest over the public URL and form params)', () => {
  const params = twilioFixture('inbound-sms.json');
  const signature = signTwilioRequest(url, params);
  const verify = (overrides: Partial<Parameters<typeof verifyTwilioSignature>[0]>) =>
    verifyTwilioSignature({ authToken: TEST_TWILIO_AUTH_TOKEN, signature, url, params, ...overrides });

  it('accepts the signature Twilio computes for the URL and parameters', () => {
    expect(() => verify({})).not.toThrow();
  });

  it('accepts the URL with the default port spelled out, as some Twilio signers send it', () => {
    const withPort = 'https://hooks.acme.example:443/webhooks/twilio/acme/inbound?source=sms';
    expect(() => verify({ signature: signTwilioRequest(withPort, params) })).not.toThrow();
  });

  it('rejects a signature made with another auth token', () => {
    const forged = signTwilioRequest(url, params, 'another-token-0000000000000000000');
    expect(errorOf(() => verify({ signature: forged }))).toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
      provider: 'twilio',
    });
  });

  it('rejects when the URL differs (other path, other query, http instead of https)', () => {
    for (const other of [
      'https://hooks.acme.example/webhooks/twilio/other/inbound?source=sms',
      'https://hooks.acme.example/webhooks/twilio/acme/inbound',
      'http://hooks.acme.example/webhooks/twilio/acme/inbound?source=sms',
    ]) {
      expect(errorOf(() => verify({ url: other }))).toBeInstanceOf(SignatureInvalidError);
    }
  });

  it('rejects when a parameter was altered by one character, added or removed', () => {
    expect(
      errorOf(() => verify({ params: { ...params, Body: `${params.Body!.slice(0, -1)}!` } })),
    ).toBeInstanceOf(SignatureInvalidError);
    expect(errorOf(() => verify({ params: { ...params, Extra: '1' } }))).toBeInstanceOf(
      SignatureInvalidError,
    );
    const { Body: _removed, ...withoutBody } = params;
    expect(errorOf(() => verify({ params: withoutBody }))).toBeInstanceOf(SignatureInvalidError);
  });

  it('rejects a missing signature with its own code, and garbage as invalid', () => {
    expect(errorOf(() => verify({ signature: undefined }))).toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_MISSING',
    });
    expect(errorOf(() => verify({ signature: '' }))).toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_MISSING',
    });
    expect(errorOf(() => verify({ signature: 'not-a-signature' }))).toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
    });
  });

  it('refuses to verify without an auth token or with a relative URL (configuration, not the caller)', () => {
    expect(errorOf(() => verify({ authToken: '' }))).toMatchObject({ code: 'HOLDFAST_ERR_CONFIG' });
    expect(errorOf(() => verify({ url: '/webhooks/twilio/acme/inbound' }))).toMatchObject({
      code: 'HOLDFAST_ERR_CONFIG',
    });
  });
});

describe('parseTwilioInbound', () => {
  it('normalises an inbound SMS to one message.received', () => {
    const params = twilioFixture('inbound-sms.json');
    expect(parseTwilioInbound(params, receivedAt)).toEqual([
      {
        provider: 'twilio',
        channel: 'sms',
        direction: 'inbound',
        type: 'message.received',
        occurredAt: receivedAt,
        providerEventId: 'SM14c85692d6b0d93b20be02657edc33e6:inbound',
        providerMessageId: 'SM14c85692d6b0d93b20be02657edc33e6',
        data: {
          from: '+14155550123',
          to: '+14155550100',
          text: 'Hi, can you confirm the wire of $12,500 to account ending 4471?',
          numMedia: 0,
          numSegments: 1,
          accountSid: 'AC41441a6dcbc9b1f7cc9ac5e9c1cda7dc',
          messagingServiceSid: 'MG4f4d76c04524d5aabf80c3e5361d3100',
          raw: params,
        },
        media: [],
      },
    ]);
  });

  it('returns every MMS media URL with its content type and position', () => {
    const [event] = parseTwilioInbound(twilioFixture('inbound-mms.json'), receivedAt);
    expect(event!.providerMessageId).toBe('MM7c7290815965cc228f80317fca9ae287');
    expect(event!.data).toMatchObject({ numMedia: 2, text: 'Signed form and a photo of the cheque' });
    expect(event!.media).toEqual([
      {
        url: 'https://api.twilio.com/2010-04-01/Accounts/AC41441a6dcbc9b1f7cc9ac5e9c1cda7dc/Messages/MM7c7290815965cc228f80317fca9ae287/Media/ME2f84019a4ac3f1ac82f25f5a7420ed17',
        contentType: 'image/jpeg',
        index: 0,
      },
      {
        url: 'https://api.twilio.com/2010-04-01/Accounts/AC41441a6dcbc9b1f7cc9ac5e9c1cda7dc/Messages/MM7c7290815965cc228f80317fca9ae287/Media/MEf76a55ba783cf0fa8b1c9c97d3383b5a',
        contentType: 'application/pdf',
        index: 1,
      },
    ]);
  });

  it('gives a redelivery the same providerEventId', () => {
    const params = twilioFixture('inbound-sms.json');
    const first = parseTwilioInbound(params, receivedAt)[0]!;
    const again = parseTwilioInbound({ ...params }, new Date(receivedAt.getTime() + 30_000))[0]!;
    expect(again.providerEventId).toBe(first.providerEventId);
  });

  it('marks messages to or from a Twilio WhatsApp sender as the whatsapp channel', () => {
    const params = {
      ...twilioFixture('inbound-sms.json'),
      From: 'whatsapp:+447700900123',
      To: 'whatsapp:+14155550100',
    };
    expect(parseTwilioInbound(params, receivedAt)[0]!.channel).toBe('whatsapp');
  });

  it('names each missing or malformed parameter', () => {
    const { MessageSid: _sid, From: _from, ...params } = twilioFixture('inbound-sms.json');
    const error = errorOf(() => parseTwilioInbound(params, receivedAt));
    expect(error).toBeInstanceOf(PayloadInvalidError);
    expect((error as PayloadInvalidError).issues.map((i) => i.path)).toEqual(['MessageSid', 'From']);
    expect((error as Error).message).toMatch(/MessageSid: is required/);
  });

  it('requires the media URLs NumMedia announces, and refuses repeated or odd parameters', () => {
    const { MediaUrl1: _gone, ...mms } = twilioFixture('inbound-mms.json');
    expect(errorOf(() => parseTwilioInbound(mms, receivedAt))).toMatchObject({
      code: 'HOLDFAST_ERR_PAYLOAD_INVALID',
      issues: [{ path: 'MediaUrl1', message: 'is required' }],
    });
    const sms = twilioFixture('inbound-sms.json');
    expect(errorOf(() => parseTwilioInbound({ ...sms, NumMedia: 'eleven' }, receivedAt))).toMatchObject({
      issues: [{ path: 'NumMedia' }],
    });
    expect(errorOf(() => parseTwilioInbound({ ...sms, From: ['+1', '+2'] }, receivedAt))).toMatchObject({
      issues: [{ path: 'From', message: 'must appear once' }],
    });
    expect(errorOf(() => parseTwilioInbound({ ...sms, SmsStatus: 'delivered' }, receivedAt))).toMatchObject({
      issues: [{ path: 'SmsStatus' }],
    });
  });
});

describe('parseTwilioStatus', () => {
  it.each([
    ['status-sent.json', 'message.sent'],
    ['status-delivered.json', 'message.delivered'],
    ['status-failed.json', 'message.failed'],
  ])('%s -> %s, dated by receipt (status callbacks carry no time)', (file, type) => {
    const params = twilioFixture(file);
    const [event] = parseTwilioStatus(params, receivedAt);
    expect(event).toMatchObject({
      provider: 'twilio',
      channel: 'sms',
      direction: 'outbound',
      type,
      occurredAt: receivedAt,
      providerEventId: `SM9b1f1c3a8e0d4a0c9f2e7d6b5a4c3b2a:${params.MessageStatus}`,
      providerMessageId: 'SM9b1f1c3a8e0d4a0c9f2e7d6b5a4c3b2a',
      media: [],
    });
    expect(event!.data.raw).toEqual(params);
  });

  it('carries the error code of a failed message, and the carrier done date of a delivered one', () => {
    expect(parseTwilioStatus(twilioFixture('status-failed.json'), receivedAt)[0]!.data).toMatchObject({
      status: 'failed',
      error: { code: '30003' },
    });
    const delivered = parseTwilioStatus(twilioFixture('status-delivered.json'), receivedAt)[0]!.data;
    expect(delivered).toMatchObject({ carrierDoneDate: '2611221004' });
    expect(delivered).not.toHaveProperty('error');
    const withMessage = {
      ...twilioFixture('status-failed.json'),
      ErrorMessage: 'Unreachable destination handset',
    };
    expect(parseTwilioStatus(withMessage, receivedAt)[0]!.data.error).toEqual({
      code: '30003',
      message: 'Unreachable destination handset',
    });
  });

  it('collapses duplicates of one status and separates different statuses', () => {
    const sent = twilioFixture('status-sent.json');
    const a = parseTwilioStatus(sent, receivedAt)[0]!.providerEventId;
    const b = parseTwilioStatus(sent, new Date(receivedAt.getTime() + 60_000))[0]!.providerEventId;
    const c = parseTwilioStatus(twilioFixture('status-delivered.json'), receivedAt)[0]!.providerEventId;
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it('archives a status Twilio added later as provider.unknown, raw kept', () => {
    const params = { ...twilioFixture('status-sent.json'), MessageStatus: 'partially_delivered' };
    expect(parseTwilioStatus(params, receivedAt)[0]).toMatchObject({
      type: 'provider.unknown',
      providerEventId: 'SM9b1f1c3a8e0d4a0c9f2e7d6b5a4c3b2a:partially_delivered',
      data: { status: 'partially_delivered', raw: params },
    });
  });

  it('treats "received" as about an inbound message', () => {
    const params = { ...twilioFixture('status-sent.json'), MessageStatus: 'received' };
    expect(parseTwilioStatus(params, receivedAt)[0]).toMatchObject({
      type: 'message.received',
      direction: 'inbound',
    });
  });

  it('names a missing MessageSid or MessageStatus', () => {
    const { MessageStatus: _s, ...params } = twilioFixture('status-sent.json');
    expect(errorOf(() => parseTwilioStatus(params, receivedAt))).toMatchObject({
      code: 'HOLDFAST_ERR_PAYLOAD_INVALID',
      issues: [{ path: 'MessageStatus', message: 'is required' }],
    });
    expect(
      errorOf(() => parseTwilioStatus({ ...params, MessageStatus: 'sent', MessageSid: 'SM-1' }, receivedAt)),
    ).toMatchObject({
      issues: [{ path: 'MessageSid' }],
    });
  });
});
