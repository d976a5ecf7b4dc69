import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type S3Server, startS3Server } from '@holdfast/testkit/s3-server';
import { afterEach, describe, expect, it } from 'vitest';
import { S3WormStore, type S3WormStoreOptions } from '../src/index.ts';

const credentials = { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' };
const DAY = 86_400_000;

let server: S3Server | undefined;
let store: S3WormStore | undefined;

afterEach(async () => {
  await store?.close();
  await server?.close();
  store = undefined;
  server = undefined;
});

async function open(
  serverOptions: Parameters<typeof startS3Server>[0] = {},
  extra: Partial<S3WormStoreOptions> = {},
) {
  server = await startS3Server(serverOptions);
  store = await S3WormStore.open({
    bucket: server.bucket,
    endpoint: server.endpoint,
    region: 'us-east-1',
    credentials,
    ...extra,
  });
  return { server, store };
}

function body(text: string) {
  const bytes = new TextEncoder().encode(text);
  return { body: bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

describe('S3WormStore requests', () => {
  it('sends every PutObject with COMPLIANCE retention, its SHA-256 as x-amz-checksum-sha256 and no trailing checksum', async () => {
    const { server, store } = await open();
    const retainUntil = new Date(Math.ceil((Date.now() + 7 * DAY) / 1000) * 1000);
    const puts: {
      key: string;
      body: Uint8Array;
      sha256: string;
      legalHold?: boolean;
      ifNoneMatch?: boolean;
    }[] = [
      { key: 'email/acme/out/a.eml', ...body('first message') },
      { key: 'email/acme/out/b.eml', ...body('second message'), legalHold: true },
      { key: 'email/acme/out/c.eml', ...body('third message'), ifNoneMatch: true },
    ];
    for (const put of puts) await store.put({ ...put, contentType: 'message/rfc822', retainUntil });

    const recorded = server.requests.filter((r) => r.operation === 'PutObject');
    expect(recorded).toHaveLength(3);
    for (const [i, request] of recorded.entries()) {
      const put = puts[i]!;
      const h = request.headers;
      expect(request.key).toBe(put.key);
      expect(h['x-amz-object-lock-mode']).toBe('COMPLIANCE');
      expect(new Date(h['x-amz-object-lock-retain-until-date']!)).toEqual(retainUntil);
      expect(h['x-amz-checksum-sha256']).toBe(Buffer.from(put.sha256, 'hex').toString('base64'));
      expect(h['x-amz-object-lock-legal-hold']).toBe(put.legalHold ? 'ON' : undefined);
      expect(h['if-none-match']).toBe(put.ifNoneMatch ? '*' : undefined);
      expect(h['content-type']).toBe('message/rfc822');
      expect(h['x-amz-trailer']).toBeUndefined();
      expect(h['x-amz-content-sha256']).not.toMatch(/^STREAMING-/);
      expect(h['content-encoding'] ?? '').not.toContain('aws-chunked');
      expect(Object.keys(h).filter((name) => name.startsWith('x-amz-checksum-'))).toEqual([
        'x-amz-checksum-sha256',
      ]);
      expect(h.authorization).toMatch(/^AWS4-HMAC-SHA256 /);
    }
  });

  it('streams a file body as one PutObject with its length and SHA-256 as headers, no aws-chunked encoding', async () => {
    const { server, store } = await open();
    const dir = await mkdtemp(join(tmpdir(), 'holdfast-s3-file-'));
    try {
      const bytes = randomBytes(5 * 65_536 + 7);
      const path = join(dir, 'media.bin');
      await writeFile(path, bytes);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const retainUntil = new Date(Math.ceil((Date.now() + 7 * DAY) / 1000) * 1000);
      await store.put({
        key: 'sms/acme/inbound/m.jpg',
        body: { path, size: bytes.byteLength },
        contentType: 'image/jpeg',
        sha256,
        retainUntil,
        ifNoneMatch: true,
      });
      const [request] = server.requests.filter((r) => r.operation === 'PutObject');
      const h = request!.headers;
      expect(h['content-length']).toBe(String(bytes.byteLength));
      expect(h['x-amz-checksum-sha256']).toBe(Buffer.from(sha256, 'hex').toString('base64'));
      expect(h['x-amz-object-lock-mode']).toBe('COMPLIANCE');
      expect(h['x-amz-trailer']).toBeUndefined();
      expect(h['x-amz-content-sha256'] ?? '').not.toMatch(/^STREAMING-/);
      expect(h['content-encoding'] ?? '').not.toContain('aws-chunked');
      expect(h['transfer-encoding']).toBeUndefined();
      const got = await store.get('sms/acme/inbound/m.jpg');
      expect(Buffer.compare(Buffer.from(got.body), bytes)).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('asks for the checksum on head and reads the current retention before PutObjectRetention', async () => {
    const { server, store } = await open();
    const { versionId } = await store.put({
      key: 'records/tx/1.json',
      ...body('{}'),
      contentType: 'application/json',
      retainUntil: new Date(Date.now() + DAY),
    });
    server.requests.length = 0;
    await store.head('records/tx/1.json');
    await store.extendRetention('records/tx/1.json', versionId, new Date(Date.now() + 30 * DAY));
    expect(server.requests.map((r) => r.operation)).toEqual([
      'HeadObject',
      'GetObjectRetention',
      'PutObjectRetention',
    ]);
    expect(server.requests[0]!.headers['x-amz-checksum-mode']).toBe('ENABLED');
    expect(server.requests[2]!.query.versionId).toBe(versionId);

    server.requests.length = 0;
    await expect(
      store.extendRetention('records/tx/1.json', versionId, new Date(Date.now() + 2 * DAY)),
    ).rejects.toMatchObject({ code: 'HOLDFAST_ERR_RETENTION_SHORTEN' });
    // Refused before asking S3 to shorten anything.
    expect(server.requests.map((r) => r.operation)).toEqual(['GetObjectRetention']);
  });

  it('explains the 403 S3 answers for a locked version by heading it', async () => {
    const { server, store } = await open();
    const { versionId } = await store.put({
      key: 'sms/acme/in/1.json',
      ...body('hi'),
      contentType: 'application/json',
      retainUntil: new Date(Date.now() + DAY),
    });
    server.requests.length = 0;
    await expect(store.deleteVersion('sms/acme/in/1.json', versionId)).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_OBJECT_RETAINED',
    });
    expect(server.requests.map((r) => [r.operation, r.status])).toEqual([
      ['DeleteObject', 403],
      ['HeadObject', 200],
    ]);
  });

  it('refuses to open a bucket without Object Lock with StoreNotWormError', async () => {
    await expect(open({ objectLock: false })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_STORE_NOT_WORM',
      name: 'StoreNotWormError',
    });
    await expect(open({ objectLock: false, versioning: false })).rejects.toMatchObject({
      code: 'HOLDFAST_ERR_STORE_NOT_WORM',
    });
  });

  it('reports a bucket that does not exist as a StoreRequestError naming the S3 code', async () => {
    server = await startS3Server();
    await expect(
      S3WormStore.open({
        bucket: 'no-such-bucket',
        endpoint: server.endpoint,
        region: 'us-east-1',
        credentials,
      }),
    ).rejects.toMatchObject({ code: 'HOLDFAST_ERR_STORE_REQUEST', s3Code: 'NoSuchBucket', status: 404 });
  });

  it('reports a server that does not answer as StoreUnavailableError and keeps the cause', async () => {
    server = await startS3Server();
    const endpoint = server.endpoint;
    await server.close();
    server = undefined;
    const err = await S3WormStore.open({
      bucket: 'holdfast-test',
      endpoint,
      region: 'us-east-1',
      credentials,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HOLDFAST_ERR_STORE_UNAVAILABLE', name: 'StoreUnavailableError' });
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('describes itself by bucket and endpoint', async () => {
    const { server, store } = await open();
    expect(store.description).toBe(`s3://${server.bucket} (${server.endpoint})`);
  });
});
