import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startSesServer, type TestSesServer } from '@holdfast/testkit/ses-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermanentSendError, SendError, SesTransport } from '../src/index.ts';

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

  it.each(['TooManyRequestsException', 'LimitExceededException', 'SendingPausedException'])(
    'retries %s, knowing SES did not take the message (one call: the SDK does not retry)',
    async (type) => {
      ses.failNext({ status: type === 'TooManyRequestsException' ? 429 : 400, type, message: 'slow down' });
      const error = await transport
        .send({ eventId: 'e-3', project: 'acme', raw, from: 'a@acme.example', to: ['b@x.example'] })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SendError);
      expect(error).not.toBeInstanceOf(PermanentSendError);
      expect(error).toMatchObject({ retryable: true, reachedProvider: 'no', providerCode: type });
      expect(ses.sent).toHaveLength(0);
    },
  );

  it('reports the permanent rejection with its HTTP status', async () => {
    ses.failNext({ status: 400, type: 'BadRequestException', message: 'Missing required field' });
    const error = await send(transport);
    expect(error).toBeInstanceOf(PermanentSendError);
    expect(error).toMatchObject({ retryable: false, reachedProvider: 'no', status: 400 });
  });

  it('retries a 5xx without knowing whether SES took the message', async () => {
    ses.failNext({ status: 500, type: 'InternalFailure', message: 'We encountered an internal error.' });
    const error = await send(transport);
    expect(error).toMatchObject({
      retryable: true,
      reachedProvider: 'unknown',
      status: 500,
      providerCode: 'InternalFailure',
    });
  });

  it('retries refused credentials or permissions (a config problem must not dead-letter every email)', async () => {
    ses.failNext({
      status: 403,
      type: 'AccessDeniedException',
      message: 'not authorized to perform ses:SendEmail',
    });
    const error = await send(transport);
    expect(error).not.toBeInstanceOf(PermanentSendError);
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no', status: 403 });
  });

  it.each([
    ['NotFoundException', 404, 'Configuration set <holdfast-events> does not exist.'],
    ['MailFromDomainNotVerifiedException', 400, 'MAIL FROM domain is not verified.'],
    ['AccountSuspendedException', 400, 'The account is suspended from sending.'],
  ])(
    'retries %s: an account or configuration problem, not a rejection of the message',
    async (type, status, message) => {
      ses.failNext({ status, type, message });
      const error = await send(transport);
      expect(error).not.toBeInstanceOf(PermanentSendError);
      expect(error).toMatchObject({
        retryable: true,
        reachedProvider: 'no',
        providerCode: type,
        status,
        code: 'HOLDFAST_ERR_SEND_FAILED',
      });
      expect(error.message).toContain(message);
      expect(ses.sent).toHaveLength(0);
    },
  );

  it('times out after timeoutMs with reachedProvider unknown', async () => {
    // An endpoint that takes the request and never answers.
    const silent = createServer((req) => {
      req.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const slow = new SesTransport({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      credentials,
      timeoutMs: 200,
    });
    try {
      const error = await send(slow);
      expect(error).toMatchObject({ retryable: true, reachedProvider: 'unknown' });
      expect(error.message).toContain('no answer within 200 ms');
    } finally {
      await slow.close();
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('reports a refused connection as never reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const unreachable = new SesTransport({
      region: 'eu-west-1',
      endpoint: `http://127.0.0.1:${port}`,
      credentials,
    });
    try {
      const error = await send(unreachable);
      expect(error).toMatchObject({ retryable: true, reachedProvider: 'no' });
    } finally {
      await unreachable.close();
    }
  });
});

async function send(transport: SesTransport): Promise<SendError> {
  const error = await transport
    .send({ eventId: 'e-9', project: 'acme', raw, from: 'a@acme.example', to: ['b@x.example'] })
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(SendError);
  return error as SendError;
}
