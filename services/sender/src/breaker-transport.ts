import { type Breaker, type BreakerSettings, breakerOpenErrorOf, createBreaker } from '@holdfast/producer';
import { SendError } from './errors.ts';
import type { LookupResult, SendResult, Transport } from './transports/index.ts';

/**
 * What a transport's breaker counts: failures of the provider (timeouts, resets, refused
 * connections, 5xx, throttling, credentials it refuses), i.e. retryable SendErrors. A provider
 * rejecting one message (invalid number, unsubscribed recipient, bad template) is not one.
 */
export function isProviderFailure(error: unknown): boolean {
  return error instanceof SendError && error.retryable;
}

/** The breaker of one channel's transport: `sender/<channel>`. */
export function transportBreaker(channel: string, settings: BreakerSettings = {}): Breaker {
  return createBreaker({ ...settings, name: channel, service: 'sender', isFailure: isProviderFailure });
}

/**
 * The transport with `send` and `lookup` routed through `breaker`, so the send protocol
 * (SendAttempts) is unchanged. A call the open breaker refused never left this process: it is
 * reported as a retryable SendError that did not reach the provider (the attempt marker is
 * cleared, so no retry takes it for an uncertain send), caused by the BreakerOpenError, which
 * the queue worker finds to put the job back without spending an attempt.
 */
export function breakerTransport<M>(transport: Transport<M>, breaker: Breaker): Transport<M> {
  const refused = (error: unknown): never => {
    const open = breakerOpenErrorOf(error);
    if (!open || open !== error) throw error;
    throw new SendError(transport.name, `not called: ${open.message}`, {
      retryable: true,
      reachedProvider: 'no',
      retryAfterMs: open.retryAfterMs,
      cause: open,
    });
  };
  const guarded: Transport<M> = {
    name: transport.name,
    send: (message: M): Promise<SendResult> => breaker.fire(() => transport.send(message)).catch(refused),
    close: () => transport.close(),
  };
  if (transport.lookup) {
    guarded.lookup = (message: M, since: Date): Promise<LookupResult> =>
      breaker.fire(() => transport.lookup!(message, since)).catch(refused);
  }
  return guarded;
}
