import { readiness } from '@holdfast/producer';
import type { FastifyInstance } from 'fastify';
import type { IngestDeps } from '../ingest-deps.ts';

/**
 * What ingest needs to accept work, each answering 'ok' or why not: its spool can write, Redis
 * answers. `/readyz` here and on the ops port both run these.
 */
export function readinessChecks(
  deps: Pick<IngestDeps, 'writer' | 'redis'>,
): Record<string, () => Promise<string>> {
  return {
    spool: async () =>
      deps.writer.stats().spool.failed ? 'failed: a write or fsync failed; restart to reopen' : 'ok',
    redis: () =>
      deps.redis.ping().then(
        () => 'ok',
        (error: Error) => error.message,
      ),
  };
}

/**
 * `/healthz`: the process answers. `/readyz`: it can accept work. The load balancer probes these
 * on the public port; `/metrics` is not here but on the ops port (`HOLDFAST_METRICS_PORT`), as on
 * every worker, so what the process says about itself is not served to the internet.
 */
export async function healthRoutes(app: FastifyInstance, deps: IngestDeps): Promise<void> {
  const checks = readinessChecks(deps);
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const report = await readiness(checks);
    return reply.code(report.status === 'ready' ? 200 : 503).send(report);
  });
}
