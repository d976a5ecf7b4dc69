import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Spool } from '../src/index.ts';
import { crashPayload } from './support/crash-payload.ts';
import { collect, spoolHarness } from './support/spool-harness.ts';

const harness = spoolHarness();
const writerFixture = fileURLToPath(new URL('./fixtures/writer-fixture.ts', import.meta.url));
const ROUNDS = 3;
const APPENDS_BEFORE_KILL = 2000;
const MAX_SEGMENT_BYTES = 256 * 1024;

/** Runs the writer until it has reported enough durable appends, then SIGKILLs it. */
async function runWriterUntilKilled(dir: string): Promise<string[]> {
  const child = spawn(process.execPath, [writerFixture, dir, String(MAX_SEGMENT_BYTES)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let appended = 0;
  let killed = false;
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    out += text;
    appended += text.split('\n+').length - 1;
    if (!killed && appended >= APPENDS_BEFORE_KILL) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  const [code, signal] = await once(child, 'close');
  if (signal !== 'SIGKILL') throw new Error(`writer exited on its own (code ${code}): ${err}`);
  // A line cut short by the kill proves nothing.
  return out.slice(0, out.lastIndexOf('\n')).split('\n');
}

describe('Spool crash safety', () => {
  it('keeps every acknowledged append, exactly once, across SIGKILLs mid-stream', {
    timeout: 60_000,
  }, async () => {
    const dir = await harness.dir();
    const mustSurvive = new Set<string>();
    const mustBeGone = new Set<string>();

    for (let round = 0; round < ROUNDS; round++) {
      for (const line of await runWriterUntilKilled(dir)) {
        const id = line.slice(1);
        if (line.startsWith('+')) mustSurvive.add(id);
        else if (line.startsWith('-')) mustSurvive.delete(id);
        else if (line.startsWith('!')) mustBeGone.add(id);
      }

      const spool = await Spool.open({ dir, maxSegmentBytes: MAX_SEGMENT_BYTES });
      try {
        const records = await collect(spool);
        const ids = records.map((r) => r.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const record of records) {
          expect(record.id).toMatch(/^\d+-\d+$/);
          expect(Buffer.from(record.payload).equals(crashPayload(record.id))).toBe(true);
        }
        const present = new Set(ids);
        const lost = [...mustSurvive].filter((id) => !present.has(id));
        const resurrected = [...mustBeGone].filter((id) => present.has(id));
        expect(lost).toEqual([]);
        expect(resurrected).toEqual([]);
        expect(spool.openReport.corruptions).toEqual([]);
        expect(spool.openReport.recovered).toBe(ids.length);
        expect(spool.openReport.truncatedTailBytes).toBeGreaterThanOrEqual(0);
        expect(spool.stats().unacked).toBe(ids.length);
      } finally {
        await spool.close();
      }
    }
    // Each round keeps about two thirds of its appends and drains half of what earlier rounds left.
    expect(mustSurvive.size).toBeGreaterThan(APPENDS_BEFORE_KILL);
  });
});
