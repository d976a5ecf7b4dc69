import { describe, expect, it } from 'vitest';
import { bytes, spoolHarness, unackedIds } from './support/spool-harness.ts';

const harness = spoolHarness();

describe('Spool group commit', () => {
  it('256 concurrent appends share a handful of fsyncs', async () => {
    const spool = await harness.open({ dir: await harness.dir() });
    const ids = Array.from({ length: 256 }, (_, i) => `event-${i}`);
    const before = spool.stats().fsyncs;
    await Promise.all(ids.map((id) => spool.append(id, bytes(`body of ${id}`))));
    const fsyncs = spool.stats().fsyncs - before;
    expect(fsyncs).toBeGreaterThan(0);
    expect(fsyncs).toBeLessThan(32);
    expect(spool.stats().appends).toBe(256);
    expect(await unackedIds(spool)).toEqual(ids);
  });

  it('256 concurrent acks are group-committed too', async () => {
    const spool = await harness.open({ dir: await harness.dir() });
    const ids = Array.from({ length: 256 }, (_, i) => `event-${i}`);
    await Promise.all(ids.map((id) => spool.append(id, bytes(id))));
    const before = spool.stats().fsyncs;
    await Promise.all(ids.map((id) => spool.ack(id)));
    expect(spool.stats().fsyncs - before).toBeLessThan(32);
    expect(spool.stats()).toMatchObject({ unacked: 0, acks: 256 });
  });

  it('close() waits for appends still queued', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir });
    const pending = Array.from({ length: 50 }, (_, i) => spool.append(`late-${i}`, bytes('x')));
    await spool.close();
    await Promise.all(pending);
    expect(await unackedIds(await harness.open({ dir }))).toHaveLength(50);
  });
});
