import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { payloadView, QUEUES } from '@holdfast/core';
import { openQueue } from '@holdfast/producer';
import type { FastifyInstance } from 'fastify';
import type { IngestDeps } from '../ingest-deps.ts';
import { AdminKey } from './admin-key.ts';

/** Where the dashboard answers. */
export const QUEUE_BOARD_PATH = '/admin/queues';

/**
 * Bull Board over every Holdfast queue at `/admin/queues`, only when `HOLDFAST_ADMIN_API_KEY` is
 * set (else the path does not exist: 404) and only for requests that carry that key.
 *
 * Read-only: retrying, removing or promoting jobs from a dashboard would change the pipeline
 * without the operator event every such change must leave in the archive; `holdfast dlq` does
 * those, on the record. A job's payload shows as `holdfast dlq show` prints it (`payloadView`):
 * the event's envelope and the payload's size, never the message bodies or record contents it
 * carries.
 */
export async function queueBoardRoutes(app: FastifyInstance, deps: IngestDeps): Promise<void> {
  const key = deps.config.adminApiKey;
  if (!key) return;
  const adminKey = new AdminKey(key);
  // The ingest's fail-fast connection: while Redis is away the dashboard errors at once.
  const queues = Object.values(QUEUES).map((name) => openQueue(name, deps.redis, deps.log));
  app.addHook('onClose', async () => {
    await Promise.allSettled(queues.map((q) => q.close()));
  });

  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(QUEUE_BOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => {
      const adapter = new BullMQAdapter(q, { readOnlyMode: true, allowRetries: false });
      adapter.setFormatter('data', payloadView);
      return adapter;
    }),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Holdfast' } },
  });

  // Every route of the board, its static files included, sits behind the key.
  app.addHook('onRequest', async (req, reply) => {
    if (adminKey.accepts(req.headers.authorization)) return;
    return reply
      .code(401)
      .header('www-authenticate', 'Basic realm="holdfast"')
      .send({
        error: {
          code: 'HOLDFAST_ERR_UNAUTHORIZED',
          message: 'the admin key is required: Authorization: Bearer <HOLDFAST_ADMIN_API_KEY>, or Basic',
        },
      });
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
}
