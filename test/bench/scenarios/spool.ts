import { randomBytes } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';
import { Spool } from '@holdfast/spool';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { figure, round } from '../lib/figures.ts';
import type { LatencySummary } from '../lib/histogram.ts';
import { closedLoopFor } from '../lib/load.ts';
import type { BenchContext, Figure, Scenario } from '../lib/types.ts';

const RECORD_BYTES = 1024;
const WRITERS = [1, 16, 256] as const;
const BATCH = 100;

interface Measured {
  perSecond: number;
  count: number;
  elapsedMs: number;
  latency: LatencySummary;
  fsyncs?: number;
}

/**
 * The naive pattern a published Node archive uses, per message: open a blob file, write, fsync,
 * close, then append a line to an index file and fsync it.
 */
async function naiveAppend(dir: string, index: FileHandle, id: string, payload: Uint8Array): Promise<void> {
  const blob = await open(join(dir, `${id}.blob`), 'wx');
  try {
    await blob.write(payload, 0, payload.byteLength, 0);
    await blob.sync();
  } finally {
    await blob.close();
  }
  await index.write(`${id}\t${payload.byteLength}\t${Date.now()}\n`);
  await index.sync();
}

async function measureSpool(writers: number, durationMs: number, payload: Uint8Array): Promise<Measured> {
  const dir = await tempDir('holdfast-bench-spool-');
  const spool = await Spool.open({ dir: dir.path });
  try {
    await closedLoopFor(Math.min(300, durationMs), writers, (c, i) =>
      spool.append(`warm-${c}-${i}`, payload),
    );
    const before = spool.stats().fsyncs;
    const run = await closedLoopFor(durationMs, writers, (c, i) => spool.append(`${c}-${i}`, payload));
    const fsyncs = spool.stats().fsyncs - before;
    return {
      perSecond: run.done / (run.elapsedMs / 1000),
      count: run.done,
      elapsedMs: round(run.elapsedMs),
      latency: run.latency.summary(),
      fsyncs,
    };
  } finally {
    await spool.close();
    await dir.remove();
  }
}

async function measureNaive(writers: number, durationMs: number, payload: Uint8Array): Promise<Measured> {
  const dir = await tempDir('holdfast-bench-naive-');
  const index = await open(join(dir.path, 'index.log'), 'a');
  try {
    await closedLoopFor(Math.min(300, durationMs), writers, (c, i) =>
      naiveAppend(dir.path, index, `warm-${c}-${i}`, payload),
    );
    const run = await closedLoopFor(durationMs, writers, (c, i) =>
      naiveAppend(dir.path, index, `${c}-${i}`, payload),
    );
    return {
      perSecond: run.done / (run.elapsedMs / 1000),
      count: run.done,
      elapsedMs: round(run.elapsedMs),
      latency: run.latency.summary(),
    };
  } finally {
    await index.close();
    await dir.remove();
  }
}

/** The physical reference: one writer, 100 records per write, one fdatasync per write. */
async function measureBatch(durationMs: number, payload: Uint8Array): Promise<Measured> {
  const dir = await tempDir('holdfast-bench-batch-');
  const fh = await open(join(dir.path, 'batch.log'), 'w');
  const chunk = Buffer.concat(Array.from({ length: BATCH }, () => payload));
  try {
    let position = 0;
    const run = await closedLoopFor(durationMs, 1, async () => {
      await fh.write(chunk, 0, chunk.length, position);
      position += chunk.length;
      await fh.datasync();
    });
    return {
      perSecond: (run.done * BATCH) / (run.elapsedMs / 1000),
      count: run.done * BATCH,
      elapsedMs: round(run.elapsedMs),
      latency: run.latency.summary(),
      fsyncs: run.done,
    };
  } finally {
    await fh.close();
    await dir.remove();
  }
}

async function run(ctx: BenchContext) {
  const durationMs = ctx.quick ? 400 : 3000;
  const payload = randomBytes(RECORD_BYTES);
  const figures: Figure[] = [];
  const details: Record<string, unknown> = { recordBytes: RECORD_BYTES, durationMs };

  ctx.log(`spool: batch reference (${BATCH} records per fdatasync)`);
  const batch = await measureBatch(durationMs, payload);
  details.batchReference = batch;

  for (const writers of WRITERS) {
    ctx.log(`spool: ${writers} writer(s), spool then naive pattern`);
    const spool = await measureSpool(writers, durationMs, payload);
    const naive = await measureNaive(writers, durationMs, payload);
    details[`writers${writers}`] = {
      spool: { ...spool, recordsPerFsync: spool.fsyncs ? round(spool.count / spool.fsyncs) : undefined },
      naive,
    };
    const at = `@${writers} writer${writers === 1 ? '' : 's'}`;
    figures.push(
      figure(
        `appends/s ${at}`,
        round(spool.perSecond, 0),
        '/s',
        { name: `naive blob+index fsync ${at}`, value: round(naive.perSecond, 0) },
        writers === 256 ? { kind: 'min-ratio', limit: 100 } : undefined,
      ),
      figure(`append p50 ${at}`, spool.latency.p50Ms, 'ms', {
        name: `naive p50 ${at}`,
        value: naive.latency.p50Ms,
      }),
      figure(`append p99 ${at}`, spool.latency.p99Ms, 'ms', {
        name: `naive p99 ${at}`,
        value: naive.latency.p99Ms,
      }),
    );
    if (writers === 256) {
      figures.push(
        figure(`appends/s ${at} vs physical`, round(spool.perSecond, 0), '/s', {
          name: `${BATCH} records per fdatasync, 1 writer`,
          value: round(batch.perSecond, 0),
        }),
      );
    }
  }
  return { figures, details };
}

export const spoolScenario: Scenario = {
  id: 'spool',
  number: 1,
  title: 'Spool append (1 KiB records, group commit)',
  baseline:
    'the naive per-message pattern (open blob, write, fsync, close, append index line, fsync) at the same writer count; and one writer doing 100 records per fdatasync (the physical reference)',
  run,
};
