import { loadConfig } from '@holdfast/core';
import { startTwilioServer } from '@holdfast/testkit/twilio-server';
import { startWhatsAppCloudServer } from '@holdfast/testkit/whatsapp-cloud-server';
import { describe, expect, it } from 'vitest';
import {
  emailTransportFromConfig,
  OutboxTransport,
  SesTransport,
  SmsOutboxTransport,
  smsTransportFromConfig,
  TransportConfigError,
  TwilioSmsTransport,
  WhatsAppCloudTransport,
  WhatsAppOutboxTransport,
  whatsappTransportFromConfig,
} from '../src/index.ts';

const ACCOUNT_SID = `AC${'0'.repeat(32)}`;

function configError(fn: () => unknown): TransportConfigError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(TransportConfigError);
  expect((thrown as TransportConfigError).code).toBe('HOLDFAST_ERR_TRANSPORT_CONFIG');
  return thrown as TransportConfigError;
}

describe('transports from config', () => {
  it('uses the outbox for every channel by default', async () => {
    const config = loadConfig({});
    const transports = [
      emailTransportFromConfig(config),
      smsTransportFromConfig(config),
      whatsappTransportFromConfig(config),
    ];
    expect(transports[0]).toBeInstanceOf(OutboxTransport);
    expect(transports[1]).toBeInstanceOf(SmsOutboxTransport);
    expect(transports[2]).toBeInstanceOf(WhatsAppOutboxTransport);
    expect(transports.map((t) => t.name)).toEqual(['outbox', 'outbox', 'outbox']);
    await Promise.all(transports.map((t) => t.close()));
  });

  it('builds SES for HOLDFAST_EMAIL_TRANSPORT=ses', async () => {
    const transport = emailTransportFromConfig(loadConfig({ HOLDFAST_EMAIL_TRANSPORT: 'ses' }));
    expect(transport).toBeInstanceOf(SesTransport);
    await transport.close();
  });

  it('names the missing Twilio variables', () => {
    expect(
      configError(() => smsTransportFromConfig(loadConfig({ HOLDFAST_SMS_TRANSPORT: 'twilio' }))).missing,
    ).toBe('HOLDFAST_TWILIO_ACCOUNT_SID');
    const error = configError(() =>
      smsTransportFromConfig(
        loadConfig({ HOLDFAST_SMS_TRANSPORT: 'twilio', HOLDFAST_TWILIO_ACCOUNT_SID: ACCOUNT_SID }),
      ),
    );
    expect(error.missing).toBe('HOLDFAST_TWILIO_AUTH_TOKEN');
    expect(error.message).toContain('HOLDFAST_TWILIO_AUTH_TOKEN');
  });

  it('names the missing WhatsApp variables', () => {
    expect(
      configError(() => whatsappTransportFromConfig(loadConfig({ HOLDFAST_WHATSAPP_TRANSPORT: 'cloud-api' })))
        .missing,
    ).toBe('HOLDFAST_WHATSAPP_ACCESS_TOKEN');
    expect(
      configError(() =>
        whatsappTransportFromConfig(
          loadConfig({
            HOLDFAST_WHATSAPP_TRANSPORT: 'cloud-api',
            HOLDFAST_WHATSAPP_ACCESS_TOKEN: 'EAAGtoken',
          }),
        ),
      ).missing,
    ).toBe('HOLDFAST_WHATSAPP_PHONE_NUMBER_ID');
  });

  it('wires Twilio from the environment: API URL, credentials, and the public callback URL', async () => {
    const twilio = await startTwilioServer();
    const transport = smsTransportFromConfig(
      loadConfig({
        HOLDFAST_SMS_TRANSPORT: 'twilio',
        HOLDFAST_TWILIO_ACCOUNT_SID: twilio.accountSid,
        HOLDFAST_TWILIO_AUTH_TOKEN: twilio.authToken,
        HOLDFAST_TWILIO_API_URL: twilio.url,
        HOLDFAST_PUBLIC_BASE_URL: 'https://holdfast.acme.example',
      }),
    );
    try {
      expect(transport).toBeInstanceOf(TwilioSmsTransport);
      expect(transport.name).toBe('twilio');
      const { providerMessageId } = await transport.send({
        eventId: 'e-1',
        project: 'billing',
        from: '+15005550006',
        to: '+14155550100',
        body: 'Invoice ready',
        mediaUrls: [],
      });
      expect(twilio.messages[0]!.sid).toBe(providerMessageId);
      expect(twilio.messages[0]!.statusCallback).toBe(
        'https://holdfast.acme.example/webhooks/twilio/billing/status',
      );
    } finally {
      await transport.close();
      await twilio.close();
    }
  });

  it('wires the Cloud API from the environment', async () => {
    const meta = await startWhatsAppCloudServer();
    const transport = whatsappTransportFromConfig(
      loadConfig({
        HOLDFAST_WHATSAPP_TRANSPORT: 'cloud-api',
        HOLDFAST_WHATSAPP_ACCESS_TOKEN: meta.accessToken,
        HOLDFAST_WHATSAPP_PHONE_NUMBER_ID: meta.phoneNumberId,
        HOLDFAST_WHATSAPP_GRAPH_URL: meta.url,
        HOLDFAST_WHATSAPP_GRAPH_VERSION: 'v22.0',
      }),
    );
    try {
      expect(transport).toBeInstanceOf(WhatsAppCloudTransport);
      expect(transport.name).toBe('cloud-api');
      await transport.send({
        eventId: 'e-1',
        project: 'acme',
        to: '+14155550100',
        content: { type: 'text', text: 'hi' },
      });
      expect(meta.sentFor('e-1')).toHaveLength(1);
      expect(meta.sent[0]!.version).toBe('v22.0');
    } finally {
      await transport.close();
      await meta.close();
    }
  });
});
