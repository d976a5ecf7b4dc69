import { writeFile } from 'node:fs/promises';
import { loadConfig } from '@holdfast/core';
import { checkStore, type ObjectHead, type StoreCheckReport } from '@holdfast/worm-store';
import type { Command } from 'commander';
import { loadPolicy, withStore } from './context.ts';
import { print } from './output.ts';

function describeHead(head: ObjectHead): Record<string, unknown> {
  return {
    key: head.key,
    versionId: head.versionId,
    size: head.size,
    sha256: head.sha256,
    contentType: head.contentType,
    mode: head.mode ?? null,
    retainUntil: head.retainUntil?.toISOString() ?? null,
    legalHold: head.legalHold,
    lastModified: head.lastModified.toISOString(),
    metadata: head.metadata,
  };
}

/** One line per check, then the verdict: what an operator reads before trusting a bucket. */
function describeStoreCheck(report: StoreCheckReport): string {
  const width = Math.max(...report.checks.map((c) => c.name.length));
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  const warned = report.checks.filter((c) => c.status === 'warn').length;
  const verdict = report.ok
    ? `OK: every required check passed${warned ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}`
    : `FAILED: ${failed} of ${report.checks.length} checks failed; services refuse to start against this store`;
  return [
    report.store,
    ...report.checks.map(
      (c) => `  ${c.status.toUpperCase().padEnd(4)}  ${c.name.padEnd(width)}  ${c.detail}`,
    ),
    verdict,
  ].join('\n');
}

/** `holdfast store head|ls|get|check`: read-only views of the archive for operators. */
export function registerStoreCommands(program: Command): void {
  const store = program.command('store').description('inspect the WORM store named by HOLDFAST_STORE');

  store
    .command('head')
    .description('show an object version: retention, legal hold, checksum')
    .argument('<key>')
    .option('--version-id <id>', 'a specific version (default: the current one)')
    .option('--json', 'machine-readable output')
    .action(async (key: string, opts: { versionId?: string; json?: boolean }) => {
      const head = await withStore((s) => s.head(key, { versionId: opts.versionId }));
      if (!head) {
        process.exitCode = 1;
        print(opts, { error: 'HOLDFAST_ERR_OBJECT_NOT_FOUND', key }, () => `no object at ${key}`);
        return;
      }
      print(opts, describeHead(head), (v) =>
        Object.entries(v)
          .map(([k, value]) => `${k.padEnd(13)} ${typeof value === 'object' ? JSON.stringify(value) : value}`)
          .join('\n'),
      );
    });

  store
    .command('ls')
    .description('list objects under a key prefix')
    .argument('[prefix]', 'key prefix', '')
    .option('--versions', 'list every version, delete markers included')
    .option('--json', 'machine-readable output')
    .action(async (prefix: string, opts: { versions?: boolean; json?: boolean }) => {
      const rows = await withStore(async (s) => {
        const out: Record<string, unknown>[] = [];
        if (opts.versions) {
          for await (const v of s.listVersions(prefix))
            out.push({ ...v, lastModified: v.lastModified.toISOString() });
        } else {
          for await (const o of s.list(prefix))
            out.push({ ...o, lastModified: o.lastModified.toISOString() });
        }
        return out;
      });
      print(opts, rows, (list) =>
        list.length === 0
          ? `nothing under "${prefix}"`
          : list
              .map(
                (r) =>
                  `${String(r.lastModified)}  ${String(r.size).padStart(9)}  ${String(r.key)}${opts.versions ? `  ${String(r.versionId)}${r.isLatest ? ' (latest)' : ''}` : ''}`,
              )
              .join('\n'),
      );
    });

  store
    .command('get')
    .description('write an object version to stdout or a file')
    .argument('<key>')
    .option('--version-id <id>', 'a specific version (default: the current one)')
    .option('-o, --out <file>', 'write to this file instead of stdout')
    .action(async (key: string, opts: { versionId?: string; out?: string }) => {
      const { body } = await withStore((s) => s.get(key, { versionId: opts.versionId }));
      if (opts.out) await writeFile(opts.out, body);
      else process.stdout.write(body);
    });

  store
    .command('check')
    .description(
      "preflight the store: Object Lock, versioning, default retention against the policy's minimum, " +
        'Block Public Access, SSE-KMS encryption, replication; exits 1 when a required check fails',
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const policy = await loadPolicy();
      const report = await checkStore(config.store, {
        s3Endpoint: config.s3Endpoint,
        region: config.region,
        minimumRetentionDays: policy.minimumDays(),
      });
      if (!report.ok) process.exitCode = 1;
      print(opts, report, describeStoreCheck);
    });
}
