import type { HoldfastConfig } from '@holdfast/core';
import { TransportConfigError } from '../errors.ts';
import { OutboxTransport } from './outbox-transport.ts';
import { SesTransport } from './ses-transport.ts';
import { SmsOutboxTransport } from './sms-outbox-transport.ts';
import type { EmailTransport, SmsTransport, WhatsAppTransport } from './transport.ts';
import { TwilioSmsTransport } from './twilio-sms-transport.ts';
import { WhatsAppCloudTransport } from './whatsapp-cloud-transport.ts';
import { WhatsAppOutboxTransport } from './whatsapp-outbox-transport.ts';

/** `HOLDFAST_EMAIL_TRANSPORT`: SES v2, or the outbox directory. */
export function emailTransportFromConfig(config: Readonly<HoldfastConfig>): EmailTransport {
  const spec = config.channels.email.transport;
  return spec.kind === 'outbox'
    ? new OutboxTransport(spec.dir)
    : new SesTransport({
        region: config.region,
        endpoint: config.sesEndpoint,
        timeoutMs: config.providerTimeoutMs,
      });
}

/** `HOLDFAST_SMS_TRANSPORT`: Twilio (needs the account SID and auth token), or the outbox directory. */
export function smsTransportFromConfig(config: Readonly<HoldfastConfig>): SmsTransport {
  const spec = config.channels.sms.transport;
  if (spec.kind === 'outbox') return new SmsOutboxTransport(spec.dir);
  const accountSid = config.twilio.accountSid;
  if (!accountSid) throw new TransportConfigError('twilio', 'HOLDFAST_TWILIO_ACCOUNT_SID');
  const authToken = config.twilioAuthToken;
  if (!authToken) throw new TransportConfigError('twilio', 'HOLDFAST_TWILIO_AUTH_TOKEN');
  return new TwilioSmsTransport({
    accountSid,
    authToken,
    apiUrl: config.twilio.apiUrl,
    timeoutMs: config.providerTimeoutMs,
    ...(config.publicBaseUrl ? { publicBaseUrl: config.publicBaseUrl } : {}),
  });
}

/**
 * `HOLDFAST_WHATSAPP_TRANSPORT`: the Cloud API (needs a token and phone number id), or the outbox
 * directory.
 */
export function whatsappTransportFromConfig(config: Readonly<HoldfastConfig>): WhatsAppTransport {
  const spec = config.channels.whatsapp.transport;
  if (spec.kind === 'outbox') return new WhatsAppOutboxTransport(spec.dir);
  const { accessToken, phoneNumberId, graphUrl, graphVersion } = config.whatsapp;
  if (!accessToken) throw new TransportConfigError('cloud-api', 'HOLDFAST_WHATSAPP_ACCESS_TOKEN');
  if (!phoneNumberId) throw new TransportConfigError('cloud-api', 'HOLDFAST_WHATSAPP_PHONE_NUMBER_ID');
  return new WhatsAppCloudTransport({
    accessToken,
    phoneNumberId,
    graphUrl,
    graphVersion,
    timeoutMs: config.providerTimeoutMs,
  });
}

export { OutboxTransport } from './outbox-transport.ts';
export { SesTransport, type SesTransportOptions } from './ses-transport.ts';
export { SmsOutboxTransport } from './sms-outbox-transport.ts';
export type * from './transport.ts';
export { TwilioSmsTransport, type TwilioSmsTransportOptions } from './twilio-sms-transport.ts';
export { WhatsAppCloudTransport, type WhatsAppCloudTransportOptions } from './whatsapp-cloud-transport.ts';
export { cloudApiMessage } from './whatsapp-message.ts';
export { WhatsAppOutboxTransport } from './whatsapp-outbox-transport.ts';
