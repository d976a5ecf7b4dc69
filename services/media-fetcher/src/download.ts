import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MediaBadResponseError, MediaTooLargeError, MediaUnavailableError } from './errors.ts';
import { type GetOptions, header, type MediaResponse, transportError } from './media-client.ts';
import { releaseGarbage } from './release-garbage.ts';
import { redactUrl } from './url-policy.ts';

/** How many bytes may stream between two young-generation collections (see release-garbage.ts). */
const COLLECT_EVERY = 8 * 1024 * 1024;

export interface Downloaded {
  size: number;
  /** Lowercase hex SHA-256 of the bytes written. */
  sha256: string;
}

/**
 * Stream a response body into a new file at `path`, hashing and counting the bytes as they pass:
 * nothing is held in memory beyond the stream's chunks. A Content-Length over `maxBytes` is
 * refused before reading; a body without one (chunked) is cut off as soon as it passes the limit.
 */
export async function downloadToFile(
  response: MediaResponse,
  path: string,
  options: GetOptions & { maxBytes: number },
): Promise<Downloaded> {
  const { body, url } = response;
  const declared = contentLength(response);
  if (declared !== undefined && declared > options.maxBytes) {
    body.destroy();
    throw new MediaTooLargeError(options.maxBytes, `${redactUrl(url)} declares Content-Length ${declared}`);
  }
  const hash = createHash('sha256');
  let size = 0;
  let sinceCollect = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.byteLength;
      if (size > options.maxBytes) {
        callback(new MediaTooLargeError(options.maxBytes, `more than that arrived from ${redactUrl(url)}`));
        return;
      }
      hash.update(chunk);
      sinceCollect += chunk.byteLength;
      if (sinceCollect >= COLLECT_EVERY) {
        sinceCollect = 0;
        releaseGarbage();
      }
      callback(null, chunk);
    },
  });
  try {
    await pipeline(body, meter, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
  } catch (error) {
    throw transportError(error, url, options, `reading the body (${size} bytes arrived)`);
  }
  if (declared !== undefined && size !== declared) {
    throw new MediaUnavailableError(
      `${redactUrl(url)} declared Content-Length ${declared} but the body ended after ${size} bytes`,
    );
  }
  return { size, sha256: hash.digest('hex') };
}

function contentLength(response: MediaResponse): number | undefined {
  const value = header(response.headers, 'content-length');
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

/** Read a small body (provider metadata) whole, refusing one larger than `limit` bytes. */
export async function readSmallBody(
  response: MediaResponse,
  limit: number,
  options: GetOptions,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > limit) {
        response.body.destroy();
        throw new MediaBadResponseError(
          `the metadata from ${redactUrl(response.url)} is over ${limit} bytes`,
        );
      }
      chunks.push(chunk);
    }
  } catch (error) {
    throw transportError(error, response.url, options, 'reading the metadata');
  }
  return Buffer.concat(chunks);
}
