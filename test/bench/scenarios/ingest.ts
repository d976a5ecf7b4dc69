import { createServer } from 'node:net';
import { join } from 'node:path';
import { startRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import autocannon from 'autocannon';
import { type ChildService, startChild } from '../lib/children.ts';
import { figure, round } from '../lib/figures.ts';
import { fsyncFloor } from '../lib/fsync-floor.ts';
import type { PacedLoadResult } from '../lib/paced-load.ts';
import type { BenchContext, Scenario } from '../lib/types.ts';
import { BENCH_APP_SECRET, signedWebhook } from '../lib/whatsapp-webhook.ts';

const FIXED_RATE = 1000;
const CONNECTIONS = 64;

function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

interface IngestInside {
  /** Spool fdatasyncs so far: all, over 10 ms, over 100 ms. */
  count: number;
  over10ms: number;
  over100ms: number;
  /** Event-loop delay since the previous scrape (prom-client resets it on each), in ms. */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** What the ingest process says about itself on /metrics: its spool's fsyncs and its event loop. */
async function scrapeIngest(baseUrl: string): Promise<IngestInside> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  const count = value(/^holdfast_spool_fsync_seconds_count\{[^}]*\} (\d+)/m);
  return {
    count,
    over10ms: count - value(/^holdfast_spool_fsync_seconds_bucket\{le="0\.01"[^}]*\} (\d+)/m),
    over100ms: count - value(/^holdfast_spool_fsync_seconds_bucket\{le="0\.1"[^}]*\} (\d+)/m),
    loopDelayP99Ms: round(value(/^nodejs_eventloop_lag_p99_seconds(?:\{[^}]*\})? (\S+)/m) * 1000),
    loopDelayMaxMs: round(value(/^nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)/m) * 1000),
  };
}

/** Saturation: autocannon's closed loop, every connection sending as fast as answers come. */
async function saturate(url: string, durationS: number): Promise<autocannon.Result> {
  let n = 0;
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: durationS,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const { body, headers } = signedWebhook(n++);
          return { ...req, body, headers: { ...req.headers, ...headers } };
        },
      },
    ],
  });
}

/** A fixed offered load, evenly paced (see paced-load.ts for why not autocannon's rate limit). */
function paced(generator: ChildService, url: string, durationS: number, rate: number) {
  return generator.request<PacedLoadResult>({
    type: 'paced',
    url,
    rate,
    durationS,
    connections: CONNECTIONS,
  });
}

/**
 * Scenario 4: signed WhatsApp webhook POST -> verified -> spooled (fsync) -> 200, against the
 * same Fastify answering 200 without verifying or spooling. Both run as child processes, and so
 * does the paced load generator; autocannon (saturation) runs in the bench process.
 */
export const ingestScenario: Scenario = {
  id: 'ingest',
  number: 4,
  title: 'Ingest: signed WhatsApp webhook POST -> spooled -> 200',
  baseline: 'the same Fastify server answering 200 without the spool, same load generators',
  async run(ctx: BenchContext) {
    const durationS = ctx.quick ? 3 : 10;
    const redis = await startRedis();
    const dir = await tempDir('holdfast-bench-ingest-');
    const [ingestPort, opsPort, barePort] = [await freePort(), await freePort(), await freePort()];
    const env = {
      REDIS_URL: redis.url,
      HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
      HOLDFAST_WHATSAPP_APP_SECRET: BENCH_APP_SECRET,
      // The services' default, as deployed: ingest writes a line per request.
      HOLDFAST_LOG_LEVEL: process.env.HOLDFAST_BENCH_LOG_LEVEL ?? 'info',
      HOLDFAST_METRICS_PORT: '0',
    };
    const ingest = await startChild({
      name: 'ingest',
      role: 'ingest',
      env: { ...env, PORT: String(ingestPort), HOLDFAST_METRICS_PORT: String(opsPort) },
      logDir: join(dir.path, 'logs'),
      ...(ctx.profileDir ? { profileDir: ctx.profileDir } : {}),
    });
    const bare = await startChild({
      name: 'bare-http',
      role: 'bare-http',
      env: { ...env, PORT: String(barePort) },
      logDir: join(dir.path, 'logs'),
    });
    // The paced load comes from a fresh process; autocannon (saturation) stays in this one.
    const generator = await startChild({
      name: 'paced-load',
      role: 'paced-load',
      env: {},
      logDir: join(dir.path, 'logs'),
    });
    try {
      const ingestUrl = `http://127.0.0.1:${ingestPort}/webhooks/whatsapp/bench`;
      const bareUrl = `http://127.0.0.1:${barePort}/webhooks/whatsapp/bench`;
      ctx.log(
        `ingest: warm-up, then ${durationS} s at ${FIXED_RATE} req/s and ${durationS} s at saturation, each side`,
      );
      await paced(generator, ingestUrl, 1, 200);
      await paced(generator, bareUrl, 1, 200);
      // Its /metrics is on the ops port, not the public one.
      const ingestBase = `http://127.0.0.1:${opsPort}`;
      const insideBefore = await scrapeIngest(ingestBase);
      const fixed = await paced(generator, ingestUrl, durationS, FIXED_RATE);
      const insideAfter = await scrapeIngest(ingestBase);
      const fsyncs = {
        count: insideAfter.count - insideBefore.count,
        over10ms: insideAfter.over10ms - insideBefore.over10ms,
        over100ms: insideAfter.over100ms - insideBefore.over100ms,
      };
      const bareFixed = await paced(generator, bareUrl, durationS, FIXED_RATE);
      // The spool's disk, measured right after: what an fsync-gated ack cannot beat.
      const floor = await fsyncFloor(dir.path, durationS);
      const saturated = await saturate(ingestUrl, durationS);
      const bareSaturated = await saturate(bareUrl, durationS);
      const non2xx = fixed.non2xx + saturated.non2xx + fixed.errors + saturated.errors;
      return {
        figures: [
          figure(`ack p50 @ ${FIXED_RATE} req/s`, fixed.latency.p50Ms, 'ms', {
            name: 'bare route p50',
            value: bareFixed.latency.p50Ms,
          }),
          figure(
            `ack p99 @ ${FIXED_RATE} req/s`,
            fixed.latency.p99Ms,
            'ms',
            { name: 'bare route p99', value: bareFixed.latency.p99Ms },
            { kind: 'max-value', limit: 10, unit: 'ms' },
          ),
          figure(`ack p99 @ ${FIXED_RATE} req/s vs the disk`, fixed.latency.p99Ms, 'ms', {
            name: 'write + fdatasync p99, same disk',
            value: floor.p99Ms,
          }),
          figure(`ack p99.9 @ ${FIXED_RATE} req/s vs the disk`, fixed.latency.p999Ms, 'ms', {
            name: 'write + fdatasync p99.9, same disk',
            value: floor.p999Ms,
          }),
          // An ack waits for its fsync round: when more than 1% of rounds take over 10 ms, so does
          // the p99. This is the disk under this run's own load (the floor above is measured alone).
          figure(`spool fdatasyncs over 10 ms @ ${FIXED_RATE} req/s`, fsyncs.over10ms, '', {
            name: 'spool fdatasyncs in that run',
            value: fsyncs.count,
          }),
          figure(`spool fdatasyncs over 100 ms @ ${FIXED_RATE} req/s`, fsyncs.over100ms, '', {
            name: 'spool fdatasyncs in that run',
            value: fsyncs.count,
          }),
          // Sampled every 10 ms (prom-client's default), so an idle loop reads ~10 ms.
          figure(`ingest event-loop delay max @ ${FIXED_RATE} req/s`, insideAfter.loopDelayMaxMs, 'ms', {
            name: 'its p99',
            value: insideAfter.loopDelayP99Ms,
          }),
          // The paced generator's own stalls are charged to every request they delay; it runs in a
          // process of its own, away from the heap earlier scenarios grew in the bench process.
          figure(
            `load generator event-loop delay max @ ${FIXED_RATE} req/s`,
            round(fixed.generatorLoopDelay.maxMs),
            'ms',
            { name: 'its p99', value: round(fixed.generatorLoopDelay.p99Ms) },
          ),
          figure(`req/s achieved @ ${FIXED_RATE} offered`, round(fixed.achieved), '/s', {
            name: 'bare route',
            value: round(bareFixed.achieved),
          }),
          figure(
            'req/s at saturation',
            round(saturated.requests.average),
            '/s',
            { name: 'bare route at saturation', value: round(bareSaturated.requests.average) },
            { kind: 'min-ratio', limit: 0.3 },
          ),
          figure('ack p99 at saturation', saturated.latency.p99, 'ms', {
            name: 'bare route p99 at saturation',
            value: bareSaturated.latency.p99,
          }),
          figure('non-2xx or errors (must be 0)', non2xx, ''),
        ],
        details: {
          connections: CONNECTIONS,
          durationS,
          fixed: fixed.latency,
          saturated: saturated.latency,
          bareFixed: bareFixed.latency,
          fsyncFloor: floor,
          spoolFsyncsAtFixedRate: fsyncs,
          bareSaturated: bareSaturated.latency,
        },
      };
    } finally {
      await generator.stop();
      await ingest.stop();
      await bare.stop();
      await redis.stop();
      await dir.remove();
    }
  },
};
