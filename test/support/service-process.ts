import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { waitFor } from './wait-for.ts';

const CLI = resolve(import.meta.dirname, '../../packages/cli/src/main.ts');

/**
 * One Holdfast service as its own OS process (`holdfast run <service>`), so a test can SIGKILL it
 * between any two lines — a real crash, not a simulated one — and start it again.
 */
export class ServiceProcess {
  readonly service: string;
  readonly #env: Record<string, string>;
  readonly #supervise: boolean;
  #child: ChildProcess | undefined;
  #exited: Promise<number | null> | undefined;
  /** Set while this object itself is ending the process (kill/stop): not a crash. */
  #ending = false;
  /** Every line the process printed to stderr (fatal errors), for failure messages. */
  readonly stderr: string[] = [];
  starts = 0;
  /** Times the process exited on its own (e.g. it could not start while Redis was restarting). */
  crashes = 0;

  /**
   * `supervise`: restart the process when it exits on its own, as Kubernetes or compose would
   * (`restart: unless-stopped`). @defaultValue false
   */
  constructor(service: string, env: Record<string, string>, options: { supervise?: boolean } = {}) {
    this.service = service;
    this.#env = env;
    this.#supervise = options.supervise ?? false;
  }

  get pid(): number | undefined {
    return this.#child?.exitCode === null ? this.#child.pid : undefined;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Start the process and wait until its ops endpoint (or, for ingest, its port) answers /readyz. */
  async start(readyUrl?: string): Promise<void> {
    if (this.running) throw new Error(`${this.service} is already running`);
    this.#spawn();
    if (readyUrl) {
      await waitFor(
        `${this.service} ready at ${readyUrl}`,
        async () => {
          if (!this.running && !this.#supervise)
            throw new Error(`${this.service} exited: ${this.stderr.join('').slice(-2000)}`);
          return this.running && (await fetch(readyUrl)).ok;
        },
        60_000,
      );
    }
  }

  #spawn(): void {
    const child = spawn(process.execPath, [CLI, 'run', this.service], {
      env: { PATH: process.env.PATH ?? '', HOLDFAST_LOG_LEVEL: 'error', ...this.#env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderr.push(chunk);
      if (this.stderr.length > 200) this.stderr.shift();
    });
    this.#child = child;
    this.#exited = new Promise((done) =>
      child.once('exit', (code) => {
        done(code);
        if (this.#ending || this.#child !== child) return;
        this.crashes++;
        if (this.#supervise) setTimeout(() => !this.#ending && !this.running && this.#spawn(), 300);
      }),
    );
    this.starts++;
  }

  /** SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill. */
  async kill(): Promise<void> {
    this.#ending = true;
    try {
      if (!this.running) return;
      this.#child!.kill('SIGKILL');
      await this.#exited;
    } finally {
      this.#ending = false;
    }
  }

  /** SIGTERM and wait: resolves with the exit code (0 after a clean shutdown). */
  async stop(): Promise<number | null> {
    this.#ending = true;
    if (!this.running) return this.#child?.exitCode ?? null;
    this.#child!.kill('SIGTERM');
    return this.#exited!;
  }
}

/** A TCP port free on loopback right now (for a child process's PORT / HOLDFAST_METRICS_PORT). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
    server.once('error', fail);
  });
}
