import { type HoldfastConfig, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';

export interface ServiceHandle {
  close(): Promise<void>;
}

/**
 * Run a service as a process: start it from the environment's config, and on SIGTERM or SIGINT
 * stop taking work, let in-flight work finish or return to the queue, and exit 0 — or exit 1
 * if that takes longer than the deadline (orchestrators kill at their own grace period anyway).
 */
export async function runService(
  name: string,
  start: (config: Readonly<HoldfastConfig>) => Promise<ServiceHandle>,
  config: Readonly<HoldfastConfig> = loadConfig(),
): Promise<void> {
  const shutdownDeadlineMs = config.shutdownDeadlineMs;
  const log = createLogger({ name: `holdfast-${name}`, level: config.logLevel });
  // Signals are handled from the first moment: one that arrives while the service is still
  // starting waits for the start to finish, then stops it.
  let starting: Promise<ServiceHandle | undefined> | undefined;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${name} shutting down`);
    const timer = setTimeout(() => {
      log.error({ deadlineMs: shutdownDeadlineMs }, `${name} did not stop within its deadline`);
      process.exit(1);
    }, shutdownDeadlineMs);
    timer.unref();
    Promise.resolve(starting)
      .then((handle) => handle?.close())
      .then(
        () => process.exit(0),
        (error: Error) => {
          log.error({ err: error.message }, `${name} shutdown failed`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  starting = start(config).catch((error: unknown) => {
    log.fatal(
      { err: (error as Error).message, code: (error as { code?: string }).code },
      `${name} failed to start`,
    );
    process.exit(1);
  });
  await starting;
}
