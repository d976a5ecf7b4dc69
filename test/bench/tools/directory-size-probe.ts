/**
 * Does creating entries in a directory slow down as it fills? The local store puts every key of
 * a day (and category) in one directory, so a busy day's directory holds a key directory per
 * event. This creates `--count` key directories of two small files each (the store's shape),
 * 16 at a time, in one directory and, interleaved batch by batch so the disk's drift hits both
 * alike, the same spread over 256 directories; it prints each side's rate per tenth.
 *
 *   node test/bench/tools/directory-size-probe.ts [--count 200000] [--dir <parent of a temp dir>]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '200000' }, dir: { type: 'string', default: tmpdir() } },
});
const count = Number(values.count);
if (!Number.isSafeInteger(count) || count < 20_000 || count % 10_000 !== 0)
  throw new Error(`--count must be a multiple of 10000, at least 20000 (got ${values.count})`);

const BATCH = 1_000;
const CONCURRENCY = 16;
const SPREAD = 256;
const root = await mkdtemp(join(values.dir, 'holdfast-dir-probe-'));
const single = join(root, 'single');
const spread = join(root, 'spread');
await mkdir(single);
for (let k = 0; k < SPREAD; k++) await mkdir(join(spread, String(k)), { recursive: true });
const body = Buffer.alloc(600, 120);

async function keyDirectory(parent: string, n: number): Promise<void> {
  const dir = join(parent, `2026-11-22T12:00:00.${String(n).padStart(7, '0')}Z_0123456789ab.json`);
  await mkdir(dir);
  await writeFile(join(dir, 'blob'), body, { flag: 'wx' });
  await writeFile(join(dir, 'manifest.json'), body, { flag: 'wx' });
}

/** Seconds to create key directories [from, to) under `parentOf(n)`. */
async function batch(parentOf: (n: number) => string, from: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let n = from; n < from + BATCH; n += CONCURRENCY) {
    const group = [];
    for (let m = n; m < Math.min(from + BATCH, n + CONCURRENCY); m++)
      group.push(keyDirectory(parentOf(m), m));
    await Promise.all(group);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const tenth = count / 10;
const seconds = { single: new Array<number>(10).fill(0), spread: new Array<number>(10).fill(0) };
const inSingle = () => single;
const inSpread = (n: number) => join(spread, String(n % SPREAD));
try {
  for (let from = 0; from < count; from += BATCH) {
    const t = Math.floor(from / tenth);
    // Alternate which side goes first, so neither always meets the disk after the other.
    const order =
      (from / BATCH) % 2 === 0 ? (['single', 'spread'] as const) : (['spread', 'single'] as const);
    for (const side of order) seconds[side][t]! += await batch(side === 'single' ? inSingle : inSpread, from);
  }
  const rates = (s: number[]) => s.map((x) => Math.round(tenth / x));
  const one = rates(seconds.single);
  const many = rates(seconds.spread);
  console.log(`key directories/s per tenth of ${count}`);
  console.log(`one directory:      ${one.join(' ')}`);
  console.log(`${SPREAD} directories:    ${many.join(' ')}`);
  console.log(`one vs ${SPREAD}:         ${one.map((r, i) => (r / many[i]!).toFixed(2)).join(' ')}`);
} finally {
  await rm(root, { recursive: true, force: true });
}
