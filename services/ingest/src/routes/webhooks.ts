import formbody from '@fastify/formbody';
import { keySegment, ValidationError } from '@holdfast/core';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { acceptProviderEvents } from '../accept-provider-events.ts';
import { MalformedBodyError, ProviderNotConfiguredError, UnsupportedMediaTypeError } from '../errors.ts';
import type { IngestDeps } from '../ingest-deps.ts';
import {
  isSubscriptionConfirmation,
  parseSesNotification,
  parseTwilioInbound,
  parseTwilioStatus,
  parseWhatsAppNotification,
  verifySnsMessage,
  verifyTwilioSignature,
  verifyWhatsAppHandshake,
  verifyWhatsAppSignature,
} from '../providers/index.ts';

type ProjectParams = { Params: { project: string } };

/**
 * Provider webhooks. The order is the product: verify the signature -> parse -> append to the
 * spool (fsync) -> answer 200. A failed verification writes nothing; a spool that cannot write
 * answers 503 so the provider retries; nothing unverified or undurable ever gets a 200.
 */
export async function webhookRoutes(app: FastifyInstance, deps: IngestDeps): Promise<void> {
  // Signatures are over the exact bytes received, so JSON and SNS bodies stay raw until verified.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );
  await app.register(formbody);

  const projectOf = (req: FastifyRequest<ProjectParams>): string => {
    const parsed = keySegment.safeParse(req.params.project);
    if (!parsed.success)
      throw new ValidationError('webhook path', [
        { path: 'project', message: parsed.error.issues[0]!.message },
      ]);
    return parsed.data;
  };
  const publicUrl = (req: FastifyRequest): string => {
    const url = `${deps.config.publicBaseUrl?.replace(/\/$/, '') ?? `${req.protocol}://${req.headers.host}`}${req.url}`;
    // Without a configured base URL the Host header is the client's: one that makes no URL is a
    // bad request, not a server fault.
    if (!URL.canParse(url)) {
      throw new ValidationError('webhook request', [
        { path: 'Host', message: 'does not form a URL; set HOLDFAST_PUBLIC_BASE_URL behind a proxy' },
      ]);
    }
    return url;
  };

  for (const kind of ['inbound', 'status'] as const) {
    app.post<ProjectParams>(`/webhooks/twilio/:project/${kind}`, async (req, reply) => {
      const project = projectOf(req);
      const authToken = deps.config.twilioAuthToken;
      if (!authToken) throw new ProviderNotConfiguredError('HOLDFAST_TWILIO_AUTH_TOKEN');
      const params = formParams(req.body);
      verifyTwilioSignature({
        authToken,
        signature: header(req, 'x-twilio-signature'),
        url: publicUrl(req),
        params,
      });
      const receivedAt = new Date();
      const events =
        kind === 'inbound' ? parseTwilioInbound(params, receivedAt) : parseTwilioStatus(params, receivedAt);
      await acceptProviderEvents(deps.writer, project, events);
      // An empty TwiML response: acknowledged, and no auto-reply.
      return reply
        .code(200)
        .type('text/xml')
        .send('<?xml version="1.0" encoding="UTF-8"?><Response></Response>');
    });
  }

  app.get<ProjectParams>('/webhooks/whatsapp/:project', async (req, reply) => {
    projectOf(req);
    const expectedToken = deps.config.whatsappVerifyToken;
    if (!expectedToken) throw new ProviderNotConfiguredError('HOLDFAST_WHATSAPP_VERIFY_TOKEN');
    const q = req.query as Record<string, string | undefined>;
    const challenge = verifyWhatsAppHandshake({
      mode: q['hub.mode'],
      verifyToken: q['hub.verify_token'],
      challenge: q['hub.challenge'],
      expectedToken,
    });
    return reply.code(200).type('text/plain').send(challenge);
  });

  app.post<ProjectParams>('/webhooks/whatsapp/:project', async (req, reply) => {
    const project = projectOf(req);
    const appSecret = deps.config.whatsappAppSecret;
    if (!appSecret) throw new ProviderNotConfiguredError('HOLDFAST_WHATSAPP_APP_SECRET');
    const rawBody = rawBodyOf(req);
    verifyWhatsAppSignature({ appSecret, signatureHeader: header(req, 'x-hub-signature-256'), rawBody });
    const events = parseWhatsAppNotification(parseJson(rawBody));
    await acceptProviderEvents(deps.writer, project, events);
    return reply.code(200).send({ status: 'accepted', events: events.length });
  });

  app.post<ProjectParams>('/webhooks/ses/:project', async (req, reply) => {
    const project = projectOf(req);
    // Any AWS account can sign messages for its own topic, so a valid signature proves nothing
    // without the allowlist: no topics configured, nothing is confirmed or accepted.
    const allowedTopicArns = deps.config.snsTopicArns?.filter((arn) => arn !== '');
    if (!allowedTopicArns?.length) throw new ProviderNotConfiguredError('HOLDFAST_SNS_TOPIC_ARNS');
    const message = parseJson(rawBodyOf(req));
    await verifySnsMessage(message, { certificates: deps.snsCertificates, allowedTopicArns });
    if (isSubscriptionConfirmation(message)) {
      // The handshake is archived like everything else, then confirmed.
      const m = message as { MessageId: string; Timestamp: string };
      await acceptProviderEvents(deps.writer, project, [
        {
          provider: 'ses',
          channel: 'email',
          direction: 'inbound',
          type: 'provider.sns-subscription-confirmation',
          occurredAt: new Date(m.Timestamp),
          providerEventId: `sns-subscription:${m.MessageId}`,
          data: { raw: message },
          media: [],
        },
      ]);
      await deps.confirmSnsSubscription((message as { SubscribeURL: string }).SubscribeURL);
      deps.log.info(
        { project, topicArn: (message as { TopicArn?: string }).TopicArn },
        'SNS subscription confirmed',
      );
      return reply.code(200).send({ status: 'subscribed' });
    }
    const events = parseSesNotification(message);
    await acceptProviderEvents(deps.writer, project, events);
    return reply.code(200).send({ status: 'accepted', events: events.length });
  });
}

function header(req: FastifyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function rawBodyOf(req: FastifyRequest): Buffer {
  if (!Buffer.isBuffer(req.body)) {
    throw new UnsupportedMediaTypeError('send the provider payload as application/json (SNS: text/plain)');
  }
  return req.body;
}

function formParams(body: unknown): Record<string, string | string[]> {
  if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) {
    throw new UnsupportedMediaTypeError('send the Twilio payload as application/x-www-form-urlencoded');
  }
  // Repeated keys stay lists: Twilio signs every value.
  return Object.fromEntries(
    Object.entries(body as Record<string, unknown>).map(([k, v]) => [
      k,
      Array.isArray(v) ? v.map(String) : String(v),
    ]),
  );
}

function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new MalformedBodyError(`the body is not valid JSON: ${(error as Error).message}`, error);
  }
}
