import { newEventId, sha256Hex } from '@holdfast/core';
import { describe, expect, it } from 'vitest';
import { composeEmail, validateEmail } from '../src/index.ts';

describe('composeEmail', () => {
  it('builds one RFC 5322 message whose hash is recorded, with the event id in the Message-ID', async () => {
    const id = newEventId();
    const date = new Date('2026-11-22T10:00:00.000Z');
    const email = validateEmail({
      from: '"Zoë Ops" <ops@acme.example>',
      to: ['x@y.example'],
      bcc: 'hidden@acme.example',
      subject: 'Grüße',
      text: 'Zeilen mit Umlauten: äöü',
      attachments: [{ filename: 'a.txt', content: 'attached text' }],
    });
    const composed = await composeEmail(email, id, date);
    expect(composed.messageId).toBe(`<${id}@acme.example>`);
    expect(composed.sha256).toBe(sha256Hex(composed.mime));
    expect(composed.mime).toContain(`Message-ID: <${id}@acme.example>`);
    expect(composed.mime).toContain('Date: Sun, 22 Nov 2026 10:00:00 +0000');
    expect(composed.mime).toContain('filename=a.txt');
    expect(composed.mime).not.toContain('hidden@acme.example');
    // Non-ASCII is transfer-encoded, so the stored text is 7-bit and its bytes are stable.
    expect([...composed.mime].every((c) => c.charCodeAt(0) < 128)).toBe(true);
    expect(composed.envelope).toEqual({
      from: 'ops@acme.example',
      to: ['x@y.example', 'hidden@acme.example'],
    });
  });
});
