import { Latency } from './histogram.ts';

export interface ClosedLoopResult {
  /** Operations that resolved. */
  done: number;
  failed: number;
  firstError: string | undefined;
  /** ms from the first call to the last resolution. */
  elapsedMs: number;
  latency: Latency;
}

/**
 * A closed-loop load: `concurrency` callers, each calling `op(i)` for the next index and
 * awaiting it before taking another, until `total` calls were made. Like `concurrency` request
 * handlers of an application calling the SDK. Each call's latency goes into a histogram.
 */
export async function closedLoop(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<ClosedLoopResult> {
  const latency = new Latency();
  let next = 0;
  let done = 0;
  let failed = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const caller = async () => {
    for (let i = next++; i < total; i = next++) {
      const t = process.hrtime.bigint();
      try {
        await op(i);
        latency.recordNs(Number(process.hrtime.bigint() - t));
        done++;
      } catch (error) {
        failed++;
        firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, caller));
  return { done, failed, firstError, elapsedMs: performance.now() - started, latency };
}

/** The same closed loop, for a fixed time instead of a fixed count (the spool scenario). */
export async function closedLoopFor(
  durationMs: number,
  concurrency: number,
  op: (caller: number, i: number) => Promise<unknown>,
): Promise<{ done: number; elapsedMs: number; latency: Latency }> {
  const latency = new Latency();
  let done = 0;
  let stop = false;
  const started = performance.now();
  const timer = setTimeout(() => {
    stop = true;
  }, durationMs);
  const caller = async (c: number) => {
    for (let i = 0; !stop; i++) {
      const t = process.hrtime.bigint();
      await op(c, i);
      latency.recordNs(Number(process.hrtime.bigint() - t));
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, (_, c) => caller(c)));
  } finally {
    clearTimeout(timer);
  }
  return { done, elapsedMs: performance.now() - started, latency };
}

/** Polls `check` every `everyMs` until it returns true; throws after `timeoutMs` naming `what`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 20,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
