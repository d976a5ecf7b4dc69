/**
 * What would the local store gain by keeping a small version's bytes inside its manifest? Today a
 * journaled put places a version as a key directory, its blob file, and its manifest written to
 * a temp file and renamed in (local-worm-store.ts `#place`). This does that work bare, with no
 * fsync, 16 at a time, against the same without the blob file (a manifest ~800 bytes larger,
 * holding the bytes as base64), interleaved batch by batch so the disk's drift hits both alike.
 *
 *   node test/bench/tools/inline-body-probe.ts [--count 30000] [--dir <parent of a temp dir>]
 */
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '30000' }, dir: { type: 'string', default: tmpdir() } },
});
const count = Number(values.count);
if (!Number.isSafeInteger(count) || count < 2_000 || count % 2_000 !== 0)
  throw new Error(`--count must be a multiple of 2000, at least 2000 (got ${values.count})`);

const BATCH = 1_000;
const CONCURRENCY = 16;
const body = Buffer.alloc(600, 120);
const manifest = Buffer.alloc(600, 120);
const inlineManifest = Buffer.alloc(600 + Math.ceil(body.byteLength / 3) * 4, 120);
const root = await mkdtemp(join(values.dir, 'holdfast-inline-probe-'));
const tmp = join(root, 'tmp');
await mkdir(tmp);

type Layout = 'blob' | 'inline';
async function version(layout: Layout, n: number): Promise<void> {
  const dir = join(root, layout, `k${n}`);
  await mkdir(dir, { recursive: true });
  if (layout === 'blob') await writeFile(join(dir, '@v.blob'), body, { flag: 'wx' });
  const temp = join(tmp, `${layout}-${n}.json`);
  await writeFile(temp, layout === 'blob' ? manifest : inlineManifest, { flag: 'wx' });
  await rename(temp, join(dir, '@v.0.json'));
}

async function batch(layout: Layout, from: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let n = from; n < from + BATCH; n += CONCURRENCY) {
    const group = [];
    for (let m = n; m < Math.min(from + BATCH, n + CONCURRENCY); m++) group.push(version(layout, m));
    await Promise.all(group);
  }
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const seconds = { blob: 0, inline: 0 };
try {
  for (let from = 0; from < count; from += BATCH) {
    const order: Layout[] = (from / BATCH) % 2 === 0 ? ['blob', 'inline'] : ['inline', 'blob'];
    for (const layout of order) seconds[layout] += await batch(layout, from);
  }
  console.log(`versions/s over ${count} each, no fsync, ${CONCURRENCY} at a time`);
  console.log(`key directory + blob + manifest (temp, rename):  ${Math.round(count / seconds.blob)}/s`);
  console.log(`key directory + manifest holding the bytes:      ${Math.round(count / seconds.inline)}/s`);
  console.log(
    `inline vs blob:                                  ${(seconds.blob / seconds.inline).toFixed(2)}x`,
  );
} finally {
  await rm(root, { recursive: true, force: true });
}
