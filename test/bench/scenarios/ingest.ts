import type { Scenario } from '../lib/types.ts';

/*
 * services/ingest landed (92efc96) after this bench was scoped; to wire it: start it (PORT=0) beside a bare Fastify server whose
 * route answers 200 without the spool, sign WhatsApp payloads (x-hub-signature-256), and drive
 * both with autocannon (`pnpm --filter @holdfast/test add -D autocannon`) at a fixed 1,000 req/s
 * and at saturation. Figures: p50/p99 ack latency at 1,000 req/s (target p99 <= 10 ms) and
 * saturation req/s against the bare route (target >= 0.3x).
 */
export const ingestScenario: Scenario = {
  id: 'ingest',
  number: 4,
  title: 'Ingest: signed WhatsApp webhook POST -> spooled -> 200',
  baseline: 'the same Fastify server answering 200 without the spool, same load generator (autocannon)',
  notBuiltYet: 'the ingest service landed after this bench was scoped; its scenario is not wired yet',
};
