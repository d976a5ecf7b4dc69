import { writeFile as writeFileCallback } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const writeFile = promisify(writeFileCallback);

/**
 * The disk's bare rate for the file work the local store does per small archived version (every
 * event, sidecar and record), with none of the store's code, journal or syncs: a new directory,
 * and a manifest holding the bytes written beside it and renamed in, `concurrency` at a time, for
 * `durationS`. (Until the store kept small bytes in the manifest, a blob file was created too.) How fast a disk
 * creates files moves with its state (on a `discard` mount it slows after heavy create/delete
 * churn), and the archive write follows it: taken just before a run, this says which state the
 * run met. The files stay until the bench removes its temporary directories, so deleting them
 * does not disturb the run.
 */
export async function fileCreateFloor(
  dir: string,
  durationS: number,
  concurrency = 16,
): Promise<{ perSecond: number; objects: number }> {
  await mkdir(dir, { recursive: true });
  // A ~700-byte body as base64 inside a ~400-byte manifest.
  const manifest = Buffer.alloc(400 + 936, 0x62);
  let next = 0;
  const started = performance.now();
  const end = started + durationS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const n = next++;
        const key = join(dir, `k${n}`);
        await mkdir(key);
        await writeFile(join(dir, `t${n}`), manifest, { flag: 'wx' });
        await rename(join(dir, `t${n}`), join(key, 'manifest'));
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  return { perSecond: Math.round(next / elapsedS), objects: next };
}
