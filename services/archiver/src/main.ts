import { runService } from '@holdfast/core';
import { start } from './archiver.ts';

await runService('archiver', start);
