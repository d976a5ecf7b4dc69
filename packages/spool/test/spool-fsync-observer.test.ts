import { describe, expect, it } from 'vitest';
import { bytes, spoolHarness, unackedIds } from './support/spool-harness.ts';

const harness = spoolHarness();

describe('Spool fsync observers', () => {
  it('hear one duration per group-commit round, in seconds, for appends and acks', async () => {
    const spool = await harness.open({ dir: await harness.dir() });
    const seen: number[] = [];
    spool.observeFsyncs((seconds) => seen.push(seconds));

    await spool.append('first', bytes('one'));
    expect(seen).toHaveLength(1);
    await spool.ack('first');
    expect(seen).toHaveLength(2);

    // A burst shares rounds: far fewer observations than records.
    const ids = Array.from({ length: 128 }, (_, i) => `event-${i}`);
    await Promise.all(ids.map((id) => spool.append(id, bytes(id))));
    expect(seen.length).toBeGreaterThan(2);
    expect(seen.length).toBeLessThan(2 + 32);
    for (const seconds of seen) {
      expect(Number.isFinite(seconds)).toBe(true);
      expect(seconds).toBeGreaterThanOrEqual(0);
    }
  });

  it('stop hearing once unsubscribed', async () => {
    const spool = await harness.open({ dir: await harness.dir() });
    const seen: number[] = [];
    const stop = spool.observeFsyncs((seconds) => seen.push(seconds));
    await spool.append('a', bytes('a'));
    stop();
    await spool.append('b', bytes('b'));
    expect(seen).toHaveLength(1);
  });

  it('cannot break the write path by throwing', async () => {
    const spool = await harness.open({ dir: await harness.dir() });
    spool.observeFsyncs(() => {
      throw new Error('a broken metrics exporter');
    });
    const seen: number[] = [];
    spool.observeFsyncs((seconds) => seen.push(seconds));
    await spool.append('a', bytes('a'));
    await spool.append('b', bytes('b'));
    expect(spool.stats().failed).toBe(false);
    expect(seen).toHaveLength(2);
    expect(await unackedIds(spool)).toEqual(['a', 'b']);
  });

  it('must be functions', async () => {
    const spool = await harness.open({ dir: await harness.dir() });
    expect(() => spool.observeFsyncs('nope' as never)).toThrow(
      expect.objectContaining({ code: 'HOLDFAST_ERR_SPOOL_INVALID_OPTIONS' }),
    );
  });
});
