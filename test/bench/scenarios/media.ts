import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  canonicalJson,
  deterministicEventId,
  type MediaJobData,
  messageKey,
  newEvent,
  QUEUE_PREFIX,
  QUEUES,
  sha256Hex,
} from '@holdfast/core';
import { generatedSha256, type MediaServer, startMediaServer } from '@holdfast/testkit/media-server';
import { startRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore } from '@holdfast/worm-store';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { type ChildService, startChild } from '../lib/children.ts';
import { figure, round } from '../lib/figures.ts';
import { sleep } from '../lib/load.ts';
import { RssSampler, resetPeakRss, statusKiB } from '../lib/rss.ts';
import type { BenchContext, Scenario } from '../lib/types.ts';

/** The issue says MB: sizes, growth and throughput here are decimal megabytes (10^6 bytes). */
const MB = 1_000_000;
const MiB = 1024 * 1024;
const ACCESS_TOKEN = 'bench0whatsapp0access0token';
const WARM_UP_BYTES = 4 * MB;
/** Idle time after the warm-up, sampled: the RSS the growth is measured from. */
const IDLE_MS = 1_000;
const SAMPLE_MS = 250;
const TARGET_GROWTH_MB = 64;

export const mediaBytes = (ctx: BenchContext): number => (ctx.quick ? 20 * MB : 200 * MB);

/** What one download did to one process's memory, and how long it took. */
interface DownloadMeasurement {
  /** Mean VmRSS over the idle second after the warm-up (MiB). */
  idleRssMiB: number;
  /** Highest of the VmRSS samples during the download and of VmHWM over it (MiB). */
  peakRssMiB: number;
  /** peak - idle, in MB (the figure). */
  growthMB: number;
  /** Whether VmHWM was reset before the download (else it counts only if it rose during it). */
  peakReset: boolean;
  /** VmHWM after the download (MiB). */
  vmHwmMiB: number | undefined;
  /** VmRSS every 250 ms during the download (MiB). */
  samplesMiB: number[];
  /** The download's own time (ms), as the side measured says (see each caller). */
  ms: number;
  mbPerSecond: number;
}

/**
 * Samples `pid` idle for a second (the warmed-up baseline), then while `download` runs: VmRSS
 * every 250 ms, and VmHWM (reset just before, so it is the peak of the download alone and also
 * catches a spike between two samples).
 */
async function measureDownload(
  pid: number,
  size: number,
  download: () => Promise<{ ms: number }>,
): Promise<DownloadMeasurement> {
  const idle = new RssSampler({ p: pid }).start(SAMPLE_MS);
  await sleep(IDLE_MS);
  const idleStats = idle.stop().p;
  if (!idleStats) throw new Error(`process ${pid} is gone`);
  const peakReset = resetPeakRss(pid);
  const hwmBefore = statusKiB(pid, 'VmHWM');
  const sampler = new RssSampler({ p: pid }).start(SAMPLE_MS);
  let ms: number;
  try {
    ({ ms } = await download());
  } finally {
    sampler.stop();
  }
  const samplesMiB = sampler.series().p ?? [];
  const hwmAfter = statusKiB(pid, 'VmHWM');
  const hwmMiB = hwmAfter === undefined ? undefined : hwmAfter / 1024;
  const hwmCounts = hwmAfter !== undefined && (peakReset || hwmAfter > (hwmBefore ?? 0));
  const peakRssMiB = Math.max(...samplesMiB, hwmCounts ? hwmMiB! : 0);
  return {
    idleRssMiB: idleStats.meanMiB,
    peakRssMiB: round(peakRssMiB),
    growthMB: round(((peakRssMiB - idleStats.meanMiB) * MiB) / MB),
    peakReset,
    vmHwmMiB: hwmMiB === undefined ? undefined : round(hwmMiB),
    samplesMiB,
    ms: Math.round(ms),
    mbPerSecond: round(size / MB / (ms / 1000)),
  };
}

/**
 * An inbound WhatsApp message with one attachment, archived as the archiver would (canonical JSON
 * under the message key schema), and the media job the archiver would enqueue for it: the media
 * fetcher reads the parent's retention and hold from the store.
 */
async function archivedParent(store: LocalWormStore, mediaId: string): Promise<MediaJobData> {
  const occurredAt = new Date();
  const wamid = `wamid.BENCH${randomBytes(12).toString('hex')}`;
  const id = deterministicEventId(occurredAt, `whatsapp:${wamid}:inbound`);
  const event = newEvent({
    id,
    type: 'message.received',
    occurredAt,
    project: 'bench',
    channel: 'whatsapp',
    direction: 'inbound',
    subject: id,
    category: 'whatsapp-transactional',
    data: {
      from: '+14155550100',
      to: '+14155550199',
      text: 'see attached',
      provider: 'whatsapp',
      providerEventId: `${wamid}:inbound`,
      providerMessageId: wamid,
      media: [{ mediaId, index: 0 }],
    },
  });
  const body = Buffer.from(canonicalJson(event));
  const sha256 = sha256Hex(body);
  const key = messageKey({
    channel: 'whatsapp',
    project: 'bench',
    direction: 'inbound',
    occurredAt: event.occurredAt,
    sha256,
    sid: wamid,
    ext: 'json',
  });
  const retainUntil = new Date(occurredAt.getTime() + 7 * 365 * 86_400_000);
  await store.put({ key, body, sha256, contentType: 'application/json', retainUntil, ifNoneMatch: true });
  return {
    eventId: event.id,
    project: 'bench',
    channel: 'whatsapp',
    provider: 'whatsapp',
    messageKey: key,
    retainUntil: retainUntil.toISOString(),
    subject: event.subject,
    category: event.category,
    media: { mediaId, index: 0 },
  };
}

/** Adds the job as the archiver does (job id `<eventId>-<index>`), one attempt: a failure fails the run. */
async function fetchMedia(queue: Queue<MediaJobData>, data: MediaJobData, timeoutMs: number): Promise<Job> {
  const jobId = `${data.eventId}-${data.media.index}`;
  await queue.add('fetch', data, { jobId, attempts: 1, removeOnFail: false });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // State first: a job read before it finished would carry no return value.
    const state = await queue.getJobState(jobId);
    if (state === 'completed' || state === 'failed') {
      const job = (await Job.fromId(queue, jobId))!;
      if (state === 'failed') throw new Error(`media job ${jobId} failed: ${job.failedReason}`);
      return job;
    }
    if (Date.now() > deadline) throw new Error(`media job ${jobId} is still ${state} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/** The blob file of one version in the local store (`objects/<key segments>/@<versionId>.blob`). */
async function blobFile(storeDir: string, versionId: string): Promise<string> {
  const root = join(storeDir, 'objects');
  const name = `@${versionId}.blob`;
  const found = (await readdir(root, { recursive: true })).find((entry) => entry.endsWith(`/${name}`));
  if (!found) throw new Error(`no ${name} under ${root}`);
  return join(root, found);
}

interface MediaResult {
  key: string;
  versionId: string;
  sha256: string;
  size: number;
}

/**
 * Scenario 5 (media part): the media fetcher's memory while it streams one large WhatsApp media
 * file (Graph API metadata, then the download with the bearer token) from a loopback HTTPS server
 * into the local WORM store. Baseline: a fresh process doing a plain `fetch()` of the same URL
 * piped to a file, the physical floor of the download. Both are warmed up with a small file first.
 */
async function run(ctx: BenchContext) {
  const size = mediaBytes(ctx);
  // The bytes are generated; their hash is known before a byte is sent, and checked at the end.
  const expected = generatedSha256(size, 'bench-media');
  const redis = await startRedis();
  const server: MediaServer = await startMediaServer();
  const dir = await tempDir('holdfast-bench-media-');
  const storeDir = join(dir.path, 'store');
  const logDir = join(dir.path, 'logs');
  const caFile = join(dir.path, 'media-ca.pem');
  await writeFile(caFile, server.ca);
  const children: ChildService[] = [];
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue<MediaJobData>(QUEUES.media, { connection, prefix: QUEUE_PREFIX });
  let store: LocalWormStore | undefined;
  try {
    const warm = server.whatsappMedia({
      mediaId: 'bench-warm-up',
      accessToken: ACCESS_TOKEN,
      body: { size: WARM_UP_BYTES, seed: 'bench-warm-up', contentType: 'video/mp4' },
    });
    const big = server.whatsappMedia({
      mediaId: 'bench-media',
      accessToken: ACCESS_TOKEN,
      body: { size, seed: 'bench-media', contentType: 'video/mp4' },
      reportedSha256: expected,
    });
    const profile = ctx.profileDir ? { profileDir: ctx.profileDir } : {};

    // 1. The media fetcher, as deployed: its own process, config from the environment.
    const fetcher = await startChild({
      name: 'media-fetcher',
      role: 'media-fetcher',
      env: {
        REDIS_URL: redis.url,
        HOLDFAST_STORE: `local:${storeDir}`,
        HOLDFAST_SPOOL_DIR: join(dir.path, 'spool'),
        HOLDFAST_MEDIA_ALLOWED_HOSTS: 'localhost,127.0.0.1',
        HOLDFAST_MEDIA_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128',
        HOLDFAST_MEDIA_MAX_BYTES: String(2 * size),
        HOLDFAST_MEDIA_TIMEOUT_MS: String(15 * 60_000),
        HOLDFAST_WHATSAPP_ACCESS_TOKEN: ACCESS_TOKEN,
        HOLDFAST_WHATSAPP_GRAPH_URL: server.origin,
        HOLDFAST_LOG_LEVEL: process.env.HOLDFAST_BENCH_LOG_LEVEL ?? 'info',
        HOLDFAST_METRICS_PORT: '0',
        // The loopback server's self-signed certificate, trusted as a deployment would a private CA.
        NODE_EXTRA_CA_CERTS: caFile,
      },
      logDir,
      ...profile,
    });
    children.push(fetcher);
    store = await LocalWormStore.open({ dir: storeDir });
    const timeoutMs = 15 * 60_000;
    ctx.log(`media: media fetcher warm-up (${WARM_UP_BYTES / MB} MB), then ${size / MB} MB`);
    const warmed = await fetchMedia(queue, await archivedParent(store, 'bench-warm-up'), timeoutMs);
    if ((warmed.returnvalue as MediaResult).sha256 !== generatedSha256(WARM_UP_BYTES, 'bench-warm-up')) {
      throw new Error('the warm-up media was archived with the wrong hash');
    }
    const bigJob = await archivedParent(store, 'bench-media');
    let job: Job | undefined;
    let wallMs = 0;
    const holdfast = await measureDownload(fetcher.pid, size, async () => {
      const t0 = performance.now();
      job = await fetchMedia(queue, bigJob, timeoutMs);
      wallMs = performance.now() - t0;
      // The worker's own time for the job: Graph API metadata, download + hash to a temp file,
      // archive (copy into the store, verified and fsynced), sidecar, `media.captured` spooled.
      return { ms: job.finishedOn! - job.processedOn! };
    });
    await fetcher.stop();

    // A fast wrong answer must not pass: the stored bytes themselves are hashed again here.
    const result = job!.returnvalue as MediaResult;
    const head = await store.head(result.key);
    const storedSha256 = await sha256OfFile(await blobFile(storeDir, result.versionId));
    if (
      result.sha256 !== expected ||
      result.size !== size ||
      head?.sha256 !== expected ||
      head.size !== size ||
      head.mode !== 'COMPLIANCE' ||
      storedSha256 !== expected
    ) {
      throw new Error(
        `archived media does not match the served bytes: expected ${size} bytes sha256 ${expected}, ` +
          `job said ${result.size} ${result.sha256}, store head ${head?.size} ${head?.sha256} ${head?.mode}, ` +
          `stored blob hashes to ${storedSha256}`,
      );
    }

    // 2. The floor: a fresh process, a plain fetch() of the same URL to a file, same warm-up.
    ctx.log(
      `media: baseline, plain fetch() to a file (${WARM_UP_BYTES / MB} MB warm-up, then ${size / MB} MB)`,
    );
    const plain = await startChild({
      name: 'plain-fetch',
      role: 'plain-fetch',
      env: { NODE_EXTRA_CA_CERTS: caFile },
      logDir,
      ...profile,
    });
    children.push(plain);
    const headers = { authorization: `Bearer ${ACCESS_TOKEN}` };
    const warmPath = join(dir.path, 'plain-warm-up.bin');
    await plain.request({ type: 'fetch', url: warm.downloadUrl, headers, path: warmPath });
    const bigPath = join(dir.path, 'plain-media.bin');
    let fsyncMs = 0;
    const baseline = await measureDownload(plain.pid, size, async () => {
      const r = await plain.request<{ bytes: number; ms: number; fsyncMs: number }>({
        type: 'fetch',
        url: big.downloadUrl,
        headers,
        path: bigPath,
      });
      if (r.bytes !== size) throw new Error(`the baseline fetched ${r.bytes} bytes, not ${size}`);
      fsyncMs = r.fsyncMs;
      return r;
    });
    await plain.stop();
    const baselineSha256 = await sha256OfFile(bigPath);
    if (baselineSha256 !== expected) throw new Error(`the baseline's file hashes to ${baselineSha256}`);
    await rm(bigPath, { force: true });

    const mb = size / MB;
    return {
      figures: [
        figure(
          `media-fetcher peak RSS growth, ${mb} MB WhatsApp media`,
          holdfast.growthMB,
          'MB',
          { name: 'plain fetch() to a file, growth', value: baseline.growthMB },
          { kind: 'below-value', limit: TARGET_GROWTH_MB, unit: 'MB' },
        ),
        figure(`media-fetcher MB/s (download + hash + archive, ${mb} MB)`, holdfast.mbPerSecond, 'MB/s', {
          name: 'plain fetch() to a file',
          value: baseline.mbPerSecond,
        }),
        figure('media-fetcher RSS after warm-up', holdfast.idleRssMiB, 'MiB', {
          name: 'plain fetch() process after warm-up',
          value: baseline.idleRssMiB,
        }),
      ],
      details: {
        bytes: size,
        warmUpBytes: WARM_UP_BYTES,
        sha256: expected,
        archived: { key: result.key, versionId: result.versionId, storedSha256 },
        holdfast: { ...holdfast, queueToCompletedMs: Math.round(wallMs) },
        baseline: { ...baseline, fsyncAfterMs: Math.round(fsyncMs) },
        sampleIntervalMs: SAMPLE_MS,
        note:
          'growth = peak (max of VmRSS samples and VmHWM reset before the download) - mean idle VmRSS ' +
          'after the warm-up, in MB (10^6 bytes); media-fetcher ms = job processedOn..finishedOn; ' +
          'baseline ms = fetch() call .. file closed, its fsync timed apart (fsyncAfterMs)',
      },
    };
  } finally {
    for (const child of children.reverse()) await child.stop().catch(() => {});
    await store?.close();
    await queue.close();
    connection.disconnect();
    await server.close();
    await redis.stop();
    await dir.remove();
  }
}

export const mediaScenario: Scenario = {
  id: 'media',
  number: 5,
  title: 'Memory: media-fetcher RSS growth streaming a 200 MB file (target < 64 MB)',
  baseline:
    'a plain fetch() of the same URL piped to a file in a fresh process (RSS growth and MB/s), after the same warm-up',
  run,
};
