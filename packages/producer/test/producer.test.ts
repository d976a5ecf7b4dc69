import { join } from 'node:path';
import { ValidationError } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProducer, type Producer, ProducerClosedError } from '../src/index.ts';

const valid = { from: 'a@acme.example', to: 'b@customer.example', subject: 'hi', text: 'hello' };

describe('createProducer input validation', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let producer: Producer;

  beforeAll(async () => {
    redis = await startRedis();
    dir = await tempDir();
    producer = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'spool'),
    });
  });
  afterAll(async () => {
    await producer.close();
    await redis.stop();
    await dir.remove();
  });

  it.each([
    [{ ...valid, to: [] }, /to: needs at least one recipient/],
    [{ ...valid, to: 'not-an-address' }, /to: "not-an-address" is not an email address/],
    [{ ...valid, from: 'a@acme.example, c@acme.example' }, /from: must be exactly one address/],
    [{ ...valid, text: undefined }, /text: needs text or html/],
    [{ ...valid, subject: 'two\nlines' }, /subject: must be one line/],
    [{ ...valid, kind: 'Bad Kind' }, /kind:/],
    [{ ...valid, kind: 'newsletter' }, /kind: selects retention category "email-newsletter"/],
    [{ ...valid, attachments: [{ filename: 'x', path: '/etc/passwd' }] }, /attachments\.0/],
    [{ ...valid, unknownField: 1 }, /unknownField|Unrecognized/],
  ])('rejects %j with a typed error naming the field, and spools nothing', async (input, message) => {
    const before = producer.stats().spool.appends;
    const error = await producer.sendEmail(input as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).code).toBe('HOLDFAST_ERR_VALIDATION');
    expect((error as Error).message).toMatch(message);
    expect(producer.stats().spool.appends).toBe(before);
    expect(producer.stats().backlog).toBe(0);
  });

  it.each([
    [
      { category: 'nope', type: 'transaction.posted', subject: 's', data: {} },
      /category: selects retention category "nope"/,
    ],
    [{ category: 'audit-log', type: 'Posted', subject: 's', data: {} }, /type:/],
    [{ category: 'audit-log', type: 'audit.login', subject: '', data: {} }, /subject:/],
    [
      { category: 'audit-log', type: 'audit.login', subject: 's', occurredAt: 'yesterday', data: {} },
      /occurredAt/,
    ],
    [{ category: 'audit-log', type: 'audit.login', subject: 's', data: { n: Number.NaN } }, /data:/],
  ])('rejects the record %j and spools nothing', async (input, message) => {
    const before = producer.stats().spool.appends;
    await expect(producer.record(input as never)).rejects.toThrow(message);
    expect(producer.stats().spool.appends).toBe(before);
  });

  it('refuses an invalid project before opening anything', async () => {
    await expect(
      createProducer({ project: 'Not OK', redisUrl: redis.url, spoolDir: join(dir.path, 'x') }),
    ).rejects.toThrow(/project:/);
  });

  it('refuses work after close with a typed error', async () => {
    const p = await createProducer({
      project: 'acme',
      redisUrl: redis.url,
      spoolDir: join(dir.path, 'closed'),
    });
    await p.close();
    await expect(p.sendEmail(valid)).rejects.toBeInstanceOf(ProducerClosedError);
  });
});
