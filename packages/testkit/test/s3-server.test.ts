import { createHash } from 'node:crypto';
import {
  DeleteBucketEncryptionCommand,
  DeleteBucketReplicationCommand,
  DeletePublicAccessBlockCommand,
  GetBucketEncryptionCommand,
  GetBucketReplicationCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  GetPublicAccessBlockCommand,
  PutBucketEncryptionCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  PutPublicAccessBlockCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { type S3Server, type S3ServerOptions, startS3Server, TEST_KMS_KEY_ID } from '../src/s3-server.ts';

let server: S3Server | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const AUTH = { authorization: 'AWS4-HMAC-SHA256 Credential=test/20310301/us-east-1/s3/aws4_request' };
const sha256b64 = (data: string | Buffer) => createHash('sha256').update(data).digest('base64');

async function start(options: S3ServerOptions = {}) {
  server = await startS3Server(options);
  return server;
}

async function call(
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  const res = await fetch(`${server!.endpoint}/${server!.bucket}/${path}`, {
    method: init.method ?? 'GET',
    headers: { ...AUTH, ...init.headers },
    body: init.body,
  });
  const text = await res.text();
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  return { status: res.status, headers: res.headers, text, code };
}

function lockHeaders(until: Date, body: string): Record<string, string> {
  return {
    'x-amz-object-lock-mode': 'COMPLIANCE',
    'x-amz-object-lock-retain-until-date': until.toISOString(),
    'x-amz-checksum-sha256': sha256b64(body),
  };
}

describe('startS3Server', () => {
  it('requires an Authorization header and answers S3 error XML', async () => {
    await start();
    const res = await fetch(`${server!.endpoint}/${server!.bucket}/a`);
    const text = await res.text();
    expect(res.status).toBe(403);
    expect(text).toContain('<Error><Code>AccessDenied</Code><Message>Access Denied</Message>');
    expect(server!.requests[0]).toMatchObject({
      operation: 'GetObject',
      method: 'GET',
      key: 'a',
      status: 403,
    });
  });

  it('requires a checksum header on a put with Object Lock parameters and verifies it', async () => {
    await start();
    const until = new Date(Date.now() + 86_400_000);
    const noChecksum = await call('a.txt', {
      method: 'PUT',
      body: 'hello',
      headers: {
        'x-amz-object-lock-mode': 'COMPLIANCE',
        'x-amz-object-lock-retain-until-date': until.toISOString(),
      },
    });
    expect(noChecksum).toMatchObject({ status: 400, code: 'InvalidRequest' });
    expect(noChecksum.text).toContain(
      'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters',
    );

    const wrong = await call('a.txt', {
      method: 'PUT',
      body: 'hello',
      headers: { ...lockHeaders(until, 'other'), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    expect(wrong).toMatchObject({ status: 400, code: 'BadDigest' });

    const md5 = createHash('md5').update('hello').digest('base64');
    const withMd5 = await call('a.txt', {
      method: 'PUT',
      body: 'hello',
      headers: {
        'x-amz-object-lock-mode': 'COMPLIANCE',
        'x-amz-object-lock-retain-until-date': until.toISOString(),
        'content-md5': md5,
      },
    });
    expect(withMd5.status).toBe(200);
    expect(withMd5.headers.get('x-amz-version-id')).toBeTruthy();

    const past = await call('b.txt', {
      method: 'PUT',
      body: 'x',
      headers: lockHeaders(new Date(Date.now() - 1000), 'x'),
    });
    expect(past).toMatchObject({ status: 400, code: 'InvalidArgument' });
  });

  it('refuses trailing checksums by default and decodes them when allowed', async () => {
    const chunked = (payload: string) =>
      `${payload.length.toString(16)}\r\n${payload}\r\n0\r\nx-amz-checksum-sha256:${sha256b64(payload)}\r\n\r\n`;
    const headers = {
      'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'x-amz-trailer': 'x-amz-checksum-sha256',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '5',
    };
    await start();
    const refused = await call('t.txt', { method: 'PUT', body: chunked('hello'), headers });
    expect(refused).toMatchObject({ status: 400, code: 'InvalidRequest' });
    await server!.close();

    await start({ rejectTrailingChecksums: false });
    expect((await call('t.txt', { method: 'PUT', body: chunked('hello'), headers })).status).toBe(200);
    const got = await call('t.txt', { headers: { 'x-amz-checksum-mode': 'ENABLED' } });
    expect(got.text).toBe('hello');
    expect(got.headers.get('x-amz-checksum-sha256')).toBe(sha256b64('hello'));
  });

  it('answers If-None-Match: * with 412 while a current version exists, and not after a delete marker', async () => {
    await start();
    const until = new Date(Date.now() + 86_400_000);
    const put = () =>
      call('once', {
        method: 'PUT',
        body: 'x',
        headers: { ...lockHeaders(until, 'x'), 'if-none-match': '*' },
      });
    expect((await put()).status).toBe(200);
    expect(await put()).toMatchObject({ status: 412, code: 'PreconditionFailed' });
    const marker = await call('once', { method: 'DELETE' });
    expect(marker.status).toBe(204);
    expect(marker.headers.get('x-amz-delete-marker')).toBe('true');
    expect((await call('once', { method: 'HEAD' })).status).toBe(404);
    expect((await put()).status).toBe(200);
  });

  it('enforces COMPLIANCE retention and legal holds on versions, with a clock tests can move', async () => {
    let now = Date.parse('2031-03-01T09:00:00.000Z');
    await start({ clock: () => new Date(now) });
    const until = new Date(now + 3_600_000);
    const put = await call('r.txt', { method: 'PUT', body: 'x', headers: lockHeaders(until, 'x') });
    const versionId = put.headers.get('x-amz-version-id')!;

    const head = await call('r.txt', { method: 'HEAD', headers: { 'x-amz-checksum-mode': 'ENABLED' } });
    expect(head.headers.get('x-amz-object-lock-mode')).toBe('COMPLIANCE');
    expect(head.headers.get('x-amz-object-lock-retain-until-date')).toBe(until.toISOString());
    expect(head.headers.get('x-amz-version-id')).toBe(versionId);
    expect(head.headers.get('x-amz-checksum-sha256')).toBe(sha256b64('x'));

    expect(await call(`r.txt?versionId=${versionId}`, { method: 'DELETE' })).toMatchObject({
      status: 403,
      code: 'AccessDenied',
    });

    const retention = (date: Date) =>
      `<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>COMPLIANCE</Mode><RetainUntilDate>${date.toISOString()}</RetainUntilDate></Retention>`;
    const putRetention = (date: Date) =>
      call(`r.txt?retention&versionId=${versionId}`, {
        method: 'PUT',
        body: retention(date),
        headers: { 'content-md5': createHash('md5').update(retention(date)).digest('base64') },
      });
    expect(await putRetention(new Date(now + 60_000))).toMatchObject({ status: 403, code: 'AccessDenied' });
    expect((await putRetention(new Date(now + 7_200_000))).status).toBe(200);
    expect((await call(`r.txt?retention&versionId=${versionId}`)).text).toContain(
      `<RetainUntilDate>${new Date(now + 7_200_000).toISOString()}</RetainUntilDate>`,
    );

    const hold = (status: string) => `<LegalHold><Status>${status}</Status></LegalHold>`;
    const putHold = (status: string) =>
      call(`r.txt?legal-hold&versionId=${versionId}`, {
        method: 'PUT',
        body: hold(status),
        headers: { 'content-md5': createHash('md5').update(hold(status)).digest('base64') },
      });
    expect((await putHold('ON')).status).toBe(200);
    expect((await call(`r.txt?legal-hold&versionId=${versionId}`)).text).toContain('<Status>ON</Status>');

    now += 3 * 3_600_000;
    expect(await call(`r.txt?versionId=${versionId}`, { method: 'DELETE' })).toMatchObject({ status: 403 });
    expect((await putHold('OFF')).status).toBe(200);
    expect((await call(`r.txt?versionId=${versionId}`, { method: 'DELETE' })).status).toBe(204);
    expect((await call('r.txt', { method: 'HEAD' })).status).toBe(404);
  });

  it('lists objects and versions by prefix in key order, with pagination', async () => {
    await start();
    const until = new Date(Date.now() + 86_400_000);
    for (const key of ['p/b', 'p/a', 'p/a', 'q/x', 'p/c']) {
      await call(key, { method: 'PUT', body: key, headers: lockHeaders(until, key) });
    }
    const page1 = await fetch(`${server!.endpoint}/${server!.bucket}?list-type=2&prefix=p/&max-keys=2`, {
      headers: AUTH,
    }).then((r) => r.text());
    expect([...page1.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])).toEqual(['p/a', 'p/b']);
    expect(page1).toContain('<IsTruncated>true</IsTruncated>');
    const token = /<NextContinuationToken>([^<]*)</.exec(page1)![1]!;
    const page2 = await fetch(
      `${server!.endpoint}/${server!.bucket}?list-type=2&prefix=p/&max-keys=2&continuation-token=${token}`,
      { headers: AUTH },
    ).then((r) => r.text());
    expect([...page2.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])).toEqual(['p/c']);

    const versions = await fetch(`${server!.endpoint}/${server!.bucket}?versions&prefix=p/`, {
      headers: AUTH,
    }).then((r) => r.text());
    expect([...versions.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])).toEqual([
      'p/a',
      'p/a',
      'p/b',
      'p/c',
    ]);
  });

  it('answers bucket configuration as S3 does with and without Object Lock', async () => {
    await start();
    const lock = await fetch(`${server!.endpoint}/${server!.bucket}?object-lock`, { headers: AUTH });
    expect(await lock.text()).toContain('<ObjectLockEnabled>Enabled</ObjectLockEnabled>');
    await server!.close();

    await start({ objectLock: false, versioning: false });
    const none = await fetch(`${server!.endpoint}/${server!.bucket}?object-lock`, { headers: AUTH });
    expect(none.status).toBe(404);
    expect(await none.text()).toContain('<Code>ObjectLockConfigurationNotFoundError</Code>');
    const versioning = await fetch(`${server!.endpoint}/${server!.bucket}?versioning`, { headers: AUTH });
    expect(await versioning.text()).not.toContain('<Status>');
    expect(server!.requests.map((r) => r.operation)).toEqual([
      'GetObjectLockConfiguration',
      'GetBucketVersioning',
    ]);
  });
});

describe('startS3Server bucket settings', () => {
  const client = (s: S3Server) =>
    new S3Client({
      endpoint: s.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'holdfast-test', secretAccessKey: 'holdfast-test-secret' },
    });
  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => undefined,
      (err: { name: string; $metadata?: { httpStatusCode?: number } }) => ({
        code: err.name,
        status: err.$metadata?.httpStatusCode,
      }),
    );

  it('defaults to a bucket the preflight passes, read back through the AWS SDK', async () => {
    const s3 = client(await start());
    const Bucket = server!.bucket;
    try {
      expect(
        (await s3.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration,
      ).toEqual({
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Years: 7 } },
      });
      expect((await s3.send(new GetBucketVersioningCommand({ Bucket }))).Status).toBe('Enabled');
      expect(
        (await s3.send(new GetPublicAccessBlockCommand({ Bucket }))).PublicAccessBlockConfiguration,
      ).toEqual({
        BlockPublicAcls: true,
        IgnorePublicAcls: true,
        BlockPublicPolicy: true,
        RestrictPublicBuckets: true,
      });
      const encryption = await s3.send(new GetBucketEncryptionCommand({ Bucket }));
      expect(encryption.ServerSideEncryptionConfiguration?.Rules).toEqual([
        {
          ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: TEST_KMS_KEY_ID },
          BucketKeyEnabled: true,
        },
      ]);
      expect(await failure(s3.send(new GetBucketReplicationCommand({ Bucket })))).toEqual({
        code: 'ReplicationConfigurationNotFoundError',
        status: 404,
      });
    } finally {
      s3.destroy();
    }
  });

  it("answers each setting that is not configured with S3's not-found error, and denied operations with 403", async () => {
    const s3 = client(
      await start({
        objectLock: false,
        versioning: 'Suspended',
        publicAccessBlock: null,
        encryption: null,
        deniedOperations: ['GetBucketReplication'],
      }),
    );
    const Bucket = server!.bucket;
    try {
      expect(await failure(s3.send(new GetObjectLockConfigurationCommand({ Bucket })))).toEqual({
        code: 'ObjectLockConfigurationNotFoundError',
        status: 404,
      });
      expect((await s3.send(new GetBucketVersioningCommand({ Bucket }))).Status).toBe('Suspended');
      expect(await failure(s3.send(new GetPublicAccessBlockCommand({ Bucket })))).toEqual({
        code: 'NoSuchPublicAccessBlockConfiguration',
        status: 404,
      });
      expect(await failure(s3.send(new GetBucketEncryptionCommand({ Bucket })))).toEqual({
        code: 'ServerSideEncryptionConfigurationNotFoundError',
        status: 404,
      });
      expect(await failure(s3.send(new GetBucketReplicationCommand({ Bucket })))).toEqual({
        code: 'AccessDenied',
        status: 403,
      });
      server!.setDeniedOperations([]);
      expect(await failure(s3.send(new GetBucketReplicationCommand({ Bucket })))).toMatchObject({
        code: 'ReplicationConfigurationNotFoundError',
      });
    } finally {
      s3.destroy();
    }
  });

  it('changes settings through configureBucket and through the Put*/Delete* operations', async () => {
    const s3 = client(await start());
    const Bucket = server!.bucket;
    try {
      server!.configureBucket({
        defaultRetention: { mode: 'GOVERNANCE', days: 30 },
        encryption: { algorithm: 'AES256' },
        replication: {
          role: 'arn:aws:iam::111122223333:role/replication',
          rules: [{ id: 'dr', status: 'Enabled', destinationBucket: 'arn:aws:s3:::holdfast-dr' }],
        },
      });
      expect(
        (await s3.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration?.Rule,
      ).toEqual({ DefaultRetention: { Mode: 'GOVERNANCE', Days: 30 } });
      expect(
        (await s3.send(new GetBucketEncryptionCommand({ Bucket }))).ServerSideEncryptionConfiguration?.Rules,
      ).toEqual([
        { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' }, BucketKeyEnabled: false },
      ]);
      expect(
        (await s3.send(new GetBucketReplicationCommand({ Bucket }))).ReplicationConfiguration,
      ).toMatchObject({
        Role: 'arn:aws:iam::111122223333:role/replication',
        Rules: [
          { ID: 'dr', Status: 'Enabled', Priority: 1, Destination: { Bucket: 'arn:aws:s3:::holdfast-dr' } },
        ],
      });
      expect(() => server!.configureBucket({ versioning: false })).toThrow(/Object Lock needs versioning/);

      await s3.send(
        new PutObjectLockConfigurationCommand({
          Bucket,
          ObjectLockConfiguration: {
            ObjectLockEnabled: 'Enabled',
            Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Years: 3 } },
          },
        }),
      );
      await s3.send(
        new PutPublicAccessBlockCommand({
          Bucket,
          PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true },
        }),
      );
      await s3.send(
        new PutBucketEncryptionCommand({
          Bucket,
          ServerSideEncryptionConfiguration: {
            Rules: [
              { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms:dsse', KMSMasterKeyID: 'k1' } },
            ],
          },
        }),
      );
      await s3.send(new DeleteBucketReplicationCommand({ Bucket }));
      expect(server!.bucketSettings()).toMatchObject({
        defaultRetention: { mode: 'COMPLIANCE', years: 3 },
        publicAccessBlock: {
          blockPublicAcls: true,
          ignorePublicAcls: false,
          blockPublicPolicy: true,
          restrictPublicBuckets: false,
        },
        encryption: { algorithm: 'aws:kms:dsse', kmsKeyId: 'k1' },
        replication: null,
      });
      expect(
        await failure(
          s3.send(
            new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: 'Suspended' } }),
          ),
        ),
      ).toEqual({ code: 'InvalidBucketState', status: 409 });
      await s3.send(new DeletePublicAccessBlockCommand({ Bucket }));
      await s3.send(new DeleteBucketEncryptionCommand({ Bucket }));
      expect(server!.bucketSettings()).toMatchObject({ publicAccessBlock: null, encryption: null });
    } finally {
      s3.destroy();
    }
  });

  it('applies a default retention in years to puts without lock headers', async () => {
    const now = Date.parse('2031-03-01T09:00:00.000Z');
    await start({ clock: () => new Date(now), defaultRetention: { mode: 'COMPLIANCE', years: 2 } });
    expect(
      (
        await call('d.txt', {
          method: 'PUT',
          body: 'x',
          headers: { 'x-amz-checksum-sha256': sha256b64('x') },
        })
      ).status,
    ).toBe(200);
    const head = await call('d.txt', { method: 'HEAD' });
    expect(head.headers.get('x-amz-object-lock-mode')).toBe('COMPLIANCE');
    expect(head.headers.get('x-amz-object-lock-retain-until-date')).toBe('2033-03-01T09:00:00.000Z');
  });
});
