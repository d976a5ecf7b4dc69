import { type EventEnvelope, newEvent } from '@holdfast/core';

/** The nth audit-log record event of project `acme` (a second apart), for EventWriter tests. */
export function record(n: number): EventEnvelope {
  return newEvent({
    type: 'audit.login',
    occurredAt: new Date(Date.UTC(2026, 10, 20, 9, 0, n)),
    project: 'acme',
    channel: 'record',
    direction: 'internal',
    subject: `user-${n}`,
    category: 'audit-log',
    data: { n },
  });
}

/** Polls `check` every 20 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
