import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerEngineReachable } from '../src/docker.ts';

describe('dockerEngineReachable', () => {
  const saved = {
    DOCKER_HOST: process.env.DOCKER_HOST,
    HOLDFAST_TEST_CONTAINERS: process.env.HOLDFAST_TEST_CONTAINERS,
  };
  afterEach(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('answers true for an engine that answers /_ping, false for nothing listening, false when told not to', async () => {
    const engine = createServer((req, res) => {
      res.writeHead(req.url === '/_ping' ? 200 : 404);
      res.end('OK');
    });
    await new Promise<void>((r) => engine.listen(0, '127.0.0.1', r));
    const { port } = engine.address() as AddressInfo;
    try {
      process.env.DOCKER_HOST = `tcp://127.0.0.1:${port}`;
      expect(await dockerEngineReachable()).toBe(true);
      process.env.HOLDFAST_TEST_CONTAINERS = '0';
      expect(await dockerEngineReachable()).toBe(false);
    } finally {
      await new Promise((r) => engine.close(r));
    }
    delete process.env.HOLDFAST_TEST_CONTAINERS;
    process.env.DOCKER_HOST = `tcp://127.0.0.1:${port}`;
    expect(await dockerEngineReachable()).toBe(false);
    process.env.DOCKER_HOST = 'unix:///nonexistent/docker.sock';
    expect(await dockerEngineReachable()).toBe(false);
  });
});
