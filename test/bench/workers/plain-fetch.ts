/**
 * The media scenario's baseline, the physical floor of the download: a fresh process that does
 * nothing but `fetch()` a URL and pipe the body to a new file (no hashing, no store, no policy
 * checks). Asked over IPC: `{ type: 'fetch', id, url, headers, path }` answers
 * `{ type: 'reply', id, value: { bytes, ms, fsyncMs } }`, where `ms` runs from the call to the
 * file's close and `fsyncMs` (the file's fsync afterwards) is timed apart from it.
 */
import { createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { serveUntilStopped } from './serve.ts';

interface FetchRequest {
  type: 'fetch';
  id: number;
  url: string;
  headers: Record<string, string>;
  path: string;
}

async function download(request: FetchRequest) {
  const started = performance.now();
  const response = await fetch(request.url, { headers: request.headers });
  if (!response.ok || !response.body) throw new Error(`GET answered ${response.status}`);
  await pipeline(Readable.fromWeb(response.body), createWriteStream(request.path, { flags: 'wx' }));
  const ms = performance.now() - started;
  const synced = performance.now();
  const file = await open(request.path, 'r');
  await file.sync();
  await file.close();
  return { bytes: (await stat(request.path)).size, ms, fsyncMs: performance.now() - synced };
}

process.on('message', (message: FetchRequest) => {
  if (message?.type !== 'fetch') return;
  download(message).then(
    (value) => process.send?.({ type: 'reply', id: message.id, value }),
    (error: Error) => process.send?.({ type: 'reply', id: message.id, error: error.message }),
  );
});

serveUntilStopped('plain-fetch', { close: async () => {} });
