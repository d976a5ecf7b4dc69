import { join } from 'node:path';
import { ValidationError } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createProducer,
  MAX_DOCUMENT_BYTES,
  MAX_EVENT_BYTES,
  NotDurableError,
  type Producer,
  ProducerClosedError,
} from '../src/index.ts';

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

  /** The call's error, with what it spooled: nothing, when it was refused. */
  const refusal = async (call: () => Promise<unknown>) => {
    const before = producer.stats().spool.appends;
    const error = await call().catch((e: unknown) => e);
    return { error: error as Error, spooled: producer.stats().spool.appends - before };
  };
  const MiB = 1024 * 1024;

  // Its base64 makes the event larger than a spool record may be: the spool would refuse it, and
  // that must reach the caller as bad input, not as a write to retry.
  it('refuses a record document too large for one event with a ValidationError naming it, and spools nothing', async () => {
    const { error, spooled } = await refusal(() =>
      producer.record({
        category: 'contract',
        type: 'contract.signed',
        subject: 'c-1',
        document: { content: new Uint8Array(50 * MiB), contentType: 'application/pdf' },
      }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(/document\.content: is larger than \d+ bytes/);
    expect(spooled).toBe(0);
  });

  it('accepts a record document of the largest size it allows: what passes validation fits the spool', async () => {
    const content = new Uint8Array(MAX_DOCUMENT_BYTES);
    const { id } = await producer.record({
      category: 'contract',
      type: 'contract.signed',
      subject: 'c-2',
      data: { counterparty: 'acme-customer', note: 'n'.repeat(8 * 1024) },
      document: { content, contentType: 'application/pdf', filename: 'contract.pdf' },
    });
    expect(id).toBeTruthy();
    await expect(
      producer.record({
        category: 'contract',
        type: 'contract.signed',
        subject: 'c-3',
        document: { content: new Uint8Array(MAX_DOCUMENT_BYTES + 1), contentType: 'application/pdf' },
      }),
    ).rejects.toThrow(/document\.content/);
  });

  it('refuses an email whose attachments are too large together with a ValidationError naming them, and spools nothing', async () => {
    const { error, spooled } = await refusal(() =>
      producer.sendEmail({
        ...valid,
        attachments: [
          { filename: 'a.bin', content: new Uint8Array(25 * MiB) },
          { filename: 'b.bin', content: new Uint8Array(25 * MiB) },
        ],
      }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(/attachments: are larger than \d+ bytes .* together/);
    expect(spooled).toBe(0);
  });

  it('refuses an event whose encoding is larger than a spool record with a ValidationError, not NotDurableError', async () => {
    const { error, spooled } = await refusal(() =>
      producer.record({
        category: 'audit-log',
        type: 'audit.export',
        subject: 's',
        data: { rows: 'r'.repeat(MAX_EVENT_BYTES) },
      }),
    );
    expect(error).not.toBeInstanceOf(NotDurableError);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(/the encoded event is \d+ bytes, more than one event may take/);
    expect(spooled).toBe(0);
    expect(producer.stats().spool.failed).toBe(false);
  });

  // The WORM store refuses a retain-until in the past: such a record could never be archived.
  it('refuses a record whose retention has already ended, naming the category, its retention and when it ended', async () => {
    const { error, spooled } = await refusal(() =>
      producer.record({
        category: 'audit-log',
        type: 'audit.login',
        subject: 'u-1',
        occurredAt: '2020-01-01T00:00:00Z',
      }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(
      /occurredAt: 2020-01-01T00:00:00\.000Z is too long ago to archive: category "audit-log" is retained for 3y .*ended on 2023-01-01T00:00:00\.000Z/,
    );
    expect(spooled).toBe(0);
    // A day inside its retention is still accepted.
    const recent = new Date();
    recent.setUTCFullYear(recent.getUTCFullYear() - 3);
    recent.setUTCDate(recent.getUTCDate() + 1);
    await producer.record({ category: 'audit-log', type: 'audit.login', subject: 'u-1', occurredAt: recent });
  });

  it('refuses a record dated so far ahead that its retention would end past the last date there is', async () => {
    const { error, spooled } = await refusal(() =>
      producer.record({
        category: 'audit-log',
        type: 'audit.login',
        subject: 'u-1',
        occurredAt: new Date(8.64e15),
      }),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.message).toMatch(
      /occurredAt: \+275760-09-13T00:00:00\.000Z is too far ahead: category "audit-log"/,
    );
    expect(spooled).toBe(0);
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
