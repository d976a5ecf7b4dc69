import { Agent, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Latency, type LatencySummary } from './histogram.ts';

export interface PacedLoadOptions {
  url: string;
  /** Offered load: requests per second, evenly spaced. */
  rate: number;
  durationS: number;
  /** Keep-alive sockets; a request finding all busy waits for one, and that wait counts. */
  connections: number;
  /** The nth request's body and headers. */
  build: (n: number) => { body: string; headers: Record<string, string> };
}

export interface PacedLoadResult {
  latency: LatencySummary;
  /** Requests completed per second over the run. */
  achieved: number;
  non2xx: number;
  errors: number;
  /** The generator's own event-loop delay over the run: a stall here delays sends and reads. */
  generatorLoopDelay: { p99Ms: number; maxMs: number };
}

/**
 * Open-loop load at a fixed rate: request n is due at start + n/rate, whether or not earlier
 * ones have answered, and its latency runs from when it was due (so a stall is charged to every
 * request it delays: no coordinated omission). autocannon's rate limit cannot do this: it lets
 * each connection send its quota back to back at the start of every second, so "1,000 req/s" is
 * a burst of 64-way saturation followed by idle, and its latency correction assumes a 1 ms
 * interval. autocannon still measures saturation, where that does not arise.
 */
export async function pacedLoad(options: PacedLoadOptions): Promise<PacedLoadResult> {
  const url = new URL(options.url);
  const agent = new Agent({ keepAlive: true, maxSockets: options.connections });
  const latency = new Latency();
  const total = Math.round(options.rate * options.durationS);
  const intervalNs = 1e9 / options.rate;
  let non2xx = 0;
  let errors = 0;
  const inFlight = new Set<Promise<void>>();
  const send = (n: number, dueNs: bigint) => {
    const { body, headers } = options.build(n);
    const done = new Promise<void>((resolve) => {
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers },
        (res) => {
          res.resume();
          res.once('end', () => {
            latency.recordNs(Number(process.hrtime.bigint() - dueNs));
            if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) non2xx++;
            resolve();
          });
        },
      );
      req.once('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
    inFlight.add(done);
    void done.then(() => inFlight.delete(done));
  };
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const start = process.hrtime.bigint();
  let next = 0;
  while (next < total) {
    const elapsedNs = Number(process.hrtime.bigint() - start);
    const due = Math.min(total, Math.floor(elapsedNs / intervalNs) + 1);
    for (; next < due; next++) send(next, start + BigInt(Math.round(next * intervalNs)));
    await sleep(1);
  }
  await Promise.all(inFlight);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  loop.disable();
  const generatorLoopDelay = { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 };
  return { latency: latency.summary(), achieved: total / seconds, non2xx, errors, generatorLoopDelay };
}
