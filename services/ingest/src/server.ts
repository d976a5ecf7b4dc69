import { publishSpoolState } from '@holdfast/producer';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify';
import { queueBoardRoutes } from './admin/queue-board.ts';
import { HTTP_STATUS } from './errors.ts';
import type { IngestDeps } from './ingest-deps.ts';
import { apiRoutes } from './routes/api.ts';
import { healthRoutes } from './routes/health.ts';
import { webhookRoutes } from './routes/webhooks.ts';

/** Fastify's own client errors, renamed into Holdfast's stable codes. */
const FASTIFY_CODES: Readonly<Record<string, string>> = Object.freeze({
  FST_ERR_CTP_BODY_TOO_LARGE: 'HOLDFAST_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'HOLDFAST_ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'HOLDFAST_ERR_MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'HOLDFAST_ERR_MALFORMED_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'HOLDFAST_ERR_MALFORMED_BODY',
});

/**
 * The ingest HTTP server. Every error answers `{ error: { code, message, issues? } }` with a
 * stable code; request logs carry method, route and status but never bodies, query strings
 * (the WhatsApp handshake puts a token there) or headers.
 */
export async function buildServer(deps: IngestDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify's per-request child logger (with redaction) cost ~4% of ingest's CPU and nothing
    // logs through it: handlers log through deps.log with the fields they choose.
    childLoggerFactory: (logger) => logger,
    bodyLimit: deps.config.ingestBodyLimit,
    trustProxy: deps.config.publicBaseUrl !== undefined,
    return503OnClosing: true,
  });

  app.addHook('onResponse', async (req, reply) => {
    deps.log.info(
      {
        method: req.method,
        route: req.routeOptions.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      'request',
    );
  });

  app.setErrorHandler((error: FastifyError & { issues?: unknown }, _req, reply) => {
    const code =
      FASTIFY_CODES[error.code] ??
      (error.code?.startsWith('HOLDFAST_ERR_') ? error.code : undefined) ??
      (error instanceof SyntaxError || error.statusCode === 400
        ? 'HOLDFAST_ERR_MALFORMED_BODY'
        : 'HOLDFAST_ERR_INTERNAL');
    const status = HTTP_STATUS[code] ?? 500;
    // A full backlog is logged by the writer once, not once per refused request (and a spool that
    // cannot write is reported by /readyz and the spool metrics).
    if (status >= 500 && code !== 'HOLDFAST_ERR_NOT_DURABLE' && code !== 'HOLDFAST_ERR_BACKLOG_FULL')
      deps.log.error({ code, err: error.message }, 'request failed');
    if (status === 503) reply.header('retry-after', '5');
    if (status === 401) reply.header('www-authenticate', 'Bearer');
    const message = status === 500 ? 'internal error' : error.message;
    return reply
      .code(status)
      .send({ error: { code, message, ...(error.issues ? { issues: error.issues } : {}) } });
  });

  app.setNotFoundHandler((req, reply) => {
    const route = `${req.method} ${req.url.split('?')[0]}`;
    return reply.code(404).send({ error: { code: 'HOLDFAST_ERR_NOT_FOUND', message: `no route ${route}` } });
  });

  await app.register(async (scope) => healthRoutes(scope, deps));
  await app.register(async (scope) => apiRoutes(scope, deps));
  await app.register(async (scope) => webhookRoutes(scope, deps));
  await app.register(async (scope) => queueBoardRoutes(scope, deps));

  // The spool is this process's file: `holdfast status` sees its backlog through Redis.
  const spoolState = publishSpoolState({
    service: 'ingest',
    writer: deps.writer,
    redis: deps.redis,
    log: deps.log,
  });
  app.addHook('onClose', async () => {
    await spoolState.close();
  });
  return app;
}
