import { randomUUID } from 'node:crypto';
import { link, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ignoreMissing } from './durable-fs.ts';
import { SpoolLockedError } from './errors.ts';

const LOCK_FILE = 'spool.lock';
const ATTEMPTS = 5;

interface LockHolder {
  pid: number;
  /** Linux boot id: a lock from before a reboot is stale whatever its pid. */
  bootId: string | undefined;
  /** Process start time in clock ticks since boot: tells a reused pid from the original process. */
  startTicks: string | undefined;
  token: string;
}

/**
 * One process per spool directory. The lock file is written under a temporary name and hard-linked
 * into place, so it never exists without its content; a lock whose holder is gone (crash, reboot,
 * pid reused by another process) is taken over.
 */
export class DirLock {
  readonly #file: string;
  readonly #content: string;

  private constructor(file: string, content: string) {
    this.#file = file;
    this.#content = content;
  }

  static async acquire(dir: string): Promise<DirLock> {
    const file = path.join(dir, LOCK_FILE);
    const me: LockHolder = {
      pid: process.pid,
      bootId: await readProc('/proc/sys/kernel/random/boot_id'),
      startTicks: (await procStat(process.pid))?.startTicks,
      token: randomUUID(),
    };
    const content = JSON.stringify(me);
    let holder: LockHolder | undefined;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      if (await tryCreate(file, content, me.token)) return new DirLock(file, content);
      const existing = await readFile(file, 'utf8').catch(ignoreMissing);
      if (existing === undefined) continue;
      holder = parseHolder(existing);
      if (holder && (await isAlive(holder, me))) break;
      await takeOverStale(file, existing, me.token);
    }
    throw new SpoolLockedError(dir, holder?.pid);
  }

  /** Removes the lock file if it is still ours. */
  async release(): Promise<void> {
    const current = await readFile(this.#file, 'utf8').catch(ignoreMissing);
    if (current === this.#content) await unlink(this.#file).catch(ignoreMissing);
  }
}

async function tryCreate(file: string, content: string, token: string): Promise<boolean> {
  const temp = `${file}.${token}.tmp`;
  await writeFile(temp, content, { flag: 'wx' });
  try {
    await link(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(temp);
  }
}

/**
 * Moves the stale lock aside before deleting it, and checks it is still the stale one: between
 * reading it and now another process may have taken it over and put a live lock in its place.
 */
async function takeOverStale(file: string, staleContent: string, token: string): Promise<void> {
  const aside = `${file}.${token}.stale`;
  try {
    await rename(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const moved = await readFile(aside, 'utf8');
  if (moved !== staleContent) await link(aside, file).catch(() => undefined);
  await unlink(aside);
}

async function isAlive(holder: LockHolder, me: LockHolder): Promise<boolean> {
  if (holder.bootId && me.bootId && holder.bootId !== me.bootId) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = await procStat(holder.pid);
  if (stat === undefined) return true;
  // A zombie still answers signal 0 until its parent reaps it, but it holds nothing any more.
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return !holder.startTicks || stat.startTicks === holder.startTicks;
}

function parseHolder(content: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(content) as Partial<LockHolder>;
    // Signal 0 to pid 0 or a negative pid would probe a whole process group.
    if (!Number.isSafeInteger(parsed.pid) || (parsed.pid as number) <= 0) return undefined;
    return {
      pid: parsed.pid as number,
      bootId: typeof parsed.bootId === 'string' ? parsed.bootId : undefined,
      startTicks: typeof parsed.startTicks === 'string' ? parsed.startTicks : undefined,
      token: String(parsed.token),
    };
  } catch {
    // Written by link-after-write, so unreadable content can only be left by a power loss: stale.
    return undefined;
  }
}

/** State and start time of a process from Linux procfs; undefined elsewhere. */
async function procStat(pid: number): Promise<{ state: string; startTicks: string } | undefined> {
  const stat = await readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // The command name (field 2) may contain spaces and parentheses, so count fields from its end:
  // state is field 3, starttime field 22.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [state, startTicks] = [fields[0], fields[19]];
  return state && startTicks ? { state, startTicks } : undefined;
}

async function readProc(file: string): Promise<string | undefined> {
  return readFile(file, 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
}
