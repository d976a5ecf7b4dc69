import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import {
  AddressPolicy,
  HostAllowlist,
  type Resolve,
  redactUrl,
  safeLookup,
  UrlPolicy,
} from '../src/index.ts';

describe('AddressPolicy', () => {
  const strict = new AddressPolicy([]);

  it.each([
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['224.0.0.251', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['ff02::1', 'multicast'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['64:ff9b::a00:1', 'rfc6052'],
    ['2002:a00:1::1', '6to4'],
  ])('refuses %s (%s) unless a network allows it', (address, range) => {
    expect(strict.refusal(address)).toBe(range);
  });

  it.each(['93.184.216.34', '157.240.0.35', '2606:4700::6810:84e5', '2a03:2880:f10c:83:face:b00c:0:25de'])(
    'allows the public unicast address %s',
    (address) => {
      expect(strict.refusal(address)).toBeUndefined();
    },
  );

  it('allows addresses inside HOLDFAST_MEDIA_ALLOWED_NETWORKS, IPv4-mapped ones judged as IPv4', () => {
    const loopback = new AddressPolicy(['127.0.0.0/8', '::1/128']);
    expect(loopback.refusal('127.0.0.1')).toBeUndefined();
    expect(loopback.refusal('127.9.9.9')).toBeUndefined();
    expect(loopback.refusal('::ffff:127.0.0.1')).toBeUndefined();
    expect(loopback.refusal('::1')).toBeUndefined();
    expect(loopback.refusal('10.0.0.1')).toBe('private');
    expect(loopback.refusal('169.254.169.254')).toBe('linkLocal');
    expect(new AddressPolicy(['::ffff:10.0.0.0/104']).refusal('10.20.30.40')).toBeUndefined();
  });

  it('refuses what is not an address, and a malformed network is a ConfigError naming the variable', () => {
    expect(strict.refusal('localhost')).toBe('not an IP address');
    expect(() => new AddressPolicy(['10.0.0.0/33'])).toThrow(
      expect.objectContaining({ code: 'HOLDFAST_ERR_CONFIG', variable: 'HOLDFAST_MEDIA_ALLOWED_NETWORKS' }),
    );
  });
});

describe('HostAllowlist', () => {
  const hosts = new HostAllowlist(['api.twilio.com', '*.twiliocdn.com', 'lookaside.fbsbx.com']);

  it('matches exact names and *. patterns below the domain, case-insensitively and without a trailing dot', () => {
    expect(hosts.allows('api.twilio.com')).toBe(true);
    expect(hosts.allows('API.Twilio.com.')).toBe(true);
    expect(hosts.allows('mms.twiliocdn.com')).toBe(true);
    expect(hosts.allows('a.b.twiliocdn.com')).toBe(true);
    expect(hosts.allows('twiliocdn.com')).toBe(false);
    expect(hosts.allows('eviltwiliocdn.com')).toBe(false);
    expect(hosts.allows('api.twilio.com.evil.example')).toBe(false);
    expect(hosts.allows('lookaside.fbsbx.com.evil.example')).toBe(false);
  });

  it('refuses a pattern that is not a host name with a ConfigError', () => {
    expect(() => new HostAllowlist(['https://api.twilio.com'])).toThrow(
      expect.objectContaining({ code: 'HOLDFAST_ERR_CONFIG', variable: 'HOLDFAST_MEDIA_ALLOWED_HOSTS' }),
    );
  });
});

describe('UrlPolicy', () => {
  const policy = new UrlPolicy(
    new HostAllowlist([
      'media.example.com',
      '10.1.2.3',
      '169.254.169.254',
      '[::ffff:127.0.0.1]',
      '93.184.216.34',
    ]),
    new AddressPolicy([]),
  );

  it('passes an https URL on an allowlisted host and resolves a redirect against the current URL', () => {
    expect(policy.check('https://media.example.com/a?sig=1').href).toBe('https://media.example.com/a?sig=1');
    expect(policy.check('/b', new URL('https://media.example.com/a')).href).toBe(
      'https://media.example.com/b',
    );
    expect(policy.check('https://93.184.216.34/x').hostname).toBe('93.184.216.34');
  });

  it('refuses each broken rule with its own code', () => {
    const code = (url: string) => {
      try {
        policy.check(url);
        return 'passed';
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    expect(code('http://media.example.com/a')).toBe('HOLDFAST_ERR_MEDIA_NOT_HTTPS');
    expect(code('file:///etc/passwd')).toBe('HOLDFAST_ERR_MEDIA_NOT_HTTPS');
    expect(code('https://other.example.com/a')).toBe('HOLDFAST_ERR_MEDIA_HOST_NOT_ALLOWED');
    expect(code('https://user:pw@media.example.com/a')).toBe('HOLDFAST_ERR_MEDIA_URL_INVALID');
    expect(code('not a url')).toBe('HOLDFAST_ERR_MEDIA_URL_INVALID');
    expect(code('https://10.1.2.3/a')).toBe('HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED');
    expect(code('https://169.254.169.254/latest/meta-data/')).toBe('HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED');
    // WHATWG URL parsing canonicalises other spellings of an address before the check sees them.
    expect(code('https://0xa.1.2.3/a')).toBe('HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED');
    expect(code('https://[::ffff:127.0.0.1]/a')).toBe('HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED');
  });

  it('redacts query strings and user info from URLs it reports', () => {
    expect(
      redactUrl('https://u:p@lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&hash=secret'),
    ).toBe('https://lookaside.fbsbx.com/whatsapp_business/attachments/');
  });
});

describe('safeLookup', () => {
  const lookupWith = (addresses: LookupAddress[], all: boolean) => {
    const resolve: Resolve = async () => addresses;
    const lookup = safeLookup(new AddressPolicy(['127.0.0.0/8']), resolve);
    return new Promise<{ error: unknown; result: unknown; family?: number }>((done) => {
      lookup('media.example.com', { all }, (error, result, family) => done({ error, result, family }));
    });
  };

  it('hands the socket exactly the addresses it checked', async () => {
    const addresses = [
      { address: '93.184.216.34', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
    expect(await lookupWith(addresses, true)).toEqual({ error: null, result: addresses, family: undefined });
    expect(await lookupWith(addresses, false)).toEqual({ error: null, result: '93.184.216.34', family: 4 });
  });

  it('refuses a name when any address it resolves to is refused, even beside public ones', async () => {
    for (const bad of ['10.0.0.7', '169.254.169.254', '::ffff:192.168.0.1', 'fd00::1']) {
      const { error } = await lookupWith(
        [
          { address: '93.184.216.34', family: 4 },
          { address: bad, family: bad.includes(':') ? 6 : 4 },
        ],
        true,
      );
      expect(error).toMatchObject({
        code: 'HOLDFAST_ERR_MEDIA_ADDRESS_REFUSED',
        address: bad,
        host: 'media.example.com',
      });
    }
  });

  it('passes resolver failures through', async () => {
    const resolve: Resolve = async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.invalid'), { code: 'ENOTFOUND' });
    };
    const error = await new Promise((done) => {
      safeLookup(new AddressPolicy([]), resolve)('nowhere.invalid', {}, (e) => done(e));
    });
    expect(error).toMatchObject({ code: 'ENOTFOUND' });
  });
});
