// SIGTERM in the middle of work: each service stops taking jobs, finishes or hands back what it
// holds, flushes its spool and exits 0 (runService exits 1 if the deadline passes first); once the
// fleet is back, every accepted message is archived and sent exactly once.
import { join } from 'node:path';
import { createLogger, QUEUE_PREFIX, QUEUES, SEND_QUEUES } from '@holdfast/core';
import { EventWriter } from '@holdfast/producer';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { readChannelOutbox } from '../support/channel-outbox.ts';
import { startFleet, type TestFleet } from '../support/fleet.ts';
import { readOutbox } from '../support/outbox.ts';
import { freePort, ServiceProcess } from '../support/service-process.ts';
import { waitFor } from '../support/wait-for.ts';

describe('graceful shutdown under load', () => {
  let fleet: TestFleet | undefined;
  const processes: ServiceProcess[] = [];
  afterEach(async () => {
    for (const p of processes.splice(0)) await p.kill();
    await fleet?.close();
    fleet = undefined;
  });

  it('SIGTERM mid-stream: archiver and sender exit 0 within the deadline, and nothing is lost or sent twice', async () => {
    fleet = await startFleet();
    const f = fleet;
    const services = await Promise.all(
      (['archiver', 'sender'] as const).map(async (service) => {
        const port = await freePort();
        const p = new ServiceProcess(service, {
          REDIS_URL: f.redis.url,
          HOLDFAST_STORE: f.config.store,
          HOLDFAST_SPOOL_DIR: join(f.dir, `${service}-process`),
          HOLDFAST_METRICS_PORT: String(port),
          HOLDFAST_EMAIL_TRANSPORT: `outbox:${f.outboxDirs.email}`,
          HOLDFAST_SMS_TRANSPORT: `outbox:${f.outboxDirs.sms}`,
          HOLDFAST_SHUTDOWN_DEADLINE_MS: '15000',
        });
        processes.push(p);
        return { p, ready: `http://127.0.0.1:${port}/readyz` };
      }),
    );
    await Promise.all(services.map(({ p, ready }) => p.start(ready)));
    const producer = await f.producer({ redeliverAfterMs: 1000, drainIntervalMs: 500 });

    const ids = { email: [] as string[], sms: [] as string[] };
    const submitting = (async () => {
      for (let i = 0; i < 400; i++) {
        if (i % 2 === 0) {
          ids.email.push(
            (
              await producer.sendEmail({
                from: 'ops@acme.example',
                to: `c${i}@x.example`,
                subject: `m${i}`,
                text: 't',
              })
            ).id,
          );
        } else {
          ids.sms.push(
            (await producer.sendSms({ from: '+14155550100', to: '+447700900123', body: `code ${i}` })).id,
          );
        }
      }
    })();
    // Stop both while work is in flight: some jobs active, many waiting.
    await waitFor('work in flight', async () => (await readOutbox(f.outboxDir)).length >= 20);
    const exits = await Promise.all(services.map(({ p }) => p.stop()));
    expect(exits, 'exit codes (1 means the shutdown deadline passed)').toEqual([0, 0]);
    await submitting;

    // Whatever they held was handed back: a new fleet finishes it.
    await Promise.all(services.map(({ p, ready }) => p.start(ready)));
    await waitFor(
      'every message sent',
      async () =>
        (await readOutbox(f.outboxDir)).length >= ids.email.length &&
        (await readChannelOutbox(f.outboxDirs.sms, '.sms.json')).length >= ids.sms.length,
      60_000,
    );
    await waitFor('producer spool drained', () => producer.stats().backlog === 0, 30_000);
    const queues = [QUEUES.archive, ...Object.values(SEND_QUEUES)].map(
      (name) => new Queue(name, { connection: { url: f.redis.url }, prefix: QUEUE_PREFIX }),
    );
    try {
      await waitFor('queues idle', async () => {
        for (const q of queues) {
          const c = await q.getJobCounts('waiting', 'active', 'delayed', 'waiting-children', 'failed');
          if (Object.values(c).some((n) => n > 0)) return false;
        }
        return true;
      });
    } finally {
      for (const q of queues) await q.close();
    }
    const emails = await readOutbox(f.outboxDir);
    const sms = await readChannelOutbox(f.outboxDirs.sms, '.sms.json');
    expect(emails.map((e) => e.eventId).sort()).toEqual([...ids.email].sort());
    expect(sms.map((e) => e.eventId).sort()).toEqual([...ids.sms].sort());
    let archived = 0;
    for await (const o of f.store.list(''))
      if (o.key.endsWith('.eml') || o.key.startsWith('sms/')) archived++;
    // Every email blob, and every SMS event (submitted + attempted + sent) archived once.
    expect(archived).toBe(ids.email.length + 3 * ids.sms.length);

    // And the sender's own spool (its outcome events) is empty once it stopped cleanly and the
    // archiver took what it handed over.
    const [archiver, sender] = services;
    expect(await sender!.p.stop()).toBe(0);
    const archive = new Queue(QUEUES.archive, { connection: { url: f.redis.url }, prefix: QUEUE_PREFIX });
    try {
      await waitFor('archive queue idle', async () => {
        const c = await archive.getJobCounts('waiting', 'active', 'delayed');
        return Object.values(c).every((n) => n === 0);
      });
    } finally {
      await archive.close();
    }
    expect(await archiver!.p.stop()).toBe(0);
    for (const service of ['sender']) {
      const writer = await EventWriter.open({
        spoolDir: join(f.dir, `${service}-process`, service),
        redisUrl: f.redis.url,
        logger: createLogger({ name: 'test', level: 'silent' }),
      });
      try {
        // A drain pass before the connection is up does nothing: poll until one has run.
        await waitFor(`${service} spool acknowledged`, async () => {
          await writer.drain(0);
          return writer.stats().backlog === 0;
        });
      } finally {
        await writer.close();
      }
    }
  });
  it('SIGTERM while Redis is down: every service still exits 0 within the deadline', async () => {
    fleet = await startFleet();
    const f = fleet;
    const services = await Promise.all(
      (['archiver', 'sender', 'media-fetcher', 'ingest'] as const).map(async (service) => {
        const port = await freePort();
        const p = new ServiceProcess(service, {
          REDIS_URL: f.redis.url,
          HOLDFAST_STORE: f.config.store,
          HOLDFAST_SPOOL_DIR: join(f.dir, `${service}-process`),
          ...(service === 'ingest' ? { PORT: String(port) } : { HOLDFAST_METRICS_PORT: String(port) }),
          HOLDFAST_EMAIL_TRANSPORT: `outbox:${f.outboxDirs.email}`,
          HOLDFAST_SMS_TRANSPORT: `outbox:${f.outboxDirs.sms}`,
          HOLDFAST_SHUTDOWN_DEADLINE_MS: '25000',
        });
        processes.push(p);
        return { p, ready: `http://127.0.0.1:${port}/readyz` };
      }),
    );
    await Promise.all(services.map(({ p, ready }) => p.start(ready)));
    // Their connections are reconnecting when the signal comes: BullMQ's own close would wait
    // for them for good, and so did the ack stream's read.
    await f.redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const exits = await Promise.all(services.map(({ p }) => p.stop()));
    expect(exits, 'exit codes (1 means the shutdown deadline passed)').toEqual([0, 0, 0, 0]);
    await f.redis.restart();
  });
});
