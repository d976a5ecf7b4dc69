import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WhatsAppContent } from '@holdfast/core';
import {
  startWhatsAppCloudServer,
  type TestWhatsAppCloudServer,
} from '@holdfast/testkit/whatsapp-cloud-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type OutboundWhatsApp,
  PermanentSendError,
  SendError,
  WhatsAppCloudTransport,
  type WhatsAppTransport,
} from '../src/index.ts';

function message(content: WhatsAppContent, eventId = 'e-1'): OutboundWhatsApp {
  return { eventId, project: 'acme', to: '+14155550100', content };
}
const text = (eventId = 'e-1') => message({ type: 'text', text: 'Your order shipped' }, eventId);

async function failure(promise: Promise<unknown>): Promise<SendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SendError);
  return error as SendError;
}

describe('WhatsAppCloudTransport (fetch against the Cloud API on loopback)', () => {
  let meta: TestWhatsAppCloudServer;
  let transport: WhatsAppCloudTransport;
  const transportFor = (options: Partial<ConstructorParameters<typeof WhatsAppCloudTransport>[0]> = {}) =>
    new WhatsAppCloudTransport({
      accessToken: meta.accessToken,
      phoneNumberId: meta.phoneNumberId,
      graphUrl: meta.url,
      graphVersion: 'v23.0',
      timeoutMs: 2000,
      ...options,
    });
  beforeEach(async () => {
    meta = await startWhatsAppCloudServer();
    transport = transportFor();
  });
  afterEach(async () => {
    await transport.close();
    await meta.close();
  });

  it('posts the message object with the bearer token and returns the wamid', async () => {
    const result = await transport.send(
      message({ type: 'text', text: 'See https://acme.example/t/1', previewUrl: true }),
    );
    expect(meta.sent).toHaveLength(1);
    const [sent] = meta.sent;
    expect(result.providerMessageId).toBe(sent!.id);
    expect(result.providerMessageId).toMatch(/^wamid\./);
    expect(sent!.version).toBe('v23.0');
    expect(sent!.phoneNumberId).toBe(meta.phoneNumberId);
    expect(sent!.headers.authorization).toBe(`Bearer ${meta.accessToken}`);
    expect(sent!.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '+14155550100',
      type: 'text',
      text: { body: 'See https://acme.example/t/1', preview_url: true },
      biz_opaque_callback_data: 'e-1',
    });
    expect(meta.sentFor('e-1')).toHaveLength(1);
  });

  it('sends templates with their language and components', async () => {
    const components = [{ type: 'body', parameters: [{ type: 'text', text: 'Ada' }] }];
    await transport.send(
      message({ type: 'template', template: { name: 'order_shipped', language: 'en_US', components } }),
    );
    expect(meta.sent[0]!.body.template).toEqual({
      name: 'order_shipped',
      language: { code: 'en_US' },
      components,
    });
  });

  it('sends media by link or by id, with caption and filename', async () => {
    await transport.send(
      message({ type: 'image', media: { link: 'https://cdn.acme.example/p.jpg', caption: 'Your parcel' } }),
    );
    await transport.send(
      message({ type: 'document', media: { id: '1234567890', filename: 'invoice.pdf' } }, 'e-2'),
    );
    expect(meta.sent[0]!.body.image).toEqual({
      link: 'https://cdn.acme.example/p.jpg',
      caption: 'Your parcel',
    });
    expect(meta.sent[1]!.body.document).toEqual({ id: '1234567890', filename: 'invoice.pdf' });
    expect(meta.sent[1]!.body.type).toBe('document');
  });

  it('has no lookup: the Cloud API cannot find a sent message', () => {
    const asTransport: WhatsAppTransport = transport;
    expect(asTransport.lookup).toBeUndefined();
  });

  it.each([
    [429, 130429],
    [400, 131048],
    [400, 131056],
    [400, 4],
    [400, 80007],
  ])('treats HTTP %i code %i as throttling: retryable, not taken, with Retry-After', async (status, code) => {
    meta.failNext(1, { status, code, retryAfterSeconds: 30 });
    const error = await failure(transport.send(text()));
    expect(error).toMatchObject({
      retryable: true,
      reachedProvider: 'no',
      providerCode: String(code),
      status,
    });
    expect(error.retryAfterMs).toBe(30_000);
  });

  it.each([100, 131008, 131009, 131021, 131026, 131047, 131051, 131052, 132000, 132001, 132016, 133010])(
    'rejects code %i permanently',
    async (code) => {
      meta.failNext(1, { status: 400, code });
      const error = await failure(transport.send(text()));
      expect(error).toBeInstanceOf(PermanentSendError);
      expect(error).toMatchObject({ retryable: false, reachedProvider: 'no', providerCode: String(code) });
      expect(meta.sent).toHaveLength(0);
    },
  );

  it('rejects permanently what the Cloud API itself refuses as an invalid parameter', async () => {
    const error = await failure(transport.send(message({ type: 'text', text: '' })));
    expect(error).toBeInstanceOf(PermanentSendError);
    expect(error.providerCode).toBe('100');
    expect(error.message).toContain("text['body'] is required");
  });

  it('retries a wrong token (401, code 190): a config problem, and nothing was taken', async () => {
    await transport.close();
    transport = transportFor({ accessToken: 'EAAGwrong' });
    const error = await failure(transport.send(text()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no', status: 401, providerCode: '190' });
  });

  it('retries a phone number id the token cannot see (code 100, subcode 33)', async () => {
    await transport.close();
    transport = transportFor({ phoneNumberId: '999999999999999' });
    const error = await failure(transport.send(text()));
    expect(error).not.toBeInstanceOf(PermanentSendError);
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no', providerCode: '100' });
  });

  it.each([
    [403, 10],
    [400, 200],
  ])('retries permission errors (HTTP %i, code %i)', async (status, code) => {
    meta.failNext(1, { status, code });
    const error = await failure(transport.send(text()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no' });
  });

  it.each([
    [500, 131000],
    [500, 1],
    [503, 2],
    [400, 131000],
    [502, 0],
  ])('retries HTTP %i code %i without knowing whether it was taken', async (status, code) => {
    meta.failNext(1, { status, code });
    const error = await failure(transport.send(text()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'unknown', status });
  });

  it('times out after providerTimeoutMs with reachedProvider unknown; Meta had in fact taken it', async () => {
    await transport.close();
    transport = transportFor({ timeoutMs: 200 });
    meta.hold();
    const error = await failure(transport.send(text('e-held')));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'unknown' });
    expect(error.message).toContain('no answer within 200 ms');
    expect(meta.sentFor('e-held')).toHaveLength(1);
    expect(meta.release()).toBe(1);
  });

  it('answers once a held response is released in time', async () => {
    meta.hold();
    const pending = transport.send(text());
    await meta.whenHeld(1);
    meta.release();
    expect((await pending).providerMessageId).toBe(meta.sent[0]!.id);
  });

  it.each([false, true])('reports a connection reset as unknown (accepted first: %s)', async (accept) => {
    meta.failNext(1, { reset: true, accept });
    const error = await failure(transport.send(text()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'unknown' });
    expect(meta.sent).toHaveLength(accept ? 1 : 0);
  });

  it('reports a refused connection as never reached', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await transport.close();
    transport = transportFor({ graphUrl: `http://127.0.0.1:${port}` });
    const error = await failure(transport.send(text()));
    expect(error).toMatchObject({ retryable: true, reachedProvider: 'no' });
  });
});
