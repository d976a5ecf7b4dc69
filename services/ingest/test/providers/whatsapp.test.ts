import { describe, expect, it } from 'vitest';
import {
  PayloadInvalidError,
  type ProviderEvent,
  parseWhatsAppNotification,
  SignatureInvalidError,
  verifyWhatsAppHandshake,
  verifyWhatsAppSignature,
} from '../../src/providers/index.ts';
import { fixture, fixtureText } from './fixtures.ts';
import { signWhatsAppBody, TEST_WHATSAPP_APP_SECRET, TEST_WHATSAPP_VERIFY_TOKEN } from './signers.ts';

type Notification = { entry: { changes: { value: Record<string, unknown> }[] }[] };

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

/** The fixture with its first change's value edited. */
function edited(name: string, edit: (value: Record<string, unknown>) => void): unknown {
  const body = fixture<Notification>(`whatsapp/${name}`);
  edit(body.entry[0]!.changes[0]!.value);
  return body;
}

const WAMID_OUT = 'wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSQTdDMjA2QkE3NjQ1QzE4RjQ5AA==';

describe('verifyWhatsAppSignature (X-Hub-Signature-256 over the raw body)', () => {
  const rawBody = fixtureText('whatsapp/text.json');
  const header = signWhatsAppBody(rawBody);
  const verify = (overrides: Partial<Parameters<typeof verifyWhatsAppSignature>[0]>) =>
    verifyWhatsAppSignature({
      appSecret: TEST_WHATSAPP_APP_SECRET,
      signatureHeader: header,
      rawBody,
      ...overrides,
    });

  it('accepts the HMAC of the exact bytes, as text or bytes, hex in either case', () => {
    expect(() => verify({})).not.toThrow();
    expect(() => verify({ rawBody: Buffer.from(rawBody) })).not.toThrow();
    expect(() => verify({ signatureHeader: `sha256=${header.slice(7).toUpperCase()}` })).not.toThrow();
  });

  it('rejects a body with one byte changed', () => {
    const bytes = Buffer.from(rawBody);
    const at = bytes.indexOf('ISA');
    bytes[at] = 'J'.charCodeAt(0);
    expect(errorOf(() => verify({ rawBody: bytes }))).toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
      provider: 'whatsapp',
    });
  });

  it('rejects a re-serialised body: only the bytes Meta sent carry the signature', () => {
    const reserialised = JSON.stringify(JSON.parse(rawBody));
    expect(errorOf(() => verify({ rawBody: reserialised }))).toBeInstanceOf(SignatureInvalidError);
  });

  it('rejects a signature made with another app secret', () => {
    expect(
      errorOf(() => verify({ signatureHeader: signWhatsAppBody(rawBody, 'wrong-secret') })),
    ).toBeInstanceOf(SignatureInvalidError);
  });

  it('rejects a missing header as missing, and malformed or truncated ones as invalid', () => {
    expect(errorOf(() => verify({ signatureHeader: undefined }))).toMatchObject({
      code: 'HOLDFAST_ERR_SIGNATURE_MISSING',
    });
    for (const bad of [header.slice(7), `sha1=${header.slice(7)}`, header.slice(0, -2), `${header}00`]) {
      expect(errorOf(() => verify({ signatureHeader: bad }))).toMatchObject({
        code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
      });
    }
  });

  it('refuses to verify with an empty app secret', () => {
    expect(errorOf(() => verify({ appSecret: '' }))).toMatchObject({ code: 'HOLDFAST_ERR_CONFIG' });
  });
});

describe('verifyWhatsAppHandshake', () => {
  const base = {
    mode: 'subscribe',
    verifyToken: TEST_WHATSAPP_VERIFY_TOKEN,
    challenge: '1158201444',
    expectedToken: TEST_WHATSAPP_VERIFY_TOKEN,
  };

  it('returns the challenge for mode=subscribe and the configured token', () => {
    expect(verifyWhatsAppHandshake(base)).toBe('1158201444');
  });

  it('rejects another token, a prefix of it, no token, or another mode', () => {
    for (const overrides of [
      { verifyToken: 'guess' },
      { verifyToken: TEST_WHATSAPP_VERIFY_TOKEN.slice(0, -1) },
      { verifyToken: undefined },
      { mode: 'unsubscribe' },
      { mode: undefined },
    ]) {
      expect(errorOf(() => verifyWhatsAppHandshake({ ...base, ...overrides }))).toMatchObject({
        code: 'HOLDFAST_ERR_SIGNATURE_INVALID',
      });
    }
  });

  it('names a missing or unsafe challenge', () => {
    for (const challenge of [undefined, '', '<script>']) {
      expect(errorOf(() => verifyWhatsAppHandshake({ ...base, challenge }))).toMatchObject({
        code: 'HOLDFAST_ERR_PAYLOAD_INVALID',
        issues: [{ path: 'hub.challenge' }],
      });
    }
  });
});

describe('parseWhatsAppNotification', () => {
  const common = {
    provider: 'whatsapp',
    channel: 'whatsapp',
    direction: 'inbound',
    type: 'message.received',
  } as const;
  const inboundData = {
    from: '447700900123',
    to: '15550783881',
    phoneNumberId: '106540352242922',
    businessAccountId: '102290129340398',
    profileName: 'Ada Lovelace',
  };

  it('text -> message.received dated by the message timestamp, raw = the notification', () => {
    const body = fixture('whatsapp/text.json');
    const id = 'wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgUM0FCMUQ0RTg5QjJDN0E5RTU2MDAA';
    expect(parseWhatsAppNotification(body)).toEqual([
      {
        ...common,
        occurredAt: new Date('2026-11-28T10:00:00.000Z'),
        providerEventId: `${id}:inbound`,
        providerMessageId: id,
        data: {
          ...inboundData,
          messageType: 'text',
          text: 'Please move my ISA allocation to the cautious fund.',
          raw: body,
        },
        media: [],
      },
    ]);
  });

  it('image -> one media entry by id with its MIME type; caption and sha256 in data', () => {
    const [event] = parseWhatsAppNotification(fixture('whatsapp/image.json'));
    expect(event).toMatchObject({
      ...common,
      occurredAt: new Date('2026-11-28T10:01:00.000Z'),
      media: [{ mediaId: '1003383421387256', contentType: 'image/jpeg', index: 0 }],
      data: {
        messageType: 'image',
        caption: 'Photo of the signed mandate',
        sha256: 'u3X0Xo1Q9m1Wc6tFq7bS0T2m3k5a2r8Q9n1Yx4Lh0Zk=',
        mimeType: 'image/jpeg',
      },
    });
    expect(event!.media[0]).not.toHaveProperty('url');
  });

  it('document -> media entry plus filename and caption', () => {
    const [event] = parseWhatsAppNotification(fixture('whatsapp/document.json'));
    expect(event).toMatchObject({
      occurredAt: new Date('2026-11-28T10:02:00.000Z'),
      media: [{ mediaId: '1584392795748384', contentType: 'application/pdf', index: 0 }],
      data: {
        messageType: 'document',
        filename: 'statement-2026-10.pdf',
        caption: 'October statement with my notes',
      },
    });
  });

  it('location -> coordinates in data, no media', () => {
    const [event] = parseWhatsAppNotification(fixture('whatsapp/location.json'));
    expect(event).toMatchObject({
      ...common,
      occurredAt: new Date('2026-11-28T10:03:00.000Z'),
      data: {
        messageType: 'location',
        location: {
          latitude: 51.5138,
          longitude: -0.0984,
          name: 'Branch office',
          address: '1 Poultry, London EC2R 8EJ',
        },
      },
      media: [],
    });
  });

  it('interactive button_reply -> the reply id and title, and the message it answers', () => {
    const [event] = parseWhatsAppNotification(fixture('whatsapp/interactive-button-reply.json'));
    expect(event).toMatchObject({
      ...common,
      occurredAt: new Date('2026-11-28T10:04:00.000Z'),
      data: {
        messageType: 'interactive',
        text: 'Yes, confirm',
        interactive: { type: 'button_reply', id: 'confirm-transfer-yes', title: 'Yes, confirm' },
        context: { from: '15550783881', id: WAMID_OUT },
      },
    });
  });

  it('statuses -> message.<status> (outbound) per status, ids wamid:status, dated by each', () => {
    const events = parseWhatsAppNotification(fixture('whatsapp/statuses.json'));
    expect(events.map((e) => [e.type, e.providerEventId, e.occurredAt.toISOString(), e.direction])).toEqual([
      ['message.sent', `${WAMID_OUT}:sent`, '2026-11-28T10:05:00.000Z', 'outbound'],
      ['message.delivered', `${WAMID_OUT}:delivered`, '2026-11-28T10:05:02.000Z', 'outbound'],
      ['message.read', `${WAMID_OUT}:read`, '2026-11-28T10:07:00.000Z', 'outbound'],
      [
        'message.failed',
        'wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSOUU0QjhGMjFBMDNDNzY1RDEyAA==:failed',
        '2026-11-28T10:08:20.000Z',
        'outbound',
      ],
    ]);
    expect(events[0]).toMatchObject({
      providerMessageId: WAMID_OUT,
      data: {
        status: 'sent',
        recipientId: '447700900123',
        conversation: { id: '8b2f0c3d9e4a1b5c6d7e8f9a0b1c2d3e', origin: { type: 'utility' } },
        pricing: { billable: true, pricing_model: 'PMP', category: 'utility' },
      },
    });
    expect(events[3]!.data).toMatchObject({
      status: 'failed',
      recipientId: '447700900456',
      error: { code: '131026', title: 'Message undeliverable', details: 'Message Undeliverable.' },
      errors: [
        {
          code: 131026,
          href: 'https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/',
        },
      ],
    });
  });

  it("narrows raw to the event's own status, keeping the notification's shape", () => {
    const events = parseWhatsAppNotification(fixture('whatsapp/statuses.json'));
    const raw = events[2]!.data.raw as Notification;
    const value = raw.entry[0]!.changes[0]!.value;
    expect(value.statuses).toEqual([expect.objectContaining({ status: 'read' })]);
    expect(value.metadata).toEqual({
      display_phone_number: '15550783881',
      phone_number_id: '106540352242922',
    });
    // The narrowed payload is itself a notification that parses to the same event.
    expect(parseWhatsAppNotification(raw)).toEqual([events[2]]);
  });

  it('gives a redelivered notification identical providerEventIds', () => {
    for (const name of ['text.json', 'image.json', 'statuses.json']) {
      const ids = (e: ProviderEvent[]) => e.map((x) => x.providerEventId);
      expect(ids(parseWhatsAppNotification(fixture(`whatsapp/${name}`)))).toEqual(
        ids(parseWhatsAppNotification(JSON.parse(fixtureText(`whatsapp/${name}`)))),
      );
    }
  });

  it('keeps batched entries and changes in order', () => {
    const text = fixture<{ entry: unknown[] }>('whatsapp/text.json');
    const statuses = fixture<{ entry: unknown[] }>('whatsapp/statuses.json');
    const batch = { object: 'whatsapp_business_account', entry: [...text.entry, ...statuses.entry] };
    expect(parseWhatsAppNotification(batch).map((e) => e.type)).toEqual([
      'message.received',
      'message.sent',
      'message.delivered',
      'message.read',
      'message.failed',
    ]);
  });

  it('archives an unknown message type as provider.unknown with the message in raw', () => {
    const body = edited('text.json', (v) => {
      const [m] = v.messages as Record<string, unknown>[];
      m!.type = 'hologram';
      m!.hologram = { id: 'h-1', depth: 3 };
      delete m!.text;
    });
    const [event] = parseWhatsAppNotification(body);
    const id = 'wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgUM0FCMUQ0RTg5QjJDN0E5RTU2MDAA';
    expect(event).toMatchObject({
      type: 'provider.unknown',
      direction: 'inbound',
      providerEventId: `${id}:hologram`,
      providerMessageId: id,
      data: { messageType: 'hologram', raw: body },
      media: [],
    });
  });

  it('archives an unknown status and unknown fields without dropping them', () => {
    const body = edited('statuses.json', (v) => {
      v.statuses = [{ ...(v.statuses as object[])[0], status: 'played', surprise: { nested: true } }];
      v.new_top_level = 'kept';
    });
    const [event] = parseWhatsAppNotification(body);
    expect(event).toMatchObject({ type: 'provider.unknown', providerEventId: `${WAMID_OUT}:played` });
    expect(event!.data.raw).toEqual(body);
  });

  it('archives changes of other webhook fields whole, with a content-derived id', () => {
    const body = {
      object: 'whatsapp_business_account',
      entry: [
        {
          id: '102290129340398',
          time: 1795860600,
          changes: [
            {
              field: 'message_template_status_update',
              value: {
                event: 'APPROVED',
                message_template_id: 594425479261596,
                message_template_name: 'statement_ready',
              },
            },
          ],
        },
      ],
    };
    const [event] = parseWhatsAppNotification(body, new Date('2030-01-01T00:00:00Z'));
    expect(event).toMatchObject({
      type: 'provider.unknown',
      occurredAt: new Date('2026-11-28T10:10:00.000Z'),
      data: { field: 'message_template_status_update', raw: body },
    });
    expect(event!.providerEventId).toMatch(/^102290129340398:message_template_status_update:[0-9a-f]{32}$/);
    expect(parseWhatsAppNotification(structuredClone(body))[0]!.providerEventId).toBe(event!.providerEventId);
  });

  it('archives a messages change with neither messages nor statuses (e.g. only errors)', () => {
    const body = edited('text.json', (v) => {
      delete v.messages;
      delete v.contacts;
      v.errors = [{ code: 131000, title: 'Something went wrong' }];
    });
    expect(parseWhatsAppNotification(body)).toMatchObject([
      { type: 'provider.unknown', data: { field: 'messages', raw: body } },
    ]);
  });

  it('throws PayloadInvalidError naming the path of what is malformed', () => {
    const cases: [unknown, string][] = [
      [{ object: 'page', entry: [] }, 'object'],
      [{ object: 'whatsapp_business_account' }, 'entry'],
      [
        edited('text.json', (v) => {
          (v.messages as Record<string, unknown>[])[0]!.timestamp = 'yesterday';
        }),
        'entry.0.changes.0.value.messages.0.timestamp',
      ],
      [
        edited('image.json', (v) => {
          delete (
            (v.messages as Record<string, Record<string, unknown>>[])[0]!.image as Record<string, unknown>
          ).id;
        }),
        'entry.0.changes.0.value.messages.0.image.id',
      ],
      [
        edited('statuses.json', (v) => {
          delete (v.statuses as Record<string, unknown>[])[1]!.id;
        }),
        'entry.0.changes.0.value.statuses.1.id',
      ],
      [
        edited('text.json', (v) => {
          v.messaging_product = 'sms';
        }),
        'entry.0.changes.0.value.messaging_product',
      ],
    ];
    for (const [body, path] of cases) {
      const error = errorOf(() => parseWhatsAppNotification(body));
      expect(error).toBeInstanceOf(PayloadInvalidError);
      expect((error as PayloadInvalidError).issues.map((i) => i.path)).toContain(path);
      expect((error as Error).message).toContain(path);
    }
  });
});
