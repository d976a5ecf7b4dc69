/**
 * The media fetcher as a bench child: started with the same `start(config)` its `main.ts` runs
 * (config from the environment), and nothing else loaded, so its RSS is the service's own.
 *
 * Imported by path: `@holdfast/media-fetcher` is not (yet) a dependency of `@holdfast/test`, and
 * adding one needs `pnpm install`. The service's own imports resolve from its package directory.
 */
import { loadConfig } from '@holdfast/core';
import { start } from '@holdfast/media-fetcher';
import { serveUntilStopped } from './serve.ts';

serveUntilStopped('media-fetcher', await start(loadConfig()));
