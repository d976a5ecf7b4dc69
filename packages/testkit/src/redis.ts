import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import getPort from 'get-port';
import { dockerEngineReachable } from './docker.ts';

export interface TestRedis {
  /** `redis://127.0.0.1:<port>` of a server nobody else uses. */
  url: string;
  port: number;
  dataDir: string;
  /** SIGKILL the server (no shutdown save): simulates a crash. */
  kill(): Promise<void>;
  /** Start it again on the same port and data dir (AOF is replayed). */
  restart(): Promise<void>;
  /** SIGSTOP the server: its connections stay up and nothing answers (a hung Redis). */
  freeze(): void;
  /** SIGCONT a frozen server. */
  thaw(): void;
  /** Stop it and delete its data dir. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** Keep the data in this directory instead of a fresh temp dir. */
  dataDir?: string;
  /** @defaultValue true (AOF, `appendfsync everysec`, as production must run) */
  appendOnly?: boolean;
}

/**
 * Start a private Redis on a free loopback port with its own data, configured the way Holdfast
 * requires in production (AOF on, `maxmemory-policy noeviction`): a testcontainers container
 * where a Docker engine answers, else the local `redis-server` binary with a temp data dir.
 * Tests never use the machine's shared Redis.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  if (!options.dataDir && (await dockerEngineReachable())) {
    const { startRedisContainer } = await import('./redis-container.ts');
    return startRedisContainer(options.appendOnly !== false);
  }
  const binary = findRedisServer();
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'holdfast-redis-')));
  let port = 0;
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (port === 0 || attempt > 0) port = await getPort({ host: '127.0.0.1' });
      child = spawn(binary, serverArgs(port, dataDir, options.appendOnly !== false), { stdio: 'ignore' });
      if (await waitUntilReady(port, child)) return;
      if (attempt >= 3)
        throw new Error(`redis-server did not start on port ${port} (see ${join(dataDir, 'redis.log')})`);
    }
  };

  let frozen = false;
  const thaw = () => {
    if (frozen) child?.kill('SIGCONT');
    frozen = false;
  };
  const killChild = async (signal: NodeJS.Signals): Promise<void> => {
    // A stopped process would not act on SIGTERM until continued.
    thaw();
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  };

  await launch();
  const firstPort = port;
  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dataDir,
    kill: () => killChild('SIGKILL'),
    freeze() {
      child?.kill('SIGSTOP');
      frozen = true;
    },
    thaw,
    async restart() {
      await killChild('SIGTERM');
      port = firstPort;
      child = spawn(binary, serverArgs(port, dataDir, options.appendOnly !== false), { stdio: 'ignore' });
      if (!(await waitUntilReady(port, child)))
        throw new Error(`redis-server did not restart on port ${port}`);
    },
    async stop() {
      await killChild('SIGTERM');
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function serverArgs(port: number, dataDir: string, appendOnly: boolean): string[] {
  return [
    ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dataDir, '--save', ''],
    ...[
      '--appendonly',
      appendOnly ? 'yes' : 'no',
      '--appendfsync',
      'everysec',
      '--maxmemory-policy',
      'noeviction',
    ],
    ...['--logfile', join(dataDir, 'redis.log')],
  ];
}

export function findRedisServer(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) {
    throw new Error(
      'redis-server is not on PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)',
    );
  }
  return path;
}

async function waitUntilReady(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    if (await ping(port)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let answer = '';
    socket.setTimeout(500);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('\r\n')) {
        socket.destroy();
        resolve(answer.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}
