import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { signWhatsAppBody, TEST_WHATSAPP_APP_SECRET } from '../../services/ingest/test/providers/signers.ts';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { whatsappText } from '../support/provider-payloads.ts';
import { waitFor } from '../support/wait-for.ts';

const MAIN = resolve(import.meta.dirname, '../../services/ingest/src/main.ts');

function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/**
 * The ingest service as its own process. `fileSizeLimitBlocks` (ulimit -f, 512-byte blocks) makes
 * the kernel refuse spool writes past that size: a real disk-full style failure, not a mock.
 */
async function startIngestProcess(
  fleet: TestFleet,
  port: number,
  fileSizeLimitBlocks?: number,
): Promise<ChildProcess> {
  const command = `${fileSizeLimitBlocks ? `ulimit -f ${fileSizeLimitBlocks}; ` : ''}exec "${process.execPath}" "${MAIN}"`;
  const child = spawn('sh', ['-c', command], {
    env: {
      PATH: process.env.PATH,
      REDIS_URL: fleet.redis.url,
      HOLDFAST_SPOOL_DIR: join(fleet.dir, 'ingest-process-spool'),
      HOLDFAST_WHATSAPP_APP_SECRET: TEST_WHATSAPP_APP_SECRET,
      HOLDFAST_LOG_LEVEL: 'warn',
      PORT: String(port),
      HOLDFAST_METRICS_PORT: '0',
    },
    stdio: 'ignore',
  });
  await waitFor(
    'ingest process listening',
    async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200,
  );
  return child;
}

describe('ingest when the spool cannot write', () => {
  let fleet: TestFleet;
  let child: ChildProcess | undefined;
  beforeEach(async () => {
    fleet = await startFleet();
    await fleet.startArchiver();
  });
  afterEach(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await fleet.close();
  });

  it('answers 503 (never 200) once the spool fails, and archives every request that got 200 after recovery', async () => {
    const port = await freePort();
    child = await startIngestProcess(fleet, port, 200); // 100 KiB of spool
    const statuses: { wamid: string; status: number }[] = [];
    for (let i = 0; i < 200; i++) {
      const wamid = `wamid.FAULT${String(i).padStart(4, '0')}`;
      const body = JSON.stringify(
        whatsappText(wamid, `message ${i}`, new Date(Date.UTC(2026, 10, 21, 12, 0, i % 60))),
      );
      const res = await fetch(`http://127.0.0.1:${port}/webhooks/whatsapp/acme`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': signWhatsAppBody(body) },
        body,
      });
      statuses.push({ wamid, status: res.status });
      if (res.status === 503)
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
          'HOLDFAST_ERR_NOT_DURABLE',
        );
    }
    const firstFailure = statuses.findIndex((s) => s.status !== 200);
    expect(firstFailure).toBeGreaterThan(10);
    const after = statuses.slice(firstFailure);
    expect(after.every((s) => s.status === 503)).toBe(true);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(503);

    // Recovery: the process is replaced (as an orchestrator would after readiness fails) with room to write.
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    child = await startIngestProcess(fleet, port);

    const accepted = statuses.filter((s) => s.status === 200).map((s) => s.wamid);
    await waitFor(
      'every acknowledged webhook archived',
      async () => {
        const archived = new Set<string>();
        for await (const o of fleet.store.list('whatsapp/acme/inbound/'))
          archived.add(o.key.slice(o.key.lastIndexOf('_') + 1, -'.json'.length));
        return accepted.every((w) => archived.has(w));
      },
      60_000,
    );
    console.log(
      `spool fault: ${accepted.length} acknowledged with 200, ${after.length} refused with 503, all ${accepted.length} archived after recovery`,
    );
  });
});
