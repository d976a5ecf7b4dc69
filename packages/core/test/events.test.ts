import { describe, expect, it } from 'vitest';
import { newEventId, parseEvent, sha256Hex, ValidationError } from '../src/index.ts';

const base = () => ({
  schemaVersion: 1,
  id: newEventId(),
  type: 'message.sent',
  occurredAt: '2026-11-22T10:00:00.000Z',
  recordedAt: '2026-11-22T10:00:00.001Z',
  project: 'acme',
  channel: 'email',
  direction: 'outbound',
  subject: newEventId(),
  category: 'email-transactional',
  data: { transport: 'ses', providerMessageId: 'abc', attempt: 1 },
});

describe('parseEvent', () => {
  it('accepts a well-formed known event', () => {
    expect(parseEvent(base()).type).toBe('message.sent');
  });

  it('accepts unknown event types on the envelope alone, so nothing is dropped', () => {
    expect(parseEvent({ ...base(), type: 'provider.unknown', data: { anything: [1, 2] } }).type).toBe(
      'provider.unknown',
    );
  });

  it('names the bad fields of the envelope and of known data', () => {
    expect(() => parseEvent({ ...base(), id: 'x', project: 'Has Space' })).toThrow(ValidationError);
    expect(() => parseEvent({ ...base(), id: 'x' })).toThrow(/id:/);
    expect(() => parseEvent({ ...base(), data: { transport: 'ses' } })).toThrow(/data\.providerMessageId/);
  });

  it('checks the email submission payload', () => {
    const data = {
      mime: 'x',
      sha256: sha256Hex('x'),
      messageId: '<a@b>',
      envelope: { from: 'a@b.c', to: [] },
    };
    expect(() => parseEvent({ ...base(), type: 'message.submitted', data })).toThrow(/data\.envelope\.to/);
  });
});

describe('deterministicEventId', () => {
  it('gives the same valid UUIDv7 for the same provider identity, and different ones otherwise', async () => {
    const { deterministicEventId, isEventId } = await import('../src/index.ts');
    const at = new Date('2026-11-22T10:00:00.000Z');
    const a = deterministicEventId(at, 'twilio:SM123:delivered');
    expect(isEventId(a)).toBe(true);
    expect(deterministicEventId(at, 'twilio:SM123:delivered')).toBe(a);
    expect(deterministicEventId(at, 'twilio:SM123:sent')).not.toBe(a);
    expect(
      a.startsWith(
        at
          .getTime()
          .toString(16)
          .padStart(12, '0')
          .replace(/^(.{8})/, '$1-'),
      ),
    ).toBe(true);
  });
});
