import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real HTTP server on loopback standing in for SNS endpoints, and a fetch that sends requests
 * for `https://sns.<region>.amazonaws.com[.cn]/…` there. The code under test keeps its own URL
 * checks (they run before fetch is called); only the transport is redirected.
 */
export interface LoopbackSns {
  /** Every request received, as `METHOD /path?query`. */
  readonly requests: string[];
  /** fetch that reaches this server for SNS URLs and refuses anything else. */
  readonly fetch: typeof fetch;
  /** Replace how requests are answered. */
  handle(handler: (req: IncomingMessage, res: ServerResponse) => void): void;
  close(): Promise<void>;
}

export async function startLoopbackSns(): Promise<LoopbackSns> {
  const requests: string[] = [];
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(404).end();
  };
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const viaLoopback: typeof fetch = (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const match = /^https:\/\/sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?(\/.*)$/.exec(url);
    if (!match) return Promise.reject(new TypeError(`loopback SNS refuses ${url}`));
    return fetch(`${base}${match[2]}`, init);
  };
  return {
    requests,
    fetch: viaLoopback,
    handle(next) {
      handler = next;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
