import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { SpoolCorruption } from '../src/index.ts';
import { Spool } from '../src/index.ts';
import {
  bytes,
  collect,
  frameLength,
  segmentFiles,
  spoolHarness,
  text,
  unackedIds,
} from './support/spool-harness.ts';

const harness = spoolHarness();
const SEGMENT_HEADER = 16;

async function writeRecords(dir: string, ids: readonly string[]): Promise<string> {
  const spool = await Spool.open({ dir });
  for (const id of ids) await spool.append(id, bytes(`payload of ${id}`));
  await spool.close();
  const files = await segmentFiles(dir);
  return path.join(dir, 'segments', files.at(-1)!);
}

function offsetOf(ids: readonly string[], index: number): number {
  let offset = SEGMENT_HEADER;
  for (const id of ids.slice(0, index)) offset += frameLength(id, bytes(`payload of ${id}`));
  return offset;
}

describe('Spool recovery', () => {
  it('truncates a torn record at the tail of the last segment and keeps the records before it', async () => {
    const dir = await harness.dir();
    const ids = ['one', 'two', 'three'];
    const file = await writeRecords(dir, ids);
    const { size } = await stat(file);
    await truncate(file, size - 5);

    const spool = await harness.open({ dir });
    const torn = frameLength('three', bytes('payload of three')) - 5;
    expect(spool.openReport).toEqual({ truncatedTailBytes: torn, corruptions: [], recovered: 2 });
    expect((await stat(file)).size).toBe(offsetOf(ids, 2));
    expect(await unackedIds(spool)).toEqual(['one', 'two']);

    // The repaired segment takes new records, and the next open finds nothing to repair.
    await spool.append('four', bytes('payload of four'));
    await spool.close();
    const again = await harness.open({ dir });
    expect(again.openReport).toEqual({ truncatedTailBytes: 0, corruptions: [], recovered: 3 });
    expect(await unackedIds(again)).toEqual(['one', 'two', 'four']);
  });

  it('treats a partial frame header, or garbage, at the tail as torn', async () => {
    const dir = await harness.dir();
    const ids = ['one', 'two'];
    const file = await writeRecords(dir, ids);
    await truncate(file, offsetOf(ids, 1) + 7);
    await writeFile(file, Buffer.alloc(300, 0), { flag: 'a' });

    const spool = await harness.open({ dir });
    expect(spool.openReport).toEqual({ truncatedTailBytes: 307, corruptions: [], recovered: 1 });
    expect(await unackedIds(spool)).toEqual(['one']);
  });

  it('removes a last segment torn before its header was complete', async () => {
    const dir = await harness.dir();
    await writeRecords(dir, ['one']);
    await writeFile(path.join(dir, 'segments', '0000000000000002.log'), 'HFSP');

    const spool = await harness.open({ dir });
    expect(spool.openReport).toEqual({ truncatedTailBytes: 4, corruptions: [], recovered: 1 });
    expect(await unackedIds(spool)).toEqual(['one']);
    // Its number is reused for the fresh segment that replaces it.
    expect((await stat(path.join(dir, 'segments', '0000000000000002.log'))).size).toBe(SEGMENT_HEADER);
  });

  it('quarantines a damaged segment header and keeps the records after it', async () => {
    const dir = await harness.dir();
    const file = await writeRecords(dir, ['one', 'two']);
    const content = await readFile(file);
    content[0]! ^= 0xff;
    await writeFile(file, content);

    const spool = await harness.open({ dir });
    expect(spool.openReport.truncatedTailBytes).toBe(0);
    expect(spool.openReport.corruptions).toMatchObject([
      { offset: 0, length: SEGMENT_HEADER, reason: 'bad segment magic' },
    ]);
    expect(await unackedIds(spool)).toEqual(['one', 'two']);
  });

  it('quarantines a last segment that is garbage from its header on, rather than calling it torn', async () => {
    const dir = await harness.dir();
    const file = await writeRecords(dir, ['one']);
    const garbage = Buffer.alloc(500, 0xab);
    await writeFile(path.join(dir, 'segments', '0000000000000002.log'), garbage);

    const spool = await harness.open({ dir });
    expect(spool.openReport.truncatedTailBytes).toBe(0);
    expect(spool.openReport.corruptions).toMatchObject([
      { segment: '0000000000000002.log', offset: 0, length: 500, reason: 'bad segment magic' },
    ]);
    expect(await readFile(spool.openReport.corruptions[0]!.quarantinedTo)).toEqual(garbage);
    expect(await unackedIds(spool)).toEqual(['one']);
    expect(path.basename(file)).toBe('0000000000000001.log');
  });

  it('drops a leftover from an interrupted segment rewrite', async () => {
    const dir = await harness.dir();
    const file = await writeRecords(dir, ['one']);
    await writeFile(`${file}.rewrite`, 'half a rewrite');
    const spool = await harness.open({ dir });
    expect(await unackedIds(spool)).toEqual(['one']);
    await expect(stat(`${file}.rewrite`)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('quarantines and reports a damaged record in the middle of the log and keeps the records after it', async () => {
    const dir = await harness.dir();
    const ids = ['r0', 'r1', 'r2', 'r3', 'r4'];
    const file = await writeRecords(dir, ids);
    const original = await readFile(file);
    const damagedAt = offsetOf(ids, 2);
    const damagedLength = offsetOf(ids, 3) - damagedAt;
    const broken = Buffer.from(original);
    broken[damagedAt + damagedLength - 3]! ^= 0xff;
    await writeFile(file, broken);

    const seen: SpoolCorruption[] = [];
    const spool = await harness.open({ dir, onCorruption: (c) => seen.push(c) });
    const expected: SpoolCorruption = {
      segment: path.basename(file),
      offset: damagedAt,
      length: damagedLength,
      reason: 'bad CRC',
      quarantinedTo: path.join(dir, 'quarantine', `${path.basename(file, '.log')}-${damagedAt}.bin`),
    };
    expect(spool.openReport).toEqual({ truncatedTailBytes: 0, corruptions: [expected], recovered: 4 });
    expect(seen).toEqual([expected]);
    expect(await readFile(expected.quarantinedTo)).toEqual(
      broken.subarray(damagedAt, damagedAt + damagedLength),
    );
    expect(await unackedIds(spool)).toEqual(['r0', 'r1', 'r3', 'r4']);

    // The damaged segment is left as evidence and never appended to.
    await spool.append('r5', bytes('payload of r5'));
    expect((await readFile(file)).length).toBe(original.length);
  });

  it('resynchronises after a damaged length field', async () => {
    const dir = await harness.dir();
    const ids = ['r0', 'r1', 'r2', 'r3'];
    const file = await writeRecords(dir, ids);
    const broken = await readFile(file);
    broken.writeUInt32LE(0x00ffffff, offsetOf(ids, 1) + 4);
    await writeFile(file, broken);

    const spool = await harness.open({ dir });
    expect(spool.openReport.corruptions).toMatchObject([
      { offset: offsetOf(ids, 1), length: offsetOf(ids, 2) - offsetOf(ids, 1) },
    ]);
    expect(await unackedIds(spool)).toEqual(['r0', 'r2', 'r3']);
  });

  it('reports damage at the end of a segment that is not the last as corruption, not a torn tail', async () => {
    const dir = await harness.dir();
    const first = await Spool.open({ dir, maxSegmentBytes: 1024 });
    const payload = bytes('q'.repeat(300));
    for (let i = 0; i < 6; i++) await first.append(`r-${i}`, payload);
    await first.close();
    const files = await segmentFiles(dir);
    expect(files.length).toBeGreaterThan(1);
    const firstFile = path.join(dir, 'segments', files[0]!);
    const { size } = await stat(firstFile);
    await truncate(firstFile, size - 10);

    const spool = await harness.open({ dir, maxSegmentBytes: 1024 });
    expect(spool.openReport.truncatedTailBytes).toBe(0);
    expect(spool.openReport.corruptions).toHaveLength(1);
    expect(spool.openReport.corruptions[0]).toMatchObject({
      segment: files[0],
      reason: 'frame length past end of segment',
    });
    const survivors = await unackedIds(spool);
    expect(survivors).toHaveLength(5);
    expect(survivors.at(-1)).toBe('r-5');
    for (const record of await collect(spool)) expect(text(record.payload)).toBe('q'.repeat(300));
  });

  it('refuses a segment written by an unknown format version and leaves it untouched', async () => {
    const dir = await harness.dir();
    const file = await writeRecords(dir, ['one']);
    const content = await readFile(file);
    content.writeUInt32LE(99, 8);
    content.writeUInt32LE(crc32(content.subarray(0, 12)), 12);
    await writeFile(file, content);

    await expect(Spool.open({ dir })).rejects.toMatchObject({ code: 'HOLDFAST_ERR_SPOOL_FORMAT' });
    expect(await readFile(file)).toEqual(content);
    // A second attempt meets the same error, not HOLDFAST_ERR_SPOOL_LOCKED: the failed open released the lock.
    await expect(Spool.open({ dir })).rejects.toMatchObject({ code: 'HOLDFAST_ERR_SPOOL_FORMAT' });
  });
});
