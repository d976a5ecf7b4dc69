import type { Logger } from '@holdfast/core';
import type { Worker } from 'bullmq';
import type { Breaker } from './breaker.ts';

export interface BreakerGate {
  /** Stop following the breakers (before the worker closes: nothing may resume it after). */
  close(): void;
}

/**
 * Make a worker follow its breakers, so that a dependency that is down does not burn the
 * retries of every job in the queue:
 * - any breaker open: the worker stops taking jobs (`pause(true)`: the jobs it is running go on);
 * - otherwise, any half-open: it takes one job at a time, so the next job is the probe and the
 *   jobs behind it wait for the probe's outcome instead of meeting a refusal;
 * - all closed: it runs at its own concurrency again.
 * The half-open transition comes from the breaker's own timer, so a paused worker is always
 * resumed for its probe. Only a pause the gate made is undone by it.
 */
export function gateWorker(
  worker: Worker,
  breakers: readonly Breaker[],
  options: { concurrency: number; name: string; log: Logger },
): BreakerGate {
  const { concurrency, name, log } = options;
  let pausedByGate = false;
  let closed = false;

  const apply = () => {
    if (closed) return;
    const open = breakers.filter((b) => b.state === 'open');
    if (open.length > 0) {
      if (worker.isPaused()) return;
      pausedByGate = true;
      log.warn(
        { worker: name, breakers: open.map((b) => b.name), retryAt: open[0]!.retryAt?.toISOString() },
        'circuit breaker open: worker stops taking jobs',
      );
      // Not waiting for the active jobs: they settle on their own (or meet the open breaker).
      worker
        .pause(true)
        .catch((error: Error) => log.error({ worker: name, err: error.message }, 'pause failed'));
      return;
    }
    const probing = breakers.some((b) => b.state === 'half-open');
    worker.concurrency = probing ? 1 : concurrency;
    if (!pausedByGate) return;
    pausedByGate = false;
    log.info(
      { worker: name, probing },
      probing
        ? 'circuit breaker half-open: worker takes one job to probe'
        : 'circuit breakers closed: worker resumes',
    );
    void worker.resume().then(() => {
      // BullMQ restarts its main loop from resume(); should that loop have been winding down
      // from the pause at that very moment, start it again so the probe cannot be missed.
      setImmediate(() => {
        if (!closed && !worker.isPaused() && !worker.isRunning() && !worker.closing) {
          worker
            .run()
            .catch((error: Error) =>
              log.error({ worker: name, err: error.message }, 'worker restart failed'),
            );
        }
      });
    });
  };

  const unsubscribe = breakers.map((b) => b.onStateChange(apply));
  apply();
  return {
    close() {
      closed = true;
      for (const stop of unsubscribe) stop();
    },
  };
}
