import { type EventEnvelope, newEvent, sha256Hex } from '@holdfast/core';

/** A submitted outbound email event as the SDK makes it, for archiver tests. */
export function emailEvent(options: { id?: string; to?: string; mime?: string } = {}): EventEnvelope {
  const id = options.id ?? '019a0000-0000-7000-8000-000000000001';
  const to = options.to ?? 'b@x.example';
  const mime = options.mime ?? 'Subject: hi\r\n\r\nhello\r\n';
  return newEvent({
    id,
    type: 'message.submitted',
    occurredAt: new Date('2026-05-01T12:00:00.000Z'),
    project: 'acme',
    channel: 'email',
    direction: 'outbound',
    subject: id,
    category: 'email-transactional',
    data: {
      mime,
      sha256: sha256Hex(mime),
      messageId: `<${id}@acme.example>`,
      envelope: { from: 'a@acme.example', to: [to] },
      headers: { from: 'a@acme.example', to: [to], cc: [], bcc: [], subject: 'hi' },
      kind: 'transactional',
      failMode: 'closed',
      metadata: {},
    },
  });
}
