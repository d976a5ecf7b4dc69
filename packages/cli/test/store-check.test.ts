import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { type S3ServerOptions, startS3Server } from '@holdfast/testkit/s3-server';
import { tempDir } from '@holdfast/testkit/temp-dir';
import type { StoreCheckReport } from '@holdfast/worm-store';
import { describe, it, type TestContext } from 'vitest';

const MAIN = resolve(import.meta.dirname, '../src/main.ts');
const CHECKS = [
  'object-lock',
  'versioning',
  'default-retention',
  'public-access-block',
  'encryption',
  'replication',
];
const ALL_FOUR =
  'expected all four settings on (BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets)';

function run(
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      cwd,
      // A clean environment: only what the command is meant to read.
      env: { PATH: process.env.PATH, HOME: process.env.HOME, HOLDFAST_LOG_LEVEL: 'warn', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

/** A loopback S3 server with `options`, and the environment that points the CLI at its bucket. */
async function bucket(ctx: TestContext, options: S3ServerOptions = {}) {
  const server = await startS3Server(options);
  ctx.onTestFinished(() => server.close());
  const dir = await tempDir('holdfast-store-check-');
  ctx.onTestFinished(() => dir.remove());
  const env = {
    HOLDFAST_STORE: `s3://${server.bucket}`,
    HOLDFAST_S3_ENDPOINT: server.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'holdfast-test',
    AWS_SECRET_ACCESS_KEY: 'holdfast-test-secret',
  };
  return { server, env, cwd: dir.path };
}

async function checkJson(
  ctx: TestContext,
  options: S3ServerOptions = {},
  extraEnv: Record<string, string> = {},
) {
  const { env, cwd } = await bucket(ctx, options);
  const result = await run(['store', 'check', '--json'], { ...env, ...extraEnv }, cwd);
  return { ...result, report: JSON.parse(result.stdout) as StoreCheckReport };
}

describe.concurrent('holdfast store check against the loopback S3 server', () => {
  it('passes a compliant bucket (exit 0), reporting replication as not configured', async (ctx) => {
    const { code, report } = await checkJson(ctx);
    ctx.expect(code).toBe(0);
    ctx.expect(report.ok).toBe(true);
    ctx.expect(report.checks.map((c) => [c.name, c.status])).toEqual([
      ['object-lock', 'pass'],
      ['versioning', 'pass'],
      ['default-retention', 'pass'],
      ['public-access-block', 'pass'],
      ['encryption', 'pass'],
      ['replication', 'warn'],
    ]);
  });

  it('prints a readable table without --json', async (ctx) => {
    const { env, cwd, server } = await bucket(ctx, { encryption: { algorithm: 'AES256' } });
    const { code, stdout } = await run(['store', 'check'], env, cwd);
    ctx.expect(code).toBe(1);
    const lines = stdout.trimEnd().split('\n');
    ctx.expect(lines[0]).toBe(`s3://${server.bucket} (${server.endpoint})`);
    ctx
      .expect(lines)
      .toContain(
        '  FAIL  encryption           default encryption is SSE-S3 (AES256); expected SSE-KMS (aws:kms or aws:kms:dsse)',
      );
    ctx.expect(lines).toContain('  PASS  object-lock          Object Lock is Enabled');
    ctx
      .expect(lines.at(-1))
      .toBe('FAILED: 1 of 6 checks failed; services refuse to start against this store');
  });

  it.for<[string, S3ServerOptions, string, string]>([
    [
      'Object Lock not enabled',
      { objectLock: false },
      'object-lock',
      'Object Lock is not enabled (the bucket has no Object Lock configuration); expected Enabled',
    ],
    [
      'versioning not enabled',
      { objectLock: false, versioning: false },
      'versioning',
      'versioning has never been enabled; expected Enabled',
    ],
    [
      'no default retention',
      { defaultRetention: null },
      'default-retention',
      'no default retention; expected COMPLIANCE of at least 1095 days (policy minimum)',
    ],
    [
      'a GOVERNANCE default retention',
      { defaultRetention: { mode: 'GOVERNANCE', days: 30 } },
      'default-retention',
      'default retention is GOVERNANCE 30 days; expected COMPLIANCE of at least 1095 days (policy minimum)',
    ],
    [
      "a default retention shorter than the policy's minimum",
      { defaultRetention: { mode: 'COMPLIANCE', days: 365 } },
      'default-retention',
      'default retention is COMPLIANCE 365 days; expected COMPLIANCE of at least 1095 days (policy minimum)',
    ],
    [
      'no Block Public Access',
      { publicAccessBlock: null },
      'public-access-block',
      `the bucket has no Block Public Access configuration; ${ALL_FOUR}`,
    ],
    [
      'Block Public Access partly off',
      {
        publicAccessBlock: {
          blockPublicAcls: true,
          ignorePublicAcls: true,
          blockPublicPolicy: false,
          restrictPublicBuckets: true,
        },
      },
      'public-access-block',
      `Block Public Access is incomplete: BlockPublicPolicy is off; ${ALL_FOUR}`,
    ],
    [
      'SSE-S3 (AES256) default encryption',
      { encryption: { algorithm: 'AES256' } },
      'encryption',
      'default encryption is SSE-S3 (AES256); expected SSE-KMS (aws:kms or aws:kms:dsse)',
    ],
    [
      'no default encryption',
      { encryption: null },
      'encryption',
      'no default encryption; expected SSE-KMS (aws:kms or aws:kms:dsse)',
    ],
    [
      'GetPublicAccessBlock denied',
      { deniedOperations: ['GetPublicAccessBlock'] },
      'public-access-block',
      `access denied to GetPublicAccessBlock (needs s3:GetBucketPublicAccessBlock); ${ALL_FOUR}`,
    ],
  ])('fails (exit 1) a bucket with %s', async ([, options, name, detail], ctx) => {
    const { code, report } = await checkJson(ctx, options);
    ctx.expect(code).toBe(1);
    ctx.expect(report.ok).toBe(false);
    ctx.expect(report.checks.find((c) => c.name === name)).toEqual({ name, status: 'fail', detail });
  });

  it('reports configured replication rules', async (ctx) => {
    const { code, report } = await checkJson(ctx, {
      replication: {
        role: 'arn:aws:iam::111122223333:role/holdfast-replication',
        rules: [{ id: 'dr', status: 'Enabled', destinationBucket: 'arn:aws:s3:::holdfast-dr' }],
      },
    });
    ctx.expect(code).toBe(0);
    ctx.expect(report.checks.at(-1)).toEqual({
      name: 'replication',
      status: 'pass',
      detail: '1 of 1 rule enabled: dr Enabled → arn:aws:s3:::holdfast-dr',
    });
  });

  it("compares the default retention with the minimum of HOLDFAST_RETENTION_POLICY's categories", async (ctx) => {
    const dir = await tempDir('holdfast-policy-');
    ctx.onTestFinished(() => dir.remove());
    const policy = join(dir.path, 'policy.json');
    await writeFile(policy, JSON.stringify({ categories: { default: '10y', 'email-marketing': '8y' } }));
    const { code, report } = await checkJson(ctx, {}, { HOLDFAST_RETENTION_POLICY: policy });
    ctx.expect(code).toBe(1);
    ctx
      .expect(report.checks.find((c) => c.name === 'default-retention')?.detail)
      .toBe(
        'default retention is COMPLIANCE 7 years (2555 days); expected COMPLIANCE of at least 2920 days (policy minimum)',
      );
  });

  it('holdfast run archiver refuses to start against a failing bucket, with the reasons in the log', async (ctx) => {
    const { env, cwd } = await bucket(ctx, { defaultRetention: { mode: 'GOVERNANCE', days: 30 } });
    // Never connected to: the preflight refuses before the archiver touches Redis.
    const { code, stdout } = await run(
      ['run', 'archiver'],
      { ...env, REDIS_URL: 'redis://127.0.0.1:9' },
      cwd,
    );
    ctx.expect(code).toBe(1);
    const fatal = stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { level: number; msg: string; code?: string; err?: string })
      .find((entry) => entry.level === 60);
    ctx
      .expect(fatal)
      .toMatchObject({ msg: 'archiver failed to start', code: 'HOLDFAST_ERR_STORE_CHECK_FAILED' });
    ctx
      .expect(fatal?.err)
      .toContain(
        'default-retention: default retention is GOVERNANCE 30 days; expected COMPLIANCE of at least 1095 days (policy minimum)',
      );
  });
});

describe('holdfast store check on other stores', () => {
  it('passes the local store with a warning that it is not WORM against root', async (ctx) => {
    const dir = await tempDir('holdfast-store-check-');
    ctx.onTestFinished(() => dir.remove());
    const { code, stdout } = await run(
      ['store', 'check', '--json'],
      { HOLDFAST_STORE: `local:${join(dir.path, 'store')}` },
      dir.path,
    );
    ctx.expect(code).toBe(0);
    const report = JSON.parse(stdout) as StoreCheckReport;
    ctx.expect(report.ok).toBe(true);
    ctx.expect(report.checks.find((c) => c.name === 'object-lock')).toMatchObject({
      status: 'warn',
      detail: ctx.expect.stringContaining('not WORM against root'),
    });
  });

  // A real S3-compatible server, when one is configured: HOLDFAST_TEST_S3_ENDPOINT and
  // HOLDFAST_TEST_S3_BUCKET, credentials and region from AWS_*. Its configuration is not ours to
  // know, so this checks that the report is whole and that the exit code follows it.
  it('reports on HOLDFAST_TEST_S3_ENDPOINT, exiting 1 exactly when a check fails', async (ctx) => {
    const endpoint = process.env.HOLDFAST_TEST_S3_ENDPOINT;
    const testBucket = process.env.HOLDFAST_TEST_S3_BUCKET;
    ctx.skip(
      !endpoint || !testBucket,
      'no real S3-compatible server configured (set HOLDFAST_TEST_S3_ENDPOINT and HOLDFAST_TEST_S3_BUCKET)',
    );
    const dir = await tempDir('holdfast-store-check-');
    ctx.onTestFinished(() => dir.remove());
    const passthrough = Object.fromEntries(
      ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_PROFILE']
        .filter((name) => process.env[name])
        .map((name) => [name, process.env[name]!]),
    );
    const { code, stdout, stderr } = await run(
      ['store', 'check', '--json'],
      { ...passthrough, HOLDFAST_STORE: `s3://${testBucket}`, HOLDFAST_S3_ENDPOINT: endpoint! },
      dir.path,
    );
    ctx.expect(stderr).toBe('');
    const report = JSON.parse(stdout) as StoreCheckReport;
    ctx.expect(report.checks.map((c) => c.name)).toEqual(CHECKS);
    ctx.expect(code).toBe(report.ok ? 0 : 1);
    for (const check of report.checks.filter((c) => c.status === 'fail')) {
      ctx.expect(check.detail).toMatch(/expected/);
    }
  });
});
