import { join } from 'node:path';
import { createLogger, loadConfig } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type IngestHandle, start } from '../src/index.ts';

const API_KEY = 'hf_acme_0123456789abcdef';
const pdf = Buffer.from('%PDF-1.4 the same bytes either way');

describe('Idempotency-Key covers the whole request, not just its body', () => {
  let redis: TestRedis;
  let dir: { path: string; remove(): Promise<void> };
  let ingest: IngestHandle;

  beforeEach(async () => {
    redis = await startRedis();
    dir = await tempDir();
    const config = loadConfig({
      REDIS_URL: redis.url,
      HOLDFAST_STORE: `local:${join(dir.path, 'store')}`,
      HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
      HOLDFAST_API_KEYS: `acme:${API_KEY}`,
      PORT: '0',
      HOLDFAST_METRICS_PORT: '0',
    });
    ingest = await start(config, {
      logger: createLogger({ name: 'ingest-idempotency-test', level: 'silent' }),
      host: '127.0.0.1',
    });
  });
  afterEach(async () => {
    await ingest.close();
    await redis.stop();
    await dir.remove();
  });

  const post = async (path: string, body: Buffer | string, contentType: string, key = 'doc-1') => {
    const res = await fetch(`${ingest.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'idempotency-key': key, 'content-type': contentType },
      body,
    });
    return {
      status: res.status,
      replayed: res.headers.get('idempotent-replayed'),
      body: (await res.json()) as { id?: string; error?: { code: string } },
    };
  };
  const spooled = () => ingest.writer.stats().spool.appends;

  it('a document record with the same key and bytes but other query metadata is refused as key reuse (422)', async () => {
    const first = await post(
      '/v1/records?category=contract&type=contract.signed&subject=customer-A',
      pdf,
      'application/pdf',
    );
    expect(first.status).toBe(202);
    const appends = spooled();

    for (const query of [
      'category=contract&type=contract.terminated&subject=customer-A',
      'category=contract&type=contract.signed&subject=customer-B',
      'category=contract&type=contract.signed&subject=customer-A&filename=msa.pdf',
      'category=contract&type=contract.signed&subject=customer-A&occurredAt=2026-01-01T00:00:00.000Z',
    ]) {
      const reused = await post(`/v1/records?${query}`, pdf, 'application/pdf');
      expect(reused.status, query).toBe(422);
      expect(reused.body.error?.code).toBe('HOLDFAST_ERR_IDEMPOTENCY_KEY_REUSED');
    }
    const otherType = await post(
      '/v1/records?category=contract&type=contract.signed&subject=customer-A',
      pdf,
      'application/octet-stream',
    );
    expect(otherType.status).toBe(422);
    expect(otherType.body.error?.code).toBe('HOLDFAST_ERR_IDEMPOTENCY_KEY_REUSED');
    expect(spooled()).toBe(appends);
  });

  it('replays the same request, whatever the order or escaping of its query parameters', async () => {
    const first = await post(
      '/v1/records?category=contract&type=contract.signed&subject=customer%20A',
      pdf,
      'application/pdf',
    );
    expect(first.status).toBe(202);
    const appends = spooled();
    const again = await post(
      '/v1/records?subject=customer+A&type=contract.signed&category=contract',
      pdf,
      'application/pdf',
    );
    expect(again).toMatchObject({ status: 202, replayed: 'true', body: first.body });
    expect(spooled()).toBe(appends);
  });

  it('the same key and JSON body on another route is refused, not answered with the first route’s response', async () => {
    const body = JSON.stringify({ category: 'audit-log', type: 'audit.login', subject: 'user-1', data: {} });
    expect((await post('/v1/records', body, 'application/json', 'json-1')).status).toBe(202);
    const other = await post('/v1/messages/sms', body, 'application/json', 'json-1');
    expect(other.status).toBe(422);
    expect(other.body.error?.code).toBe('HOLDFAST_ERR_IDEMPOTENCY_KEY_REUSED');
  });
});
