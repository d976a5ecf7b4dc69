// No Docker engine here, so this test performs the Dockerfile's own steps on the host: it copies the
// build context through Dockerfile.dockerignore, runs the Dockerfile's `pnpm install` line (offline,
// from the store the workspace install filled), then starts the ENTRYPOINT from the WORKDIR with the
// image's ENV, and stops it with SIGTERM. It proves the pitfall the Dockerfile is written around —
// Node type-strips workspace sources only outside node_modules — and that the pruned closure runs.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import type { Env } from 'dockerfile-ast';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DOCKERIGNORE,
  execForm,
  keyword,
  REPO_ROOT,
  readDockerfile,
  SERVICE_ARG,
  SERVICES,
  stages,
  text,
} from '../src/index.ts';

const content = readDockerfile();
const [build, runtime] = stages(content);
const installLine = build!.instructions
  .filter((i) => keyword(i) === 'RUN')
  .map(text)
  .find((r) => r.includes('pnpm install'))!;
const entrypoint = execForm(runtime!.instructions.filter((i) => keyword(i) === 'ENTRYPOINT').at(-1)!)!;
const imageEnv = Object.fromEntries(
  runtime!.instructions
    .filter((i) => keyword(i) === 'ENV')
    .flatMap((i) => (i as Env).getProperties().map((p) => [p.getName(), p.getValue() ?? ''])),
);
const pnpmOk = spawnSync('pnpm', ['--version'], { stdio: 'ignore' }).status === 0;
const present = SERVICES.filter((s) => existsSync(join(REPO_ROOT, 'services', s, 'src', 'main.ts')));

/** Dockerfile.dockerignore patterns as path tests (`**​/x`, `x`, `*` within a segment). */
function ignoreMatcher(): (rel: string) => boolean {
  const patterns = readFileSync(DOCKERIGNORE, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const regexes = patterns.map((p) => {
    const body = p
      .split('/')
      .map((seg) =>
        seg === '**' ? '(?:.*)' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'),
      )
      .join('/')
      .replace('(?:.*)/', '(?:.*/)?');
    // A pattern that matches a directory excludes everything below it.
    return new RegExp(`^${body}(?:/.*)?$`);
  });
  return (rel) => regexes.some((r) => r.test(rel));
}

let work: string;
let redis: TestRedis;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'holdfast-image-'));
  if (pnpmOk) redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(!pnpmOk)('the image, built step by step without a Docker engine', () => {
  it('finds the services the image is built for', () => {
    expect(present).toEqual(expect.arrayContaining(['archiver', 'sender']));
  });

  it.each(present)(
    '%s: installs a pruned production closure and runs node src/main.ts, stopping on SIGTERM',
    async (service) => {
      const app = join(work, service, 'app');
      const ignored = ignoreMatcher();
      cpSync(REPO_ROOT, app, {
        recursive: true,
        filter: (src) => {
          const rel = relative(REPO_ROOT, src).split(sep).join('/');
          return rel === '' || !ignored(rel);
        },
      });
      expect(existsSync(join(app, 'infra'))).toBe(false);
      expect(existsSync(join(app, '.git'))).toBe(false);

      const store = execFileSync('pnpm', ['store', 'path'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
      execFileSync('sh', ['-ec', installLine.replaceAll(SERVICE_ARG, service)], {
        cwd: app,
        stdio: 'pipe',
        env: { PATH: process.env.PATH, HOME: work, CI: 'true', npm_config_store_dir: store },
      });

      // Pruned: nothing from devDependencies or other services' trees.
      const virtualStore = readdirSync(join(app, 'node_modules', '.pnpm')).join('\n');
      for (const dev of [
        'vitest@',
        'typescript@',
        '@biomejs+',
        'turbo@',
        'aws-cdk-lib@',
        'testcontainers@',
      ]) {
        expect(virtualStore, dev).not.toContain(dev);
      }
      expect(existsSync(join(app, 'packages', 'testkit', 'node_modules'))).toBe(false);
      // Workspace packages are symlinks whose real path is outside node_modules (type stripping works).
      const core = realpathSync(join(app, 'services', service, 'node_modules', '@holdfast', 'core'));
      expect(core).toBe(realpathSync(join(app, 'packages', 'core')));
      expect(core).not.toMatch(/node_modules/);

      const data = join(work, service, 'data');
      mkdirSync(data, { recursive: true });
      const [, ...args] = entrypoint;
      const child = spawn(process.execPath, args, {
        cwd: join(app, 'services', service),
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...imageEnv,
          PATH: process.env.PATH,
          REDIS_URL: redis.url,
          HOLDFAST_STORE: `local:${join(data, 'store')}`,
          HOLDFAST_SPOOL_DIR: join(data, 'spool'),
          HOLDFAST_EMAIL_TRANSPORT: `outbox:${join(data, 'outbox', 'email')}`,
          HOLDFAST_SMS_TRANSPORT: `outbox:${join(data, 'outbox', 'sms')}`,
          HOLDFAST_WHATSAPP_TRANSPORT: `outbox:${join(data, 'outbox', 'whatsapp')}`,
          HOLDFAST_API_KEYS: 'test:image-layout-test-key-0001',
          HOLDFAST_LOG_LEVEL: 'info',
          PORT: '0',
          HOLDFAST_METRICS_PORT: '0',
        },
      });
      try {
        const logs = await untilLogged(child, /started|listening/i, 30_000);
        expect(logs.join('\n')).not.toMatch(/"level":(50|60)/);
        // runService installs its SIGTERM handler just after start() resolves, i.e. just after the
        // "started" line; a signal in between would meet Node's default action. Give it a moment.
        await new Promise((r) => setTimeout(r, 1000));
        child.kill('SIGTERM');
        const code = await exitCode(child, 30_000);
        expect({ code, logs: logs.slice(-5) }).toMatchObject({ code: 0 });
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    },
  );
});

function untilLogged(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string[]> {
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no log line matching ${pattern} within ${timeoutMs} ms:\n${lines.join('\n')}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        lines.push(line);
        let msg = line;
        try {
          msg = String(JSON.parse(line).msg ?? line);
        } catch {}
        if (pattern.test(msg)) {
          clearTimeout(timer);
          resolve(lines);
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before starting:\n${lines.join('\n')}`));
    });
  });
}

function exitCode(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`did not exit within ${timeoutMs} ms of SIGTERM`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}
