import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@holdfast/core';
import type { Queue } from 'bullmq';
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface OpsServerOptions {
  /** `HOLDFAST_METRICS_PORT`; 0 picks a free port. */
  port: number;
  /** @defaultValue '0.0.0.0' */
  host?: string;
  /** Queues whose job counts are exported as `bullmq_job_count{queue,state}` (what KEDA scales on). */
  queues: readonly Queue[];
  /** Named readiness checks: each resolves 'ok' or a reason. */
  checks: Record<string, () => Promise<string>>;
  /** Extra metrics of this service. */
  registry?: Registry;
  log: Logger;
}

export interface OpsServer {
  readonly url: string;
  readonly registry: Registry;
  close(): Promise<void>;
}

/**
 * A worker's operations endpoint: `/healthz` (the process answers), `/readyz` (its
 * dependencies answer) and `/metrics` (Prometheus text: queue depths from BullMQ, process
 * metrics, and the service's own). Kubernetes probes and KEDA read these.
 */
export async function startOpsServer(options: OpsServerOptions): Promise<OpsServer> {
  const registry = options.registry ?? new Registry();
  collectDefaultMetrics({ register: registry });
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET') return answer(405, 'text/plain', 'method not allowed\n');
    if (path === '/healthz') return answer(200, 'application/json', '{"status":"ok"}\n');
    if (path === '/readyz') {
      void Promise.all(
        Object.entries(options.checks).map(
          async ([name, check]) => [name, await withTimeout(check(), 1000)] as const,
        ),
      ).then((results) => {
        const checks = Object.fromEntries(results);
        const ready = results.every(([, v]) => v === 'ok');
        answer(
          ready ? 200 : 503,
          'application/json',
          `${JSON.stringify({ status: ready ? 'ready' : 'not-ready', checks })}\n`,
        );
      });
      return;
    }
    if (path === '/metrics') {
      void Promise.all([
        registry.metrics(),
        ...options.queues.map((q) => q.exportPrometheusMetrics().catch(() => '')),
      ]).then(
        (parts) => answer(200, registry.contentType, `${parts.filter(Boolean).join('\n')}\n`),
        (error: Error) => answer(500, 'text/plain', `${error.message}\n`),
      );
      return;
    }
    answer(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', resolve);
  });
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address}:${port}`;
  options.log.info({ url }, 'ops endpoint (/healthz, /readyz, /metrics) listening');
  return {
    url,
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function withTimeout(check: Promise<string>, ms: number): Promise<string> {
  return Promise.race([
    check.catch((error: Error) => error.message),
    new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), ms).unref()),
  ]);
}
