import { downloadToFile, readSmallBody } from '../download.ts';
import {
  MediaBadResponseError,
  MediaCredentialsMissingError,
  MediaHashMismatchError,
  MediaTooLargeError,
} from '../errors.ts';
import { header } from '../media-client.ts';
import type { MediaJob } from '../media-job.ts';
import { redactUrl } from '../url-policy.ts';
import { type FetchContext, type FetchedMedia, mediaType } from './fetched-media.ts';

const METADATA_LIMIT = 64 * 1024;

interface MediaMetadata {
  url: string;
  mimeType: string | undefined;
  /** Lowercase hex, when Meta reported a hash we can read. */
  sha256: string | undefined;
  fileSize: number | undefined;
}

/**
 * WhatsApp Cloud API media, in Meta's two steps: `GET <graph>/<version>/<media-id>` with the
 * access token answers the media's metadata and a short-lived download URL, which takes the same
 * token. Both URLs pass the URL policy; the token goes to each URL's own origin only. The hash
 * Meta reports is checked against the bytes.
 */
export async function fetchWhatsAppMedia(ctx: FetchContext, job: MediaJob): Promise<FetchedMedia> {
  const token = ctx.config.whatsapp.accessToken;
  if (!token) throw new MediaCredentialsMissingError('WhatsApp', 'HOLDFAST_WHATSAPP_ACCESS_TOKEN');
  const mediaId = job.media.mediaId!;
  const get = { authorization: `Bearer ${token}`, signal: ctx.signal, timeoutMs: ctx.timeoutMs };
  const graph = `${ctx.config.whatsapp.graphUrl.replace(/\/+$/, '')}/${ctx.config.whatsapp.graphVersion}/${encodeURIComponent(mediaId)}`;

  const answer = await ctx.client.get(graph, get);
  const metadata = parseMetadata(await readSmallBody(answer, METADATA_LIMIT, get), redactUrl(answer.url));
  if (metadata.fileSize !== undefined && metadata.fileSize > ctx.maxBytes) {
    answer.body.destroy();
    throw new MediaTooLargeError(ctx.maxBytes, `the Graph API reports file_size ${metadata.fileSize}`);
  }

  const response = await ctx.client.get(metadata.url, get);
  const downloaded = await downloadToFile(response, ctx.path, { ...get, maxBytes: ctx.maxBytes });
  if (metadata.sha256 !== undefined && metadata.sha256 !== downloaded.sha256) {
    throw new MediaHashMismatchError(metadata.sha256, downloaded.sha256);
  }
  return {
    path: ctx.path,
    ...downloaded,
    contentType:
      mediaType(metadata.mimeType) ??
      mediaType(header(response.headers, 'content-type')) ??
      mediaType(job.media.contentType) ??
      'application/octet-stream',
    source: { mediaId, url: redactUrl(response.url) },
    ...(metadata.sha256 === undefined ? {} : { providerSha256: metadata.sha256 }),
  };
}

function parseMetadata(bytes: Buffer, from: string): MediaMetadata {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new MediaBadResponseError(`the media metadata from ${from} is not JSON`);
  }
  if (typeof json !== 'object' || json === null || typeof json.url !== 'string' || json.url === '') {
    throw new MediaBadResponseError(`the media metadata from ${from} names no download url`);
  }
  const size = typeof json.file_size === 'string' ? Number(json.file_size) : json.file_size;
  return {
    url: json.url,
    mimeType: typeof json.mime_type === 'string' ? json.mime_type : undefined,
    sha256: typeof json.sha256 === 'string' ? hexSha256(json.sha256) : undefined,
    fileSize: typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : undefined,
  };
}

/** Meta reports the hash as hex in some places and base64 in others: either becomes hex. */
function hexSha256(value: string): string | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(value)) return value.toLowerCase();
  if (/^[A-Za-z0-9+/]{43}=$/.test(value)) return Buffer.from(value, 'base64').toString('hex');
  return undefined;
}
