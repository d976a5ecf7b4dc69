import { type Breaker, type BreakerSettings, createBreaker } from '@holdfast/producer';
import { isStoreOutage } from '@holdfast/worm-store';
import { MediaFetchError } from './errors.ts';

/**
 * What a download breaker counts: the provider failing to serve (5xx, 408, 429, resets, bodies
 * cut short, the download deadline passing), i.e. MediaFetchErrors that are not permanent. A
 * refused URL, a 4xx for one media item or a file over the limit is about that item only.
 */
export function isDownloadFailure(error: unknown): boolean {
  return error instanceof MediaFetchError && !error.permanent;
}

/** The media fetcher's breakers: one per provider it downloads from, and one for its store. */
export interface MediaBreakers {
  readonly 'download-twilio': Breaker;
  readonly 'download-whatsapp': Breaker;
  readonly store: Breaker;
}

export function mediaBreakers(settings: BreakerSettings = {}): MediaBreakers {
  const breaker = (name: string, isFailure: (error: unknown) => boolean) =>
    createBreaker({ ...settings, name, service: 'media-fetcher', isFailure });
  return Object.freeze({
    'download-twilio': breaker('download-twilio', isDownloadFailure),
    'download-whatsapp': breaker('download-whatsapp', isDownloadFailure),
    store: breaker('store', isStoreOutage),
  });
}

/** The download breaker of a job's provider: the same choice `fetchMedia` makes. */
export function downloadBreakerOf(breakers: MediaBreakers, provider: string): Breaker {
  return provider === 'whatsapp' ? breakers['download-whatsapp'] : breakers['download-twilio'];
}
