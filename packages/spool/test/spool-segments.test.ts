import { describe, expect, it } from 'vitest';
import { bytes, segmentFiles, spoolHarness, unackedIds } from './support/spool-harness.ts';

const harness = spoolHarness();
const payload = bytes('p'.repeat(200));

describe('Spool segments', () => {
  it('rolls to new segments at maxSegmentBytes and reads records back across them', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir, maxSegmentBytes: 1024 });
    const ids = Array.from({ length: 20 }, (_, i) => `r-${i}`);
    for (const id of ids) await spool.append(id, payload);
    const files = await segmentFiles(dir);
    expect(files.length).toBeGreaterThanOrEqual(5);
    expect(files[0]).toBe('0000000000000001.log');
    expect(spool.stats().segments).toBe(files.length);
    expect(await unackedIds(spool)).toEqual(ids);
    await spool.close();
    expect(await unackedIds(await harness.open({ dir, maxSegmentBytes: 1024 }))).toEqual(ids);
  });

  it('concurrent appends that overflow the active segment roll within one round, in order', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir, maxSegmentBytes: 1024 });
    const ids = Array.from({ length: 20 }, (_, i) => `c-${i}`);
    await Promise.all(ids.map((id) => spool.append(id, payload)));
    const files = await segmentFiles(dir);
    expect(files.length).toBeGreaterThanOrEqual(5);
    expect(spool.stats().fsyncs).toBeGreaterThanOrEqual(files.length);
    expect(await unackedIds(spool)).toEqual(ids);
    await spool.close();
    expect(await unackedIds(await harness.open({ dir, maxSegmentBytes: 1024 }))).toEqual(ids);
  });

  it('a record larger than maxSegmentBytes gets a segment of its own', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir, maxSegmentBytes: 1024 });
    await spool.append('small', payload);
    await spool.append('big', new Uint8Array(5000).fill(7));
    await spool.append('after', payload);
    expect(await segmentFiles(dir)).toHaveLength(3);
    expect(await unackedIds(spool)).toEqual(['small', 'big', 'after']);
  });

  it('removes fully acked segments; an unacked record keeps its segment alive', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir, maxSegmentBytes: 1024 });
    const ids = Array.from({ length: 20 }, (_, i) => `r-${i}`);
    for (const id of ids) await spool.append(id, payload);
    const before = (await segmentFiles(dir)).length;

    for (const id of ids) if (id !== 'r-1') await spool.ack(id);
    await spool.close();
    const after = await segmentFiles(dir);
    expect(after).toContain('0000000000000001.log');
    expect(after.length).toBeLessThan(before);
    expect(spool.stats().segments).toBe(after.length);

    // Acks for records of segment 1 live in later segments; those must have survived with it.
    const reopened = await harness.open({ dir, maxSegmentBytes: 1024 });
    expect(await unackedIds(reopened)).toEqual(['r-1']);

    await reopened.ack('r-1');
    // Removal runs after the ack is reported durable; close() waits for it.
    await reopened.close();
    expect(reopened.stats()).toMatchObject({ segments: 1, unacked: 0 });
    expect(await segmentFiles(dir)).toHaveLength(1);
    expect(await unackedIds(await harness.open({ dir, maxSegmentBytes: 1024 }))).toEqual([]);
  });

  it('one long-unacked record does not pin every segment written after it', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir, maxSegmentBytes: 1024 });
    await spool.append('stuck', payload);
    await spool.append('early', payload);
    // Each batch is acked after the next one was appended, so most acks land in a later segment
    // than their appends: a chain of segments each holding acks for the one before.
    let previous: string[] = ['early'];
    for (let round = 0; round < 30; round++) {
      const batch = Array.from({ length: 4 }, (_, i) => `r-${round}-${i}`);
      for (const id of batch) await spool.append(id, payload);
      for (const id of previous) await spool.ack(id);
      previous = batch;
    }
    for (const id of previous) await spool.ack(id);
    await spool.close();

    const files = await segmentFiles(dir);
    expect(files[0]).toBe('0000000000000001.log');
    expect(files.length).toBeLessThanOrEqual(4);
    const reopened = await harness.open({ dir, maxSegmentBytes: 1024 });
    expect(await unackedIds(reopened)).toEqual(['stuck']);
  });

  it('segments emptied by acks before a restart are removed on open', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir, maxSegmentBytes: 1024 });
    for (let i = 0; i < 8; i++) await spool.append(`r-${i}`, payload);
    for (let i = 0; i < 8; i++) await spool.ack(`r-${i}`);
    await spool.close();
    const reopened = await harness.open({ dir, maxSegmentBytes: 1024 });
    expect(reopened.stats()).toMatchObject({ unacked: 0, segments: 1 });
    expect(await segmentFiles(dir)).toHaveLength(1);
  });
});
