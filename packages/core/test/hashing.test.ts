import { describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../src/index.ts';

describe('canonicalJson (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units and drops insignificant whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], '\u20ac': 2, '\r': 3 })).toBe(
      '{"\\r":3,"a":[true,null,"x"],"b":1,"\u20ac":2}',
    );
  });

  it('serialises numbers the ECMAScript way', () => {
    expect(canonicalJson([1e21, 0.000001, -0, 333333333.3333333])).toBe(
      '[1e+21,0.000001,0,333333333.3333333]',
    );
  });

  it('gives the same text for objects that differ only in key order', () => {
    expect(canonicalJson({ x: { b: 2, a: 1 }, y: 0 })).toBe(canonicalJson({ y: 0, x: { a: 1, b: 2 } }));
  });

  it('refuses values JSON cannot carry', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow();
  });
});

describe('sha256Hex', () => {
  it('hashes strings as UTF-8 and bytes as bytes', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(sha256Hex('abc'));
  });
});
