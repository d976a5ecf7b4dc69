import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { sha256Hex } from '@holdfast/core';
import { createProducer } from '@holdfast/producer';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore } from '@holdfast/worm-store';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const MAIN = resolve(import.meta.dirname, '../src/main.ts');

function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HOLDFAST_LOG_LEVEL: 'warn',
    ...extra,
  };
  return env;
}

function run(
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

describe('holdfast CLI', () => {
  let dir: { path: string; remove(): Promise<void> };
  let child: ChildProcess | undefined;
  beforeEach(async () => {
    dir = await tempDir('holdfast-cli-');
  });
  afterEach(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    child = undefined;
    await dir.remove();
  });

  it('dev runs the whole fleet with a private persistent Redis: an email goes in, is archived, and lands in the outbox', async () => {
    child = spawn(process.execPath, [MAIN, 'dev'], { cwd: dir.path, env: cleanEnv() });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const lines = createInterface({ input: child.stdout! });
    const ready = await new Promise<{ redisUrl: string; ingestUrl: string }>((resolveReady, reject) => {
      child!.once('exit', (code) => reject(new Error(`holdfast dev exited with ${code}`)));
      lines.on('line', (line) => {
        if (line.startsWith('HOLDFAST_READY '))
          resolveReady(JSON.parse(line.slice('HOLDFAST_READY '.length)));
      });
    });

    const redis = new Redis(ready.redisUrl);
    try {
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    } finally {
      redis.disconnect();
    }
    expect(existsSync(join(dir.path, '.holdfast/redis'))).toBe(true);
    expect((await fetch(`${ready.ingestUrl}/healthz`)).status).toBe(200);

    const producer = await createProducer({
      project: 'demo',
      redisUrl: ready.redisUrl,
      spoolDir: join(dir.path, 'app-spool'),
    });
    const { archiveKey } = await producer.sendEmail({
      from: 'a@demo.example',
      to: 'b@demo.example',
      subject: 'hi',
      text: 'hello',
    });
    const outbox = join(dir.path, '.holdfast/outbox/email');
    const deadline = Date.now() + 20_000;
    let emls: string[] = [];
    while (Date.now() < deadline && emls.length === 0) {
      emls = existsSync(outbox) ? (await readdir(outbox)).filter((f) => f.endsWith('.eml')) : [];
      if (emls.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    await producer.close();
    expect(emls).toHaveLength(1);

    const head = await run(['store', 'head', archiveKey, '--json'], { cwd: dir.path });
    expect(head.code).toBe(0);
    expect(JSON.parse(head.stdout)).toMatchObject({ key: archiveKey, mode: 'COMPLIANCE', legalHold: false });

    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    // Waiting for its own Redis to listen is not an error, and the first screen must not say so.
    expect(stderr).not.toContain('Unhandled error event');
  });

  it('dev says what to install when there is no redis-server and no REDIS_URL', async () => {
    const result = await run(['dev'], { cwd: dir.path, env: cleanEnv({ PATH: dirname(process.execPath) }) });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('redis-server is not on PATH');
    expect(result.stderr).toContain('apt-get install redis-server');
    expect(result.stderr).toContain('HOLDFAST_ERR_REDIS_NOT_INSTALLED');
  });

  it('store ls/head/get read the archive, with --json', async () => {
    const storeDir = join(dir.path, 'store');
    const store = await LocalWormStore.open({ dir: storeDir });
    const body = Buffer.from('{"a":1}');
    const retainUntil = new Date(Date.now() + 86_400_000);
    await store.put({
      key: 'records/audit-log/2026/01/01/x.json',
      body,
      sha256: sha256Hex(body),
      contentType: 'application/json',
      retainUntil,
    });
    await store.close();
    const env = cleanEnv({ HOLDFAST_STORE: `local:${storeDir}` });

    const ls = await run(['store', 'ls', 'records/', '--json'], { cwd: dir.path, env });
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout)).toEqual([
      expect.objectContaining({ key: 'records/audit-log/2026/01/01/x.json', size: body.length }),
    ]);

    const head = await run(['store', 'head', 'records/audit-log/2026/01/01/x.json', '--json'], {
      cwd: dir.path,
      env,
    });
    expect(JSON.parse(head.stdout)).toMatchObject({
      sha256: sha256Hex(body),
      mode: 'COMPLIANCE',
      retainUntil: retainUntil.toISOString(),
    });

    const get = await run(['store', 'get', 'records/audit-log/2026/01/01/x.json'], { cwd: dir.path, env });
    expect(get.stdout).toBe('{"a":1}');

    const missing = await run(['store', 'head', 'nope', '--json'], { cwd: dir.path, env });
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toEqual({ error: 'HOLDFAST_ERR_OBJECT_NOT_FOUND', key: 'nope' });
  });

  it('names a bad environment variable and exits 1', async () => {
    const result = await run(['store', 'ls'], {
      cwd: dir.path,
      env: cleanEnv({ HOLDFAST_STORE: 'ftp://nowhere' }),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /HOLDFAST_STORE: must be "local:<dir>" or "s3:\/\/<bucket>".*HOLDFAST_ERR_CONFIG/,
    );
  });

  it('refuses an unknown service for run', async () => {
    const result = await run(['run', 'nope'], { cwd: dir.path });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('unknown service "nope"');
  });
});
