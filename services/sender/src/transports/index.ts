import type { HoldfastConfig } from '@holdfast/core';
import type { EmailTransport } from './email-transport.ts';
import { OutboxTransport } from './outbox-transport.ts';
import { SesTransport } from './ses-transport.ts';

export function emailTransportFromConfig(config: Readonly<HoldfastConfig>): EmailTransport {
  const spec = config.transports.email;
  return spec.kind === 'outbox'
    ? new OutboxTransport(spec.dir)
    : new SesTransport({ region: config.region, endpoint: config.sesEndpoint });
}

export type { EmailTransport, OutboundEmail } from './email-transport.ts';
export { OutboxTransport } from './outbox-transport.ts';
export { SesTransport, type SesTransportOptions } from './ses-transport.ts';
