import { type ChildProcess, fork } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

const SERVICE_ENTRY = new URL('../workers/service.ts', import.meta.url).pathname;
/** Roles with an entry of their own, so their process loads nothing else (their RSS is measured). */
const OWN_ENTRIES: Partial<Record<ServiceRole, string>> = {
  'media-fetcher': new URL('../workers/media-fetcher.ts', import.meta.url).pathname,
  'plain-fetch': new URL('../workers/plain-fetch.ts', import.meta.url).pathname,
  'paced-load': new URL('../workers/paced-load.ts', import.meta.url).pathname,
};

export type ServiceRole =
  | 'archiver'
  | 'sender'
  | 'noop'
  | 'ingest'
  | 'bare-http'
  | 'media-fetcher'
  | 'plain-fetch'
  | 'paced-load';

export interface ChildService {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /**
   * Sends `message` with a fresh `id` and resolves with the child's `{ type: 'reply', id, value }`
   * (rejects on its `error`, on exit, or after `timeoutMs`). For children that take requests
   * (`plain-fetch`).
   */
  request<T>(message: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** Asks the service to close (in-flight jobs finish or go back to the queue), then waits for exit. */
  stop(): Promise<void>;
}

export interface StartChildOptions {
  /** Label for logs, RSS samples and profiles, e.g. `archiver` or `raw-worker`. */
  name: string;
  role: ServiceRole;
  env: Record<string, string>;
  /** stdout/stderr of the child (its pino log) go here, not through the bench process. */
  logDir: string;
  /** When set, the child runs with `--cpu-prof` and writes its profile under this directory. */
  profileDir?: string;
}

/**
 * Runs a service as its own process, as production does: one event loop per service, so the
 * producer, the archiver and the sender do not share (and bound) one loop. The child reports
 * `ready` over IPC once its workers are connected.
 */
export async function startChild(options: StartChildOptions): Promise<ChildService> {
  await mkdir(options.logDir, { recursive: true });
  const logFile = join(options.logDir, `${options.name}.log`);
  const fd = openSync(logFile, 'a');
  const execArgv: string[] = [];
  if (options.profileDir) {
    const dir = join(options.profileDir, options.name);
    await mkdir(dir, { recursive: true });
    execArgv.push('--cpu-prof', '--cpu-prof-dir', dir);
  }
  const child: ChildProcess = fork(OWN_ENTRIES[options.role] ?? SERVICE_ENTRY, [options.role], {
    env: { ...process.env, ...options.env },
    execArgv,
    stdio: ['ignore', fd, fd, 'ipc'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const tail = () => readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${options.name} not ready after 30 s:\n${tail()}`)),
      30_000,
    );
    child.on('message', (message: { type?: string }) => {
      if (message?.type === 'ready') {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited with ${code} before it was ready:\n${tail()}`));
    });
  });
  let stopping: Promise<void> | undefined;
  let requests = 0;
  return {
    name: options.name,
    pid: child.pid!,
    logFile,
    request<T>(message: Record<string, unknown>, timeoutMs = 30 * 60_000) {
      const id = ++requests;
      return new Promise<T>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          child.off('message', onMessage);
        };
        const onMessage = (reply: { type?: string; id?: number; value?: unknown; error?: string }) => {
          if (reply?.type !== 'reply' || reply.id !== id) return;
          done();
          if (reply.error !== undefined) reject(new Error(`${options.name}: ${reply.error}`));
          else resolve(reply.value as T);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${options.name} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        child.on('message', onMessage);
        void exited.then((code) => {
          done();
          reject(new Error(`${options.name} exited with ${code} during a request:\n${tail()}`));
        });
        child.send({ ...message, id });
      });
    },
    stop() {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.send({ type: 'stop' });
        const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(killer);
      })();
      return stopping;
    },
  };
}
