import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { waitFor } from '../support/wait-for.ts';

describe('worker operations endpoints', () => {
  let fleet: TestFleet;
  beforeEach(async () => {
    fleet = await startFleet();
  });
  afterEach(async () => {
    await fleet.close();
  });

  it('export queue depths as bullmq_job_count for autoscaling, and answer health and readiness', async () => {
    const sender = await fleet.startSender();
    const producer = await fleet.producer();
    // The archive queue is paused: the archive job waits, and the send waits on it.
    await fleet.queue('archive').pause();
    await producer.sendEmail({ from: 'a@acme.example', to: 'b@x.example', subject: 's', text: 't' });
    const archiver = await fleet.startArchiver();

    const metrics = await waitFor('metrics with a waiting archive job', async () => {
      const text = await (await fetch(`${archiver.opsUrl}/metrics`)).text();
      return /bullmq_job_count\{queue="archive",\s*state="waiting"\} 1/.test(text) ? text : undefined;
    });
    expect(metrics).toMatch(/process_resident_memory_bytes \d+/);
    const senderMetrics = await (await fetch(`${sender.opsUrl}/metrics`)).text();
    expect(senderMetrics).toMatch(/bullmq_job_count\{queue="send-email",\s*state="waiting-children"\} 1/);

    expect((await fetch(`${archiver.opsUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${sender.opsUrl}/readyz`)).json()).toEqual({
      status: 'ready',
      checks: { redis: 'ok', spool: 'ok' },
    });
    await fleet.queue('archive').resume();
  });
});
