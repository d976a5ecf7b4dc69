import { open } from 'node:fs/promises';

/**
 * Group commit for a directory's entries: `sync()` resolves once an fsync of the directory that
 * started after the call has finished. Callers arriving while one runs share the next, so N
 * concurrent renames cost two directory syncs, not N.
 */
export class DirectorySync {
  readonly #dir: string;
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(dir: string) {
    this.#dir = dir;
  }

  sync(): Promise<void> {
    if (this.#next) return this.#next;
    const running = this.#running;
    if (!running) return this.#start();
    // The running sync may have begun before this caller's rename: it needs one that starts later.
    this.#next = running
      .catch(() => undefined)
      .then(() => {
        this.#next = undefined;
        return this.#start();
      });
    return this.#next;
  }

  #start(): Promise<void> {
    const run = syncDirectory(this.#dir).finally(() => {
      if (this.#running === run) this.#running = undefined;
    });
    this.#running = run;
    return run;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
