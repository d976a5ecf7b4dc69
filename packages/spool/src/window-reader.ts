import type { FileHandle } from 'node:fs/promises';
import { readFully } from './durable-fs.ts';

export const WINDOW_BYTES = 1024 * 1024;

/** Positional reads through a read-ahead window, so scanning small frames is not a syscall each. */
export class WindowReader {
  readonly size: number;
  readonly #fh: FileHandle;
  #window: Buffer = Buffer.alloc(0);
  #start = 0;

  constructor(fh: FileHandle, size: number) {
    this.#fh = fh;
    this.size = size;
  }

  /** Callers keep `offset + length <= size`; the view is valid until the next call. */
  async get(offset: number, length: number): Promise<Buffer> {
    const end = this.#start + this.#window.length;
    if (offset < this.#start || offset + length > end) {
      const buffer = Buffer.allocUnsafe(Math.min(Math.max(length, WINDOW_BYTES), this.size - offset));
      const got = await readFully(this.#fh, buffer, offset);
      this.#window = buffer.subarray(0, got);
      this.#start = offset;
    }
    const from = offset - this.#start;
    return this.#window.subarray(from, from + length);
  }
}
