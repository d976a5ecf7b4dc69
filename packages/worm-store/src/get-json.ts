import type { ObjectStore, ObjectVersionOptions } from './object-store.ts';

/**
 * An archived JSON object (an event, a sidecar) parsed. ObjectNotFoundError when absent; a
 * SyntaxError when the bytes are not JSON, which callers reading mixed prefixes may skip.
 */
export async function getJson(
  store: Pick<ObjectStore, 'get'>,
  key: string,
  opts?: ObjectVersionOptions,
): Promise<unknown> {
  const { body } = await store.get(key, opts);
  return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
}
