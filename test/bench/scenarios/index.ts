import type { Scenario } from '../lib/types.ts';
import { emailScenario } from './email-pipeline.ts';
import { ingestScenario } from './ingest.ts';
import { mediaScenario } from './media.ts';
import { memoryScenario } from './memory.ts';
import { recordsScenario } from './records-pipeline.ts';
import { scalingScenario } from './scaling.ts';
import { spoolScenario } from './spool.ts';

/**
 * Every scenario, in the order. A scenario whose subject does not exist yet stays here
 * with `notBuiltYet`, so the table shows it as missing instead of dropping it; when the service
 * lands, give it a `run` and it takes part.
 */
export const SCENARIOS: readonly Scenario[] = Object.freeze([
  spoolScenario,
  recordsScenario,
  emailScenario,
  ingestScenario,
  memoryScenario,
  mediaScenario,
  scalingScenario,
]);
