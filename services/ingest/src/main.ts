import { runService } from '@holdfast/core';
import { start } from './ingest.ts';

await runService('ingest', start);
