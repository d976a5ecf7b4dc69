import { describe, expect, it } from 'vitest';
import { bytes, collect, spoolHarness, text, unackedIds } from './support/spool-harness.ts';

const harness = spoolHarness();

describe('Spool round trip', () => {
  it('appends, reports has(), reads back unacked records and forgets acked ones', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir });
    const before = Date.now();
    await spool.append('a', bytes('alpha'));
    await spool.append('b', bytes('beta'));
    await spool.append('c', new Uint8Array());
    expect(spool.has('a')).toBe(true);
    expect(spool.has('zzz')).toBe(false);

    await spool.ack('b');
    expect(spool.has('b')).toBe(false);

    const records = await collect(spool);
    expect(records.map((r) => [r.id, text(r.payload)])).toEqual([
      ['a', 'alpha'],
      ['c', ''],
    ]);
    expect(records[0]!.appendedAt.getTime()).toBeGreaterThanOrEqual(before);
    expect(spool.stats()).toMatchObject({ unacked: 2, appends: 3, acks: 1 });
    expect(spool.stats().oldestUnackedAt).toEqual(records[0]!.appendedAt);
  });

  it('reopen shows the same unacked set in append order, and acked records do not come back', async () => {
    const dir = await harness.dir();
    const first = await harness.open({ dir });
    for (let i = 0; i < 10; i++) await first.append(`id-${i}`, bytes(`payload-${i}`));
    for (const i of [0, 3, 4, 9]) await first.ack(`id-${i}`);
    const expected = await collect(first);
    await first.close();

    const second = await harness.open({ dir });
    expect(second.openReport).toEqual({ truncatedTailBytes: 0, corruptions: [], recovered: 6 });
    const reopened = await collect(second);
    expect(reopened).toEqual(expected);
    expect(reopened.map((r) => r.id)).toEqual(['id-1', 'id-2', 'id-5', 'id-6', 'id-7', 'id-8']);
    expect(second.has('id-0')).toBe(false);
    expect(second.has('id-1')).toBe(true);
  });

  it('re-appending an unacked id writes nothing; re-appending an acked id appends it anew', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir });
    await Promise.all([spool.append('x', bytes('first')), spool.append('x', bytes('second'))]);
    await spool.append('x', bytes('third'));
    expect(spool.stats().appends).toBe(1);
    expect((await collect(spool)).map((r) => text(r.payload))).toEqual(['first']);

    await spool.ack('x');
    await spool.append('x', bytes('again'));
    await spool.close();
    const reopened = await harness.open({ dir });
    expect((await collect(reopened)).map((r) => [r.id, text(r.payload)])).toEqual([['x', 'again']]);
  });

  it('acking an unknown or already acked id writes nothing', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir });
    await spool.append('a', bytes('a'));
    await spool.ack('a');
    const { bytes: size, acks } = spool.stats();
    await spool.ack('a');
    await spool.ack('never-appended');
    expect(spool.stats()).toMatchObject({ bytes: size, acks });
  });

  it('an ack issued while the append is still in flight cancels it', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir });
    const appended = spool.append('early', bytes('e'));
    const acked = spool.ack('early');
    const reappended = spool.append('early', bytes('second life'));
    await Promise.all([appended, acked, reappended]);
    expect((await collect(spool)).map((r) => text(r.payload))).toEqual(['second life']);
    await spool.ack('early');
    await spool.close();
    expect(await unackedIds(await harness.open({ dir }))).toEqual([]);
  });

  it('unacked() takes a snapshot and skips records acked while it iterates', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir });
    for (const id of ['a', 'b', 'c']) await spool.append(id, bytes(id));
    const seen: string[] = [];
    for await (const record of spool.unacked()) {
      seen.push(record.id);
      if (record.id === 'a') {
        await spool.ack('b');
        await spool.append('d', bytes('d'));
      }
    }
    expect(seen).toEqual(['a', 'c']);
  });
});
