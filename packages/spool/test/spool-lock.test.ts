import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Spool } from '../src/index.ts';
import { bytes, spoolHarness, unackedIds } from './support/spool-harness.ts';

const harness = spoolHarness();

describe('Spool directory lock', () => {
  it('a second open of the same directory fails while the first is open', async () => {
    const dir = await harness.dir();
    const first = await harness.open({ dir });
    await expect(Spool.open({ dir })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SPOOL_LOCKED',
      holderPid: process.pid,
    });
    await first.append('still-mine', bytes('x'));
    await first.close();

    const second = await harness.open({ dir });
    expect(await unackedIds(second)).toEqual(['still-mine']);
  });

  it('a lock held by another live process is respected', async () => {
    const dir = await harness.dir();
    await writeFile(path.join(dir, 'spool.lock'), JSON.stringify({ pid: process.ppid, token: 'other' }));
    await expect(Spool.open({ dir })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_SPOOL_LOCKED',
      holderPid: process.ppid,
    });
  });

  it('a lock left by a dead process is taken over', async () => {
    const dir = await harness.dir();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const pid = Number(dead.stdout.toString());
    await writeFile(path.join(dir, 'spool.lock'), JSON.stringify({ pid, token: 'gone' }));
    const spool = await harness.open({ dir });
    await spool.append('a', bytes('a'));
  });

  it('a lock from before a reboot, or with unreadable content, is taken over', async () => {
    const dir = await harness.dir();
    const lock = path.join(dir, 'spool.lock');
    await writeFile(lock, JSON.stringify({ pid: process.ppid, bootId: 'some-earlier-boot', token: 'old' }));
    await (await Spool.open({ dir })).close();
    await writeFile(lock, '');
    await (await Spool.open({ dir })).close();
  });
});
