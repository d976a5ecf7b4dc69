import { join } from 'node:path';
import { createLogger, type HoldfastConfig, loadConfig, QUEUE_PREFIX, SEND_QUEUES } from '@holdfast/core';
import { createProducer, DeadLetters, type Producer } from '@holdfast/producer';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { startSesServer, type TestSesServer } from '@holdfast/testkit/ses-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SenderHandle, SesTransport, start } from '../src/index.ts';

const log = createLogger({ name: 'sender-replay-test', level: 'silent' });

async function eventually<T>(what: string, probe: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('sender and dead letters (SES on loopback, real Redis and BullMQ)', { timeout: 20_000 }, () => {
  let redis: TestRedis;
  let raw: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let ses: TestSesServer;
  let config: Readonly<HoldfastConfig>;
  let producer: Producer;
  let sender: SenderHandle;
  let dead: DeadLetters;
  let emails: Queue;

  beforeEach(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { maxRetriesPerRequest: null });
    dir = await tempDir('holdfast-sender-replay-');
    ses = await startSesServer();
    config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
      HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
      // No archiver runs here: the email is sent without waiting for its archive write.
      HOLDFAST_EMAIL_FAIL_MODE: 'open',
      HOLDFAST_METRICS_PORT: '0',
      HOLDFAST_LOG_LEVEL: 'silent',
    });
    producer = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'spool', 'producer'),
      logger: log,
      channels: config.channels,
    });
    sender = await start(config, {
      emailTransport: new SesTransport({
        region: 'eu-west-1',
        endpoint: ses.endpoint,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      }),
      logger: log,
      concurrency: 1,
      retryBaseMs: 50,
      retryCapMs: 200,
    });
    dead = new DeadLetters({ redisUrl: redis.url, log });
    emails = new Queue(SEND_QUEUES.email, { connection: raw, prefix: QUEUE_PREFIX });
  });

  afterEach(async () => {
    await sender.close();
    await producer.close();
    await dead.close();
    await emails.close();
    raw.disconnect();
    await ses.close();
    await redis.stop();
    await dir.remove();
  });

  const sendEmail = () =>
    producer.sendEmail({
      from: 'alerts@acme.example',
      to: 'ada@customer.example',
      subject: 'Statement',
      text: 'Attached.',
    });

  it('sends a permanently rejected email when its dead letter is replayed after the fix, once', async () => {
    ses.failNext({ status: 400, type: 'MessageRejected', message: 'Email address is not verified.' });
    const { id } = await sendEmail();
    await eventually(
      'the dead letter',
      async () => (await dead.show(SEND_QUEUES.email, id))?.status === 'dead',
    );
    expect((await dead.show(SEND_QUEUES.email, id))!.classification).toBe('permanent');
    expect(ses.sent).toHaveLength(0);

    // The operator verifies the address, then replays.
    const report = await dead.replay(
      { refs: [{ queue: SEND_QUEUES.email, jobId: id }] },
      { actor: 'oncall' },
    );
    expect(report.items.map((i) => i.status)).toEqual(['done']);
    await eventually(
      'the replayed job completed',
      async () => (await emails.getJobState(id)) === 'completed',
    );
    expect(ses.sent).toHaveLength(1);
    expect((await emails.getJob(id))!.returnvalue).toMatchObject({ outcome: 'sent', sentNow: true });
  });

  it('retries an email through a missing SES configuration set instead of dead-lettering it', async () => {
    ses.failNext(
      { status: 404, type: 'NotFoundException', message: 'Configuration set <cs> does not exist.' },
      2,
    );
    const { id } = await sendEmail();
    await eventually('the send job completed', async () => (await emails.getJobState(id)) === 'completed');
    expect(ses.sent).toHaveLength(1);
    // Two refused attempts, then the one that sent (BullMQ counts the completed run too).
    expect((await emails.getJob(id))!.attemptsMade).toBe(3);
    expect(await dead.show(SEND_QUEUES.email, id)).toBeUndefined();
  });
});
