import { runService } from '@holdfast/core';
import { start } from './media-fetcher.ts';

await runService('media-fetcher', start);
