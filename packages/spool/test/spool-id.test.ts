import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { spoolHarness } from './support/spool-harness.ts';

const harness = spoolHarness();

describe('Spool id', () => {
  it('is made once per directory and kept across restarts', async () => {
    const dir = await harness.dir();
    const first = await harness.open({ dir });
    const id = first.id;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await first.close();
    expect((await readFile(path.join(dir, 'spool-id'), 'utf8')).trim()).toBe(id);

    const again = await harness.open({ dir });
    expect(again.id).toBe(id);
    const other = await harness.open({ dir: await harness.dir() });
    expect(other.id).not.toBe(id);
  });

  it('an unreadable id file is replaced by a new id', async () => {
    const dir = await harness.dir();
    await (await harness.open({ dir })).close();
    await writeFile(path.join(dir, 'spool-id'), 'not an id');
    const spool = await harness.open({ dir });
    expect(spool.id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await readFile(path.join(dir, 'spool-id'), 'utf8')).trim()).toBe(spool.id);
  });
});
