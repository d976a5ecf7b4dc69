import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RetentionPolicy } from '@holdfast/core';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_RECORD_CLASSES, defaultRetentionDays } from '../src/index.ts';
import type { Resource } from './template-helpers.ts';

const run = promisify(execFile);
const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const cdk = join(packageDir, 'node_modules', '.bin', 'cdk');
let outDir: string | undefined;

afterAll(async () => {
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

/** `unshare -n` runs the CLI in an empty network namespace, so it provably reaches nothing. */
async function noNetworkPrefix(): Promise<string[]> {
  try {
    await run('unshare', ['-n', 'true']);
    return ['unshare', '-n'];
  } catch {
    return [];
  }
}

describe('cdk synth (the AWS CDK CLI, offline, no account)', () => {
  it('synthesizes both stacks from cdk.json with no credentials and no network', async () => {
    outDir = await mkdtemp(join(tmpdir(), 'holdfast-cdk-synth-'));
    const prefix = await noNetworkPrefix();
    const argv = [
      ...prefix,
      cdk,
      'synth',
      '--no-notices',
      '--no-version-reporting',
      '--no-lookups',
      '-q',
      '-o',
      outDir,
    ];
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: outDir,
      CI: 'true',
      CDK_DISABLE_CLI_TELEMETRY: 'true',
      // No credentials, and no instance-metadata probe: the CLI then leaves the account unresolved.
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(outDir, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(outDir, 'no-aws-credentials'),
    };
    const { stdout, stderr } = await run(argv[0]!, argv.slice(1), { cwd: packageDir, env, timeout: 50_000 });
    expect(`${stdout}${stderr}`).toMatch(/Successfully synthesized/);

    const manifest = JSON.parse(await readFile(join(outDir, 'manifest.json'), 'utf8'));
    const stacks = Object.entries(manifest.artifacts as Record<string, { type: string; environment: string }>)
      .filter(([, a]) => a.type === 'aws:cloudformation:stack')
      .map(([id, a]) => [id, a.environment]);
    expect(stacks).toEqual(
      expect.arrayContaining([
        ['HoldfastArchiveReplica', 'aws://123456789012/us-west-2'],
        ['HoldfastArchive', 'aws://123456789012/us-east-1'],
      ]),
    );
    for (const stack of ['HoldfastArchive', 'HoldfastArchiveReplica']) {
      expect(existsSync(join(outDir, `${stack}.template.json`)), stack).toBe(true);
    }
    const template = JSON.parse(await readFile(join(outDir, 'HoldfastArchive.template.json'), 'utf8'));
    const lockedBuckets = Object.values(template.Resources as Record<string, Resource>).filter(
      (r) => r.Type === 'AWS::S3::Bucket' && r.Properties.ObjectLockEnabled,
    );
    expect(lockedBuckets).toHaveLength(DEFAULT_RECORD_CLASSES.length);

    // cdk.json points at the policy file Kubernetes mounts into the services: same retention both sides.
    const cdkJson = JSON.parse(await readFile(join(packageDir, 'cdk.json'), 'utf8'));
    const policy = await RetentionPolicy.load(join(packageDir, cdkJson.context.retentionPolicy));
    expect(policy.source).toMatch(/infra\/k8s\/base\/retention-policy\.yaml$/);
    for (const recordClass of DEFAULT_RECORD_CLASSES) {
      const bucket = lockedBuckets.find((b) =>
        String(b.Properties.BucketName).startsWith(`holdfast-${recordClass.name}-`),
      );
      expect(bucket?.Properties.ObjectLockConfiguration.Rule.DefaultRetention, recordClass.name).toEqual({
        Mode: 'COMPLIANCE',
        Days: defaultRetentionDays(policy, recordClass),
      });
    }
  });
});
