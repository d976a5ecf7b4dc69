import { startSesServer, type TestSesServer } from '@holdfast/testkit/ses-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermanentSendError, SesTransport } from '../src/index.ts';

const raw = Buffer.from('From: a@acme.example\r\nTo: b@x.example\r\nSubject: hi\r\n\r\nhello\r\n');
const credentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};

describe('SesTransport (real @aws-sdk/client-sesv2 against SES on loopback)', () => {
  let ses: TestSesServer;
  let transport: SesTransport;
  beforeEach(async () => {
    ses = await startSesServer();
    transport = new SesTransport({
      region: 'eu-west-1',
      endpoint: ses.endpoint,
      credentials,
      configurationSet: 'holdfast-events',
    });
  });
  afterEach(async () => {
    await transport.close();
    await ses.close();
  });

  it('sends the raw bytes unchanged to every envelope recipient and returns the SES MessageId', async () => {
    const result = await transport.send({
      eventId: 'e-1',
      project: 'acme',
      raw,
      from: 'a@acme.example',
      to: ['b@x.example', 'hidden@acme.example'],
    });
    expect(ses.sent).toHaveLength(1);
    const [sent] = ses.sent;
    expect(result.providerMessageId).toBe(sent!.messageId);
    expect(sent!.raw.equals(raw)).toBe(true);
    expect(sent!.destination).toEqual(['b@x.example', 'hidden@acme.example']);
    expect(sent!.from).toBe('a@acme.example');
    expect(sent!.configurationSet).toBe('holdfast-events');
    expect(sent!.tags).toContainEqual({ Name: 'holdfast-event-id', Value: 'e-1' });
    expect(String(sent!.headers.authorization)).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/ses\/aws4_request/,
    );
  });

  it('maps a permanent SES rejection to PermanentSendError with the reason', async () => {
    ses.failNext({ status: 400, type: 'MessageRejected', message: 'Email address is not verified.' });
    const error = await transport
      .send({ eventId: 'e-2', project: 'acme', raw, from: 'a@acme.example', to: ['b@x.example'] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentSendError);
    expect((error as PermanentSendError).providerCode).toBe('MessageRejected');
    expect((error as Error).message).toContain('Email address is not verified.');
  });

  it('leaves throttling retryable (not a PermanentSendError)', async () => {
    ses.failNext(
      { status: 429, type: 'TooManyRequestsException', message: 'Maximum sending rate exceeded.' },
      10,
    );
    const error = await transport
      .send({ eventId: 'e-3', project: 'acme', raw, from: 'a@acme.example', to: ['b@x.example'] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(PermanentSendError);
    expect((error as Error).name).toBe('TooManyRequestsException');
  });
});
