import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseDuration, RetentionPolicy, RetentionPolicyError } from '../src/index.ts';

describe('parseDuration', () => {
  it('reads short and ISO 8601 forms', () => {
    expect(parseDuration('7y')).toMatchObject({ years: 7, months: 0, days: 0 });
    expect(parseDuration('18m')).toMatchObject({ years: 0, months: 18, days: 0 });
    expect(parseDuration('6w')).toMatchObject({ days: 42 });
    expect(parseDuration('P1Y6M10D')).toMatchObject({ years: 1, months: 6, days: 10 });
  });

  it.each(['', '7', 'y7', '7 years', 'P', '-1y', 'P1H'])('refuses %j with a message naming it', (text) => {
    expect(() => parseDuration(text)).toThrow(RetentionPolicyError);
    expect(() => parseDuration(text)).toThrow(`"${text}"`);
  });
});

describe('RetentionPolicy', () => {
  const policy = RetentionPolicy.defaults();

  it('counts from the record date, not from now', () => {
    expect(policy.retainUntil('financial-transaction', '2020-06-15T12:00:00Z').toISOString()).toBe(
      '2027-06-15T12:00:00.000Z',
    );
    expect(policy.retainUntil('audit-log', new Date('2026-01-31T00:00:00Z')).toISOString()).toBe(
      '2029-01-31T00:00:00.000Z',
    );
  });

  it('rolls a leap day forward rather than shortening', () => {
    expect(policy.retainUntil('email-transactional', '2024-02-29T00:00:00Z').toISOString()).toBe(
      '2031-03-01T00:00:00.000Z',
    );
  });

  it('names an unknown category and lists the known ones', () => {
    expect(() => policy.retainUntil('nope', new Date())).toThrow(
      /unknown retention category "nope".*audit-log/,
    );
  });

  it('reports the shortest category for bucket preflight', () => {
    expect(new RetentionPolicy({ a: '90d', b: '1y' }, 'test').minimumDays()).toBe(90);
  });
});

describe('RetentionPolicy.load', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'holdfast-policy-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads YAML and JSON files', async () => {
    await writeFile(join(dir, 'p.yaml'), 'categories:\n  audit-log: 3y\n  contract: P7Y\n');
    await writeFile(join(dir, 'p.json'), JSON.stringify({ categories: { 'audit-log': '5y' } }));
    expect((await RetentionPolicy.load(join(dir, 'p.yaml'))).duration('contract').years).toBe(7);
    expect((await RetentionPolicy.load(join(dir, 'p.json'))).duration('audit-log').years).toBe(5);
  });

  it.each([
    ['p.yaml', 'categories: [', /not valid YAML/],
    ['p.json', '{"categories":', /not valid JSON/],
    ['p.yaml', 'categories:\n  Bad Name: 3y\n', /categories/],
    ['p.yaml', 'categories:\n  audit-log: forever\n', /category "audit-log".*"forever"/],
    ['p.yaml', 'categories: {}\n', /at least one category/],
    ['p.yaml', 'categories:\n  a: 1y\nextra: 1\n', /extra|Unrecognized/i],
  ])('refuses a malformed %s (%j) with a clear error', async (file, text, pattern) => {
    await writeFile(join(dir, file), text);
    await expect(RetentionPolicy.load(join(dir, file))).rejects.toThrow(pattern);
  });

  it('names a missing file', async () => {
    await expect(RetentionPolicy.load(join(dir, 'missing.yaml'))).rejects.toThrow(
      /cannot read retention policy .*missing\.yaml/,
    );
  });
});

describe('triggered categories', () => {
  it('ships contract as life of the relationship + 7y: 7y from its own date, extended on relationship.ended', () => {
    const policy = RetentionPolicy.defaults();
    expect(policy.retainUntil('contract', '2026-01-15T10:00:00Z').toISOString()).toBe(
      '2033-01-15T10:00:00.000Z',
    );
    expect(policy.triggersFor('relationship.ended')).toEqual([
      expect.objectContaining({ category: 'contract', extendOn: 'relationship.ended' }),
    ]);
    expect(policy.triggersFor('transaction.posted')).toEqual([]);
    expect(policy.triggerOf('audit-log')).toBeUndefined();
    expect(policy.extendedUntil('contract', '2030-06-30T00:00:00Z').toISOString()).toBe(
      '2037-06-30T00:00:00.000Z',
    );
    expect(() => policy.extendedUntil('audit-log', new Date())).toThrow(/"audit-log" has no trigger/);
  });

  it('describes its rules canonically: same rules in another order or file, same description and fingerprint', () => {
    const a = new RetentionPolicy(
      { b: '3y', a: { duration: '1y', extendOn: 'relationship.ended', extendBy: '7y' } },
      'one.yaml',
    );
    const b = new RetentionPolicy(
      { a: { extendBy: '7y', extendOn: 'relationship.ended', duration: '1y' }, b: '3y' },
      'two.json',
    );
    expect(a.describe()).toEqual({
      categories: {
        a: { duration: '1y', extendOn: 'relationship.ended', extendBy: '7y' },
        b: { duration: '3y' },
      },
    });
    expect(Object.keys(a.describe().categories)).toEqual(['a', 'b']);
    expect(a.fingerprint()).toBe(b.fingerprint());
    expect(new RetentionPolicy({ b: '4y' }, 'x').fingerprint()).not.toBe(a.fingerprint());
    expect(JSON.parse(JSON.stringify(a))).toMatchObject({ source: 'one.yaml', sha256: a.fingerprint() });
  });
});

describe('RetentionPolicy.load with triggered categories', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'holdfast-policy-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the object form next to the short form', async () => {
    await writeFile(
      join(dir, 'p.yaml'),
      [
        'categories:',
        '  financial-transaction: 7y',
        '  audit-log: 3y',
        '  audit-log-admin: { duration: 7y }',
        '  contract:',
        '    duration: 7y',
        '    extendOn: relationship.ended',
        '    extendBy: 7y',
        '',
      ].join('\n'),
    );
    const policy = await RetentionPolicy.load(join(dir, 'p.yaml'));
    expect(policy.duration('audit-log-admin').years).toBe(7);
    expect(policy.triggerOf('contract')).toMatchObject({ extendOn: 'relationship.ended' });
    expect(policy.triggersFor('relationship.ended').map((t) => t.category)).toEqual(['contract']);
    expect(policy.source).toBe(join(dir, 'p.yaml'));
  });

  it.each([
    [
      'contract: { duration: 7y, extendOn: relationship.ended }',
      /category "contract".*extendOn and extendBy go together/,
    ],
    ['contract: { duration: 7y, extendBy: 7y }', /category "contract".*extendOn and extendBy go together/],
    ['contract: { extendOn: relationship.ended, extendBy: 7y }', /category "contract".*duration: required/],
    [
      'contract: { duration: 7y, extendOn: Ended, extendBy: 7y }',
      /category "contract".*extendOn: must be an event type/,
    ],
    [
      'contract: { duration: 7y, extendOn: relationship.ended, extendBy: soon }',
      /category "contract".*"soon"/,
    ],
    ['contract: { duration: 7y, keepFor: ever }', /category "contract".*keepFor/],
    ['contract: [7y]', /category "contract": must be a duration .* not a list/],
    ['contract: 7', /category "contract": must be a duration .* not number/],
  ])('refuses %j with an error naming the category', async (line, pattern) => {
    await writeFile(join(dir, 'p.yaml'), `categories:\n  ${line}\n`);
    const error = await RetentionPolicy.load(join(dir, 'p.yaml')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetentionPolicyError);
    expect((error as RetentionPolicyError).code).toBe('HOLDFAST_ERR_RETENTION_POLICY');
    expect((error as Error).message).toMatch(pattern);
  });
});
