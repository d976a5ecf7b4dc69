import { describe, expect, it } from 'vitest';
import { messageKey, recordKey, sha256Hex, sidecarKey } from '../src/index.ts';

const hash = sha256Hex('hello');

describe('archive key schema', () => {
  it('lays out message keys by channel, project, direction and the message date', () => {
    expect(
      messageKey({
        channel: 'email',
        project: 'acme',
        direction: 'outbound',
        occurredAt: '2026-03-04T05:06:07.089Z',
        sha256: hash,
        ext: 'eml',
      }),
    ).toBe(`email/acme/outbound/2026/03/04/2026-03-04T05:06:07.089Z_${hash.slice(0, 12)}.eml`);
  });

  it('appends a provider sid and makes it safe for a key', () => {
    const key = messageKey({
      channel: 'sms',
      project: 'acme',
      direction: 'inbound',
      occurredAt: new Date('2026-01-01T00:00:00Z'),
      sha256: hash,
      sid: 'SM12/../x',
      ext: 'json',
    });
    expect(key.endsWith(`_${hash.slice(0, 12)}_SM12-..-x.json`)).toBe(true);
    expect(key.split('/')).toHaveLength(7);
  });

  it('uses UTC for the date folders whatever the input offset', () => {
    const key = recordKey({
      category: 'audit-log',
      occurredAt: '2026-12-31T23:30:00-02:00',
      sha256: hash,
      ext: 'json',
    });
    expect(key).toBe(`records/audit-log/2027/01/01/2027-01-01T01:30:00.000Z_${hash.slice(0, 12)}.json`);
  });

  it('puts the sidecar beside the blob', () => {
    expect(sidecarKey('email/a/outbound/2026/01/01/x_abc.eml')).toBe(
      'email/a/outbound/2026/01/01/x_abc.meta.json',
    );
  });

  it('refuses a malformed hash', () => {
    expect(() => recordKey({ category: 'c', occurredAt: new Date(), sha256: 'nothex', ext: 'json' })).toThrow(
      /sha256/,
    );
  });
});
