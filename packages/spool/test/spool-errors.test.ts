import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SPOOL_MAX_PAYLOAD_BYTES, Spool } from '../src/index.ts';
import { bytes, collect, spoolHarness, text } from './support/spool-harness.ts';

const harness = spoolHarness();
const diskFullFixture = fileURLToPath(new URL('./fixtures/disk-full-fixture.ts', import.meta.url));

describe('Spool errors', () => {
  it('rejects appends and acks after close with HOLDFAST_ERR_SPOOL_CLOSED; close is idempotent', async () => {
    const spool = await harness.open({ dir: await harness.dir() });
    await spool.append('a', bytes('a'));
    await Promise.all([spool.close(), spool.close()]);
    await spool.close();
    await expect(spool.append('b', bytes('b'))).rejects.toMatchObject({ code: 'HOLDFAST_ERR_SPOOL_CLOSED' });
    await expect(spool.ack('a')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_SPOOL_CLOSED' });
    await expect(collect(spool)).rejects.toMatchObject({ code: 'HOLDFAST_ERR_SPOOL_CLOSED' });
  });

  it('rejects invalid ids with HOLDFAST_ERR_SPOOL_INVALID_ID and writes nothing', async () => {
    const dir = await harness.dir();
    const spool = await harness.open({ dir });
    const before = spool.stats();
    for (const id of ['', 'x'.repeat(513), 'é'.repeat(257), '\ud800', 42 as unknown as string]) {
      await expect(spool.append(id, bytes('p'))).rejects.toMatchObject({
        name: 'SpoolInvalidIdError',
        code: 'HOLDFAST_ERR_SPOOL_INVALID_ID',
      });
    }
    await expect(spool.ack('')).rejects.toMatchObject({ code: 'HOLDFAST_ERR_SPOOL_INVALID_ID' });
    await spool.append('x'.repeat(512), bytes('longest id allowed'));
    expect(spool.stats().appends).toBe(1);
    expect(spool.stats().bytes).toBeGreaterThan(before.bytes);
    await spool.close();
    const reopened = await harness.open({ dir });
    expect((await collect(reopened)).map((r) => r.id)).toEqual(['x'.repeat(512)]);
  });

  it('rejects payloads that are not bytes or exceed the cap, and writes nothing', async () => {
    const spool = await harness.open({ dir: await harness.dir() });
    const before = spool.stats();
    await expect(spool.append('a', 'text' as unknown as Uint8Array)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SPOOL_INVALID_PAYLOAD',
    });
    await expect(spool.append('b', new Uint8Array(SPOOL_MAX_PAYLOAD_BYTES + 1))).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SPOOL_PAYLOAD_TOO_LARGE',
    });
    expect(spool.stats()).toEqual(before);
  });

  it('rejects invalid options with HOLDFAST_ERR_SPOOL_INVALID_OPTIONS', async () => {
    const dir = await harness.dir();
    await expect(Spool.open({ dir: '' })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SPOOL_INVALID_OPTIONS',
    });
    await expect(Spool.open({ dir, maxSegmentBytes: 10 })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SPOOL_INVALID_OPTIONS',
    });
  });

  it('fails closed when a write fails: the failing append rejects, later appends are refused', async () => {
    const dir = await harness.dir();
    // A real write failure: the file size limit makes write() fail with EFBIG (Node ignores SIGXFSZ).
    const child = spawn('sh', [
      '-c',
      'ulimit -f 16 && exec "$0" "$@"',
      process.execPath,
      diskFullFixture,
      dir,
    ]);
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const [code] = await once(child, 'close');
    expect(err).toBe('');
    expect(code).toBe(0);
    const result = JSON.parse(out) as { durable: string[]; failedWith: string; later: string };
    expect(result.failedWith).toBe('HOLDFAST_ERR_SPOOL_WRITE');
    expect(result.later).toBe('HOLDFAST_ERR_SPOOL_FAILED');
    expect(result.durable.length).toBeGreaterThan(0);

    // Everything acknowledged before the failure is there; the torn write is cut off.
    const spool = await harness.open({ dir });
    const records = await collect(spool);
    expect(records.map((r) => r.id)).toEqual(result.durable);
    for (const r of records) expect(text(r.payload)).toBe(Buffer.alloc(700, r.id).toString());
    expect(spool.openReport.corruptions).toEqual([]);
  });
});
