import { join } from 'node:path';
import { sha256Hex } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore } from '@holdfast/worm-store';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.ts';

describe('holdfast hold', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let env: NodeJS.ProcessEnv;
  beforeEach(async () => {
    redis = await startRedis();
    dir = await tempDir('holdfast-hold-cli-');
    env = {
      PATH: process.env.PATH,
      HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
      REDIS_URL: redis.url,
      HOLDFAST_LOG_LEVEL: 'warn',
    };
  });
  afterEach(async () => {
    await redis.stop();
    await dir.remove();
  });

  it('places, lists and releases a matter, recording the actor', async () => {
    const store = await LocalWormStore.open({ dir: join(dir.path, 'store') });
    const body = Buffer.from('{"amount":"5.00"}');
    await store.put({
      key: 'records/financial-transaction/2026/03/01/x.json',
      body,
      sha256: sha256Hex(body),
      contentType: 'application/json',
      retainUntil: new Date(Date.now() + 86_400_000),
    });
    await store.close();

    const placed = await runCli(
      [
        'hold',
        'place',
        '--matter',
        'FINRA-1',
        '--reason',
        'exam',
        '--prefix',
        'records/financial-transaction/',
        '--actor',
        'cco@acme',
        '--json',
      ],
      env,
    );
    expect(placed.stderr).toBe('');
    expect(placed.code).toBe(0);
    expect(JSON.parse(placed.stdout)).toMatchObject({
      matter: { matter: 'FINRA-1', actor: 'cco@acme' },
      manifest: [{ key: 'records/financial-transaction/2026/03/01/x.json', sha256: sha256Hex(body) }],
    });

    const head = await runCli(
      ['store', 'head', 'records/financial-transaction/2026/03/01/x.json', '--json'],
      env,
    );
    expect(JSON.parse(head.stdout).legalHold).toBe(true);
    const list = await runCli(['hold', 'list', '--json'], env);
    expect(JSON.parse(list.stdout).map((m: { matter: string }) => m.matter)).toEqual(['FINRA-1']);

    const released = await runCli(['hold', 'release', '--matter', 'FINRA-1', '--json'], {
      ...env,
      HOLDFAST_ACTOR: 'cco@acme',
    });
    expect(released.code).toBe(0);
    expect(JSON.parse(released.stdout).released).toHaveLength(1);
    expect(
      JSON.parse(
        (await runCli(['store', 'head', 'records/financial-transaction/2026/03/01/x.json', '--json'], env))
          .stdout,
      ).legalHold,
    ).toBe(false);
  });

  it('rebuild brings an open matter back after Redis lost it, and holds what was written meanwhile', async () => {
    const store = await LocalWormStore.open({ dir: join(dir.path, 'store') });
    const put = async (key: string) => {
      const body = Buffer.from(`{"key":"${key}"}`);
      await store.put({
        key,
        body,
        sha256: sha256Hex(body),
        contentType: 'application/json',
        retainUntil: new Date(Date.now() + 86_400_000),
      });
    };
    try {
      await put('records/financial-transaction/2026/03/01/a.json');
      const placed = await runCli(
        [
          'hold',
          'place',
          '--matter',
          'FINRA-2',
          '--reason',
          'exam',
          '--prefix',
          'records/financial-transaction/',
        ],
        { ...env, HOLDFAST_ACTOR: 'cco@acme' },
      );
      expect(placed.code).toBe(0);
      const raw = new Redis(redis.url);
      await raw.flushall();
      raw.disconnect();
      await put('records/financial-transaction/2026/03/02/b.json');
    } finally {
      await store.close();
    }

    const noActor = await runCli(['rebuild'], env);
    expect(noActor.code).toBe(1);
    expect(noActor.stderr).toMatch(/--actor: required/);

    const rebuilt = await runCli(['rebuild', '--actor', 'oncall@acme', '--json'], env);
    expect(rebuilt.stderr).toBe('');
    expect(rebuilt.code).toBe(0);
    const report = JSON.parse(rebuilt.stdout);
    expect(report.matters.open).toMatchObject([
      { matter: 'FINRA-2', held: 2, newlyHeld: [{ key: 'records/financial-transaction/2026/03/02/b.json' }] },
    ]);
    expect(report.subjectIndex).toEqual({ objects: expect.any(Number), triggers: expect.any(Number) });
    expect(report.timelines).toEqual({ events: expect.any(Number) });
    const head = await runCli(
      ['store', 'head', 'records/financial-transaction/2026/03/02/b.json', '--json'],
      env,
    );
    expect(JSON.parse(head.stdout).legalHold).toBe(true);
    const list = await runCli(['hold', 'list', '--json'], env);
    expect(JSON.parse(list.stdout)).toMatchObject([{ matter: 'FINRA-2', actor: 'cco@acme', reason: 'exam' }]);

    const readable = await runCli(['rebuild', '--actor', 'oncall@acme'], env);
    expect(readable.stdout).toMatch(
      /matters: 1 open, 0 released on record\n {2}FINRA-2: 2 version\(s\) held\n/,
    );
  });

  it('refuses without an actor, and names a matter that does not exist', async () => {
    const noActor = await runCli(
      ['hold', 'place', '--matter', 'M', '--reason', 'r', '--prefix', 'records/'],
      env,
    );
    expect(noActor.code).toBe(1);
    expect(noActor.stderr).toMatch(/--actor: required \(or set HOLDFAST_ACTOR\)/);
    const missing = await runCli(['hold', 'release', '--matter', 'nope', '--actor', 'a'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no open matter "nope".*HOLDFAST_ERR_MATTER_NOT_FOUND/);
  });
});
