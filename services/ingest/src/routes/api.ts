import { readMessage } from '@holdfast/archiver';
import { ValidationError } from '@holdfast/core';
import type { Accepted, EmailInput, RecordInput, SmsInput, WhatsAppInput } from '@holdfast/producer';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DependencyUnavailableError, UnsupportedMediaTypeError } from '../errors.ts';
import { type IdempotentRequest, withIdempotency } from '../idempotency.ts';
import type { IngestDeps } from '../ingest-deps.ts';

/** The authenticated ingest API, for services that do not use the Node SDK: the SDK's semantics over HTTP. */
export async function apiRoutes(app: FastifyInstance, deps: IngestDeps): Promise<void> {
  // Binary documents (a contract PDF) arrive with their own content type and are kept as bytes.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const project = (req: FastifyRequest) => deps.apiKeys.authenticate(req.headers.authorization);
  const idempotencyKey = (req: FastifyRequest) => {
    const value = req.headers['idempotency-key'];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.length < 1 || value.length > 255) {
      throw new ValidationError('request', [
        { path: 'Idempotency-Key', message: 'must be 1-255 characters' },
      ]);
    }
    return value;
  };
  const idempotentRequest = (req: FastifyRequest): IdempotentRequest => {
    const q = req.url.indexOf('?');
    return {
      method: req.method,
      route: req.routeOptions.url ?? req.url,
      contentType: req.headers['content-type'],
      query: q === -1 ? '' : req.url.slice(q + 1),
      body: req.body,
    };
  };
  const requireJson = (req: FastifyRequest): unknown => {
    if (Buffer.isBuffer(req.body))
      throw unsupportedMediaType(req.headers['content-type'], 'application/json');
    return req.body;
  };

  const messageRoutes: Record<string, (owner: string, body: unknown) => Promise<Accepted>> = {
    email: (owner, body) => deps.submitter.sendEmail(owner, body as EmailInput),
    sms: (owner, body) => deps.submitter.sendSms(owner, body as SmsInput),
    whatsapp: (owner, body) => deps.submitter.sendWhatsApp(owner, body as WhatsAppInput),
  };
  /** Submits once per Idempotency-Key and request, answering 202 (or the first answer, replayed). */
  const accept = async (
    req: FastifyRequest,
    reply: FastifyReply,
    owner: string,
    submit: () => Promise<Accepted>,
  ) => {
    const result = await withIdempotency(
      deps.redis,
      owner,
      idempotencyKey(req),
      idempotentRequest(req),
      async () => ({
        status: 202,
        body: await submit(),
      }),
    );
    return reply.code(result.status).header('idempotent-replayed', String(result.replayed)).send(result.body);
  };
  for (const [channel, submit] of Object.entries(messageRoutes)) {
    app.post(`/v1/messages/${channel}`, async (req, reply) => {
      const owner = project(req);
      const body = requireJson(req);
      return accept(req, reply, owner, () => submit(owner, body));
    });
  }

  app.post('/v1/records', async (req, reply) => {
    const owner = project(req);
    const input = recordInput(req);
    return accept(req, reply, owner, () => deps.submitter.record(owner, input));
  });

  app.get<{ Params: { id: string } }>('/v1/messages/:id', async (req, reply) => {
    const owner = project(req);
    const view = await readMessage(deps.redis, req.params.id).catch((error: unknown) => {
      throw new DependencyUnavailableError('the message read model (Redis)', error);
    });
    // Another project's message is as invisible as one that does not exist.
    if (!view || view.project !== owner) {
      return reply
        .code(404)
        .send({ error: { code: 'HOLDFAST_ERR_NOT_FOUND', message: `no message ${req.params.id}` } });
    }
    return view;
  });
}

/**
 * A JSON body is the record itself; any other content type is a document, described by the query
 * string (`category`, `type`, `subject`, optional `occurredAt`, `filename`).
 */
function recordInput(req: FastifyRequest): RecordInput {
  if (!Buffer.isBuffer(req.body)) return req.body as RecordInput;
  const q = req.query as Record<string, string | undefined>;
  const contentType = String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim();
  if (req.body.byteLength === 0)
    throw new ValidationError('record', [{ path: 'body', message: 'the document is empty' }]);
  return {
    category: q.category as string,
    type: q.type as string,
    subject: q.subject as string,
    ...(q.occurredAt ? { occurredAt: q.occurredAt } : {}),
    document: {
      content: req.body as Uint8Array<ArrayBuffer>,
      contentType,
      ...(q.filename ? { filename: q.filename } : {}),
    },
  };
}

function unsupportedMediaType(got: string | undefined, want: string): UnsupportedMediaTypeError {
  return new UnsupportedMediaTypeError(
    `unsupported content type ${JSON.stringify(got ?? null)}: send ${want}`,
  );
}
