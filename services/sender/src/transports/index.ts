import type { HoldfastConfig } from '@holdfast/core';
import { OutboxTransport } from './outbox-transport.ts';
import { SesTransport } from './ses-transport.ts';
import type { EmailTransport } from './transport.ts';

export function emailTransportFromConfig(config: Readonly<HoldfastConfig>): EmailTransport {
  const spec = config.channels.email.transport;
  return spec.kind === 'outbox'
    ? new OutboxTransport(spec.dir)
    : new SesTransport({ region: config.region, endpoint: config.sesEndpoint });
}

export { OutboxTransport } from './outbox-transport.ts';
export { SesTransport, type SesTransportOptions } from './ses-transport.ts';
export type * from './transport.ts';
