import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SesSentEmail {
  messageId: string;
  from: string;
  destination: string[];
  raw: Buffer;
  configurationSet: string | undefined;
  tags: { Name: string; Value: string }[];
  headers: IncomingMessage['headers'];
}

export interface SesFailure {
  status: number;
  /** The exception name SES puts in `x-amzn-ErrorType`, e.g. `MessageRejected`, `TooManyRequestsException`. */
  type: string;
  message: string;
}

export interface TestSesServer {
  endpoint: string;
  sent: SesSentEmail[];
  /** Answer the next `times` SendEmail calls with this error. */
  failNext(failure: SesFailure, times?: number): void;
  close(): Promise<void>;
}

/**
 * The SES v2 SendEmail operation (`POST /v2/email/outbound-emails`, restJson1) on loopback,
 * answering as SES documents: `{ "MessageId": … }` on success, errors with `x-amzn-ErrorType`.
 * Signatures are not checked, but a SigV4 Authorization header is required.
 */
export async function startSesServer(): Promise<TestSesServer> {
  const sent: SesSentEmail[] = [];
  const failures: SesFailure[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const reply = (status: number, body: object, type?: string) => {
      res.writeHead(status, {
        'content-type': 'application/json',
        ...(type ? { 'x-amzn-ErrorType': type } : {}),
      });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/v2/email/outbound-emails') {
      return reply(404, { message: `no route ${req.method} ${req.url}` }, 'NotFoundException');
    }
    if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) {
      return reply(403, { message: 'Missing Authentication Token' }, 'MissingAuthenticationTokenException');
    }
    const failure = failures.shift();
    if (failure) return reply(failure.status, { message: failure.message }, failure.type);
    let body: {
      FromEmailAddress?: string;
      Destination?: { ToAddresses?: string[]; CcAddresses?: string[]; BccAddresses?: string[] };
      Content?: { Raw?: { Data?: string } };
      ConfigurationSetName?: string;
      EmailTags?: { Name: string; Value: string }[];
    };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(400, { message: 'Request body is not valid JSON' }, 'BadRequestException');
    }
    const data = body.Content?.Raw?.Data;
    if (!data)
      return reply(400, { message: 'Content.Raw.Data is required for a raw message' }, 'BadRequestException');
    const destination = [
      ...(body.Destination?.ToAddresses ?? []),
      ...(body.Destination?.CcAddresses ?? []),
      ...(body.Destination?.BccAddresses ?? []),
    ];
    if (destination.length > 50)
      return reply(400, { message: 'Recipient count exceeds 50.' }, 'MessageRejected');
    const messageId = `0100${randomUUID().replaceAll('-', '')}-000000`;
    sent.push({
      messageId,
      from: body.FromEmailAddress ?? '',
      destination,
      raw: Buffer.from(data, 'base64'),
      configurationSet: body.ConfigurationSetName,
      tags: body.EmailTags ?? [],
      headers: req.headers,
    });
    reply(200, { MessageId: messageId });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    sent,
    failNext(failure, times = 1) {
      for (let i = 0; i < times; i++) failures.push(failure);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
