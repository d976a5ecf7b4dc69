import { downloadToFile } from '../download.ts';
import { MediaCredentialsMissingError, MediaFetchError } from '../errors.ts';
import { header } from '../media-client.ts';
import type { MediaJob } from '../media-job.ts';
import { redactUrl } from '../url-policy.ts';
import { type FetchContext, type FetchedMedia, mediaType } from './fetched-media.ts';

/**
 * Twilio MMS media: `GET MediaUrl` with HTTP basic auth (account SID : auth token) answers a
 * redirect to Twilio's CDN. The credentials are sent only when the MediaUrl is on Twilio's API
 * origin (HOLDFAST_TWILIO_API_URL), and never to the CDN or any other host a redirect names.
 */
export async function fetchTwilioMedia(ctx: FetchContext, job: MediaJob): Promise<FetchedMedia> {
  const url = job.media.url!;
  const { accountSid } = ctx.config.twilio;
  const authToken = ctx.config.twilioAuthToken;
  const onApi = URL.canParse(url) && new URL(url).origin === new URL(ctx.config.twilio.apiUrl).origin;
  const credentials = onApi && accountSid && authToken ? { accountSid, authToken } : undefined;
  const get = {
    ...(credentials && {
      authorization: `Basic ${Buffer.from(`${credentials.accountSid}:${credentials.authToken}`).toString('base64')}`,
    }),
    signal: ctx.signal,
    timeoutMs: ctx.timeoutMs,
  };
  let response: Awaited<ReturnType<typeof ctx.client.get>>;
  try {
    response = await ctx.client.get(url, get);
  } catch (error) {
    // Without credentials Twilio only serves media of accounts that do not enforce HTTP auth on it.
    if (
      onApi &&
      !credentials &&
      error instanceof MediaFetchError &&
      (error as { status?: number }).status === 401
    ) {
      throw new MediaCredentialsMissingError(
        'Twilio',
        'HOLDFAST_TWILIO_ACCOUNT_SID and HOLDFAST_TWILIO_AUTH_TOKEN',
      );
    }
    throw error;
  }
  const downloaded = await downloadToFile(response, ctx.path, { ...get, maxBytes: ctx.maxBytes });
  return {
    path: ctx.path,
    ...downloaded,
    contentType:
      mediaType(header(response.headers, 'content-type')) ??
      mediaType(job.media.contentType) ??
      'application/octet-stream',
    source: {
      url: redactUrl(url),
      ...(response.url.href !== url ? { fetchedFrom: redactUrl(response.url) } : {}),
    },
  };
}
