import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '@holdfast/core';
import type { Queue } from 'bullmq';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { mergePrometheusText } from './prometheus-text.ts';

export interface OpsServerOptions {
  /** `HOLDFAST_METRICS_PORT`; 0 picks a free port. */
  port: number;
  /** @defaultValue '0.0.0.0' */
  host?: string;
  /** Queues whose job counts are exported as `bullmq_job_count{queue,state}` (what KEDA scales on). */
  queues: readonly Queue[];
  /** Named readiness checks: each resolves 'ok' or a reason. */
  checks: Record<string, () => Promise<string>>;
  /** This service's registry (see `holdfastMetrics`); process metrics are added to it. @defaultValue a new one */
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
  collectProcessMetrics(registry);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET') return answer(405, 'text/plain', 'method not allowed\n');
    if (path === '/healthz') return answer(200, 'application/json', '{"status":"ok"}\n');
    if (path === '/readyz') {
      void readiness(options.checks).then((report) =>
        answer(report.status === 'ready' ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      void renderMetrics(registry, options.queues).then(
        (text) => answer(200, registry.contentType, text),
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

/** Node's process metrics (memory, CPU, event loop lag), once per registry. */
export function collectProcessMetrics(registry: Registry): void {
  if (!registry.getSingleMetric('process_cpu_user_seconds_total'))
    collectDefaultMetrics({ register: registry });
}

/**
 * `/metrics` text: the registry's metrics and each queue's job counts from BullMQ
 * (`bullmq_job_count{queue,state}`, what KEDA scales on), as one valid exposition. A queue whose
 * counts cannot be read right now (Redis away) is left out rather than failing the scrape.
 */
export async function renderMetrics(registry: Registry, queues: readonly Queue[] = []): Promise<string> {
  const parts = await Promise.all([
    registry.metrics(),
    ...queues.map((q) => q.exportPrometheusMetrics().catch(() => '')),
  ]);
  return mergePrometheusText(parts);
}

/**
 * Runs named readiness checks side by side, each given a second (a check that throws answers its
 * error's message): ready when every one answered 'ok'. What `/readyz` answers, here and on
 * ingest's public port.
 */
export async function readiness(
  checks: Record<string, () => Promise<string>>,
): Promise<{ status: 'ready' | 'not-ready'; checks: Record<string, string> }> {
  const results = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [name, await withTimeout(check(), 1000)] as const),
  );
  return {
    status: results.every(([, v]) => v === 'ok') ? 'ready' : 'not-ready',
    checks: Object.fromEntries(results),
  };
}

function withTimeout(check: Promise<string>, ms: number): Promise<string> {
  return Promise.race([
    check.catch((error: Error) => error.message),
    new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), ms).unref()),
  ]);
}
