import { join } from 'node:path';
import { loadConfig, QUEUE_PREFIX, QUEUES, ValidationError } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProducer, type Producer } from '../src/index.ts';

const sms = { from: '+14155550100', to: '+447700900123', body: 'Your code is 123456' };
const whatsapp = { to: '+447700900123', text: 'Your statement is ready' };

describe('sendSms and sendWhatsApp', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let producer: Producer;
  const queues = new Map<string, Queue>();
  const queue = (name: string) => {
    if (!queues.has(name))
      queues.set(name, new Queue(name, { connection: { url: redis.url }, prefix: QUEUE_PREFIX }));
    return queues.get(name)!;
  };

  beforeAll(async () => {
    redis = await startRedis();
    dir = await tempDir();
    // The defaults: SMS fails open, WhatsApp fails closed.
    producer = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'spool'),
      channels: loadConfig({}).channels,
    });
  });
  afterAll(async () => {
    await producer.close();
    for (const q of queues.values()) await q.close();
    await redis.stop();
    await dir.remove();
  });

  it.each([
    ['sms', { ...sms, to: '07700900123' }, /to: must be an E\.164 number/],
    ['sms', { ...sms, from: 'Acme' }, /from: must be an E\.164 number .* or a Messaging Service SID/],
    ['sms', { ...sms, body: '' }, /body: must not be empty/],
    ['sms', { ...sms, body: 'x'.repeat(1601) }, /body:/],
    ['sms', { ...sms, mediaUrls: ['http://cdn.example/a.jpg'] }, /mediaUrls\.0: must be an https URL/],
    ['sms', { ...sms, kind: 'otp' }, /kind: selects retention category "sms-otp"/],
    ['whatsapp', { to: '+447700900123' }, /exactly one of text, template or media/],
    [
      'whatsapp',
      { ...whatsapp, template: { name: 'x', language: 'en' } },
      /exactly one of text, template or media/,
    ],
    [
      'whatsapp',
      { to: '+447700900123', template: { name: 'Bad Name', language: 'en_US' } },
      /template\.name:/,
    ],
    ['whatsapp', { to: '+447700900123', media: { type: 'image' } }, /media: needs exactly one of link or id/],
    [
      'whatsapp',
      { to: '+447700900123', media: { type: 'image', link: 'http://cdn.example/a.jpg' } },
      /media\.link:/,
    ],
  ])(
    '%s: rejects %j with a typed error naming the field, and spools nothing',
    async (channel, input, message) => {
      const before = producer.stats().spool.appends;
      const send = channel === 'sms' ? producer.sendSms : producer.sendWhatsApp;
      const error = await send(input as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(message);
      expect(producer.stats().spool.appends).toBe(before);
    },
  );

  const template = (components: Record<string, unknown>[]) => ({
    to: '+447700900123',
    template: { name: 'statement_ready', language: 'en_US', components },
  });
  const cycle: Record<string, unknown> = { type: 'body' };
  cycle.self = cycle;

  it.each([
    ['a BigInt', [{ type: 'body', n: 1n }], /template\.components: Do not know how to serialize a BigInt/],
    ['a cycle', [cycle], /template\.components: Circular reference/],
    ['a NaN', [{ type: 'body', n: Number.NaN }], /template\.components: NaN is not allowed/],
    // Validates as an object, but would be spooled as a string no event schema accepts.
    ['an object whose toJSON is not an object', [{ toJSON: () => 'x' }], /template\.components\.0/],
  ])(
    'whatsapp: refuses template components holding %s with a ValidationError, and spools nothing',
    async (_, components, message) => {
      const before = producer.stats().spool.appends;
      const error = await producer.sendWhatsApp(template(components as never)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(message);
      expect(producer.stats().spool.appends).toBe(before);
    },
  );

  it('whatsapp: spools template components as the plain JSON that was validated', async () => {
    const when = new Date('2026-11-20T09:00:00.000Z');
    const { id } = await producer.sendWhatsApp(
      template([{ type: 'body', parameters: [{ type: 'date_time', date_time: when, skipped: undefined }] }]),
    );
    const send = await waitForJob(queue(QUEUES.sendWhatsApp), id);
    expect(send.data.event.data.content.template.components).toEqual([
      { parameters: [{ date_time: '2026-11-20T09:00:00.000Z', type: 'date_time' }], type: 'body' },
    ]);
  });

  it('queues a fail-open SMS as an archive job and a send job side by side', async () => {
    const { id, archiveKey } = await producer.sendSms({ ...sms, metadata: { user: 'u-1' } });
    expect(archiveKey).toMatch(/^sms\/acme\/outbound\/\d{4}\/\d{2}\/\d{2}\/.+\.json$/);
    const send = await waitForJob(queue(QUEUES.sendSms), id);
    const archive = await waitForJob(queue(QUEUES.archive), id);
    // Not a flow: the send does not wait for the archive write.
    expect(send.parentKey).toBeUndefined();
    expect(await queue(QUEUES.sendSms).getJobState(id)).toBe('waiting');
    expect(archive.data.event).toEqual(send.data.event);
    expect(send.data.event).toMatchObject({
      channel: 'sms',
      type: 'message.submitted',
      category: 'sms-transactional',
      data: {
        to: sms.to,
        failMode: 'open',
        delivery: 'at-least-once',
        mediaUrls: [],
        metadata: { user: 'u-1' },
      },
    });
  });

  it('queues a fail-closed WhatsApp message as a send waiting on its archive child', async () => {
    const { id } = await producer.sendWhatsApp({
      to: '+447700900123',
      template: { name: 'statement_ready', language: 'en_US', components: [] },
    });
    const send = await waitForJob(queue(QUEUES.sendWhatsApp), id);
    expect(await queue(QUEUES.sendWhatsApp).getJobState(id)).toBe('waiting-children');
    expect(send.data.event.data).toMatchObject({
      content: { type: 'template', template: { name: 'statement_ready', language: 'en_US' } },
      failMode: 'closed',
    });
    expect(await queue(QUEUES.archive).getJobState(id)).toBe('waiting');
  });

  it('takes each channel’s fail mode from its configuration', async () => {
    const p = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'spool-closed-sms'),
      channels: loadConfig({ HOLDFAST_SMS_FAIL_MODE: 'closed', HOLDFAST_SMS_DELIVERY: 'at-most-once' })
        .channels,
    });
    try {
      const { id } = await p.sendSms(sms);
      const send = await waitForJob(queue(QUEUES.sendSms), id);
      expect(send.data.event.data).toMatchObject({ failMode: 'closed', delivery: 'at-most-once' });
      expect(await queue(QUEUES.sendSms).getJobState(id)).toBe('waiting-children');
    } finally {
      await p.close();
    }
  });
});

async function waitForJob(queue: Queue, id: string) {
  for (let i = 0; i < 200; i++) {
    const job = await queue.getJob(id);
    if (job) return job;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`job ${id} never appeared in ${queue.name}`);
}
