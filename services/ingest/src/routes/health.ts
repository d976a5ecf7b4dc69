import { type HoldfastMetrics, renderMetrics } from '@holdfast/producer';
import type { FastifyInstance } from 'fastify';
import type { IngestDeps } from '../ingest-deps.ts';

/**
 * `/healthz`: the process answers. `/readyz`: it can accept work (spool writable, Redis
 * reachable). `/metrics`: Prometheus text of the service's metrics (process and spool).
 */
export async function healthRoutes(
  app: FastifyInstance,
  deps: IngestDeps,
  { registry }: HoldfastMetrics,
): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/metrics', async (_req, reply) =>
    reply.type(registry.contentType).send(await renderMetrics(registry)),
  );

  app.get('/readyz', async (_req, reply) => {
    const spool = deps.writer.stats().spool;
    const redis = await Promise.race([
      deps.redis.ping().then(
        () => 'ok',
        (error: Error) => error.message,
      ),
      new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), 1000).unref()),
    ]);
    const checks = {
      spool: spool.failed ? 'failed: a write or fsync failed; restart to reopen' : 'ok',
      redis,
    };
    const ready = checks.spool === 'ok' && checks.redis === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', checks });
  });
}
