import { stat } from 'node:fs/promises';
import { InvalidObjectInputError } from './errors.ts';
import type { PutObjectFileBody } from './object-store.ts';

export function isFileBody(body: Uint8Array | PutObjectFileBody): body is PutObjectFileBody {
  return !(body instanceof Uint8Array);
}

export function bodySize(body: Uint8Array | PutObjectFileBody): number {
  return isFileBody(body) ? body.size : body.byteLength;
}

/**
 * A file body must be a regular file of the declared size. Checked before anything is sent or
 * written: S3 would wait forever for bytes a shorter file never sends.
 */
export async function checkFileBody(body: PutObjectFileBody): Promise<void> {
  let found: Awaited<ReturnType<typeof stat>>;
  try {
    found = await stat(body.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new InvalidObjectInputError('body.path', `cannot read ${body.path} (${code})`);
  }
  if (!found.isFile()) throw new InvalidObjectInputError('body.path', `${body.path} is not a regular file`);
  if (found.size !== body.size) {
    throw new InvalidObjectInputError(
      'body.size',
      `is ${body.size} but ${body.path} has ${found.size} bytes`,
    );
  }
}
