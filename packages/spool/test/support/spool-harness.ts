import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import type { SpoolOptions, SpoolRecord } from '../../src/index.ts';
import { Spool } from '../../src/index.ts';

/** Fresh temp dirs and spools per test, closed and removed after it. */
export function spoolHarness() {
  const dirs: string[] = [];
  const spools: Spool[] = [];
  afterEach(async () => {
    for (const spool of spools.splice(0)) await spool.close();
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });
  return {
    async dir(): Promise<string> {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-spool-'));
      dirs.push(dir);
      return dir;
    },
    async open(options: SpoolOptions): Promise<Spool> {
      const spool = await Spool.open(options);
      spools.push(spool);
      return spool;
    },
  };
}

export async function collect(spool: Spool): Promise<SpoolRecord[]> {
  const records: SpoolRecord[] = [];
  for await (const record of spool.unacked()) records.push(record);
  return records;
}

export async function unackedIds(spool: Spool): Promise<string[]> {
  return (await collect(spool)).map((r) => r.id);
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function text(data: Uint8Array): string {
  return Buffer.from(data).toString('utf8');
}

export async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(path.join(dir, 'segments'))).filter((n) => n.endsWith('.log')).sort();
}

/** Bytes one record takes on disk, to aim damage at it. */
export function frameLength(id: string, payload: Uint8Array): number {
  return 16 + 2 + Buffer.byteLength(id) + 8 + payload.byteLength;
}
