/**
 * Removing a fleet's directory is slow once it holds a large archive (the local store keeps a
 * directory per key: 200k events are ~200k directories and ~400k files), and disk work would
 * disturb the next measurement. So directories are removed at the end of the run, after the
 * report is written.
 */
import { spawn } from 'node:child_process';

const pending: (() => Promise<void>)[] = [];

/** `rm -rf` is several times faster than `fs.rm` on trees of hundreds of thousands of entries. */
function rmrf(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const rm = spawn('rm', ['-rf', '--', path], { stdio: 'ignore' });
    rm.on('error', reject);
    rm.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`rm -rf ${path} exited with ${code}`)),
    );
  });
}

/** Removes `path` at the end of the run; `fallback` (e.g. fs.rm) if `rm` is not there. */
export function removeLater(path: string, fallback: () => Promise<void>): void {
  pending.push(() => rmrf(path).catch(fallback));
}

export async function removeAll(): Promise<void> {
  for (const remove of pending.splice(0)) await remove().catch(() => {});
}
