import { runService } from '@holdfast/core';
import { start } from './sender.ts';

await runService('sender', start);
