import { request } from 'node:http';

/**
 * Whether a Docker engine answers (`DOCKER_HOST=unix://…` or `tcp://…`, else the default socket).
 * Tests then prefer containers (testcontainers); without one they use the local binaries.
 * `HOLDFAST_TEST_CONTAINERS=0` forces the local path even where an engine exists.
 */
export async function dockerEngineReachable(): Promise<boolean> {
  if (process.env.HOLDFAST_TEST_CONTAINERS === '0') return false;
  const host = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
  const target = host.startsWith('unix://')
    ? { socketPath: host.slice('unix://'.length) }
    : (() => {
        const url = new URL(host.replace(/^tcp:/, 'http:'));
        return { host: url.hostname, port: Number(url.port || 2375) };
      })();
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/_ping', method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}
