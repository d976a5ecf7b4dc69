import { randomBytes } from 'node:crypto';
import {
  canonicalJson,
  deterministicEventId,
  type EventEnvelope,
  type HoldfastConfig,
  loadConfig,
  type MediaJobData,
  messageKey,
  newEvent,
  sha256Hex,
} from '@holdfast/core';
import type { ObjectStore } from '@holdfast/worm-store';
import { Job, type Queue } from 'bullmq';

export const ACCESS_TOKEN = 'EAAGtest0access0token0for0holdfast';
export const ACCOUNT_SID = `AC${'0123456789abcdef'.repeat(2)}`;
export const AUTH_TOKEN = 'twilio-auth-token-for-holdfast-tests';

/** Config as `loadConfig` reads it from the environment, pointed at the loopback servers. */
export function testConfig(env: Record<string, string>): Readonly<HoldfastConfig> {
  return loadConfig({
    HOLDFAST_MEDIA_ALLOWED_HOSTS: 'localhost,127.0.0.1',
    HOLDFAST_MEDIA_ALLOWED_NETWORKS: '127.0.0.0/8,::1/128',
    HOLDFAST_WHATSAPP_ACCESS_TOKEN: ACCESS_TOKEN,
    HOLDFAST_TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    HOLDFAST_TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    HOLDFAST_METRICS_PORT: '0',
    HOLDFAST_LOG_LEVEL: 'silent',
    ...env,
  });
}

/** An inbound message event as ingest builds it from a provider webhook. */
export function inboundMessage(options: {
  provider: 'whatsapp' | 'twilio';
  channel: 'sms' | 'whatsapp';
  occurredAt: Date;
  providerMessageId: string;
  media: MediaJobData['media'][];
}): EventEnvelope {
  const id = deterministicEventId(
    options.occurredAt,
    `${options.provider}:${options.providerMessageId}:inbound`,
  );
  return newEvent({
    id,
    type: 'message.received',
    occurredAt: options.occurredAt,
    project: 'acme',
    channel: options.channel,
    direction: 'inbound',
    subject: id,
    category: `${options.channel}-transactional`,
    data: {
      from: '+14155550100',
      to: '+14155550199',
      text: 'see attached',
      provider: options.provider,
      providerEventId: `${options.providerMessageId}:inbound`,
      providerMessageId: options.providerMessageId,
      media: options.media,
    },
  });
}

/**
 * Archive a parent message as the archiver does (canonical JSON under the message key schema)
 * and return a media job for it, as the archiver's `enqueueMedia` builds one.
 */
export async function archivedParent(
  store: ObjectStore,
  options: {
    provider: 'whatsapp' | 'twilio';
    channel?: 'sms' | 'whatsapp';
    media: MediaJobData['media'];
    legalHold?: boolean;
  },
): Promise<{ job: MediaJobData; event: EventEnvelope }> {
  const channel = options.channel ?? (options.provider === 'whatsapp' ? 'whatsapp' : 'sms');
  const sid =
    options.provider === 'whatsapp'
      ? `wamid.HBgL${randomBytes(12).toString('base64url')}`
      : `MM${randomBytes(16).toString('hex')}`;
  const event = inboundMessage({
    provider: options.provider,
    channel,
    occurredAt: new Date('2026-05-01T12:00:00.000Z'),
    providerMessageId: sid,
    media: [options.media],
  });
  const body = Buffer.from(canonicalJson(event));
  const sha256 = sha256Hex(body);
  const key = messageKey({
    channel,
    project: 'acme',
    direction: 'inbound',
    occurredAt: event.occurredAt,
    sha256,
    sid,
    ext: 'json',
  });
  const retainUntil = '2033-05-01T12:00:00.000Z';
  await store.put({
    key,
    body,
    sha256,
    contentType: 'application/json',
    retainUntil: new Date(retainUntil),
    ...(options.legalHold ? { legalHold: true } : {}),
    ifNoneMatch: true,
  });
  return {
    event,
    job: {
      eventId: event.id,
      project: 'acme',
      channel,
      provider: options.provider,
      messageKey: key,
      retainUntil,
      subject: event.subject,
      category: event.category,
      media: options.media,
    },
  };
}

/** Add a media job the way the archiver does (its retries use the worker's `holdfast` backoff). */
export async function addMediaJob(
  queue: Queue<MediaJobData>,
  data: MediaJobData,
  attempts = 3,
): Promise<string> {
  const jobId = `${data.eventId}-${data.media.index}`;
  await queue.add('fetch', data, { jobId, attempts, backoff: { type: 'holdfast' }, removeOnFail: false });
  return jobId;
}

/** Wait until the job completed or failed for good; returns it as Redis now has it. */
export async function settled(queue: Queue, jobId: string, timeoutMs = 60_000): Promise<Job> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // State first: a job read before it finished would carry no return value.
    const state = await queue.getJobState(jobId);
    if (state === 'completed' || state === 'failed') return (await Job.fromId(queue, jobId))!;
    if (Date.now() > deadline) throw new Error(`job ${jobId} is still ${state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Objects under a prefix, by key. */
export async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of store.list(prefix)) keys.push(entry.key);
  return keys;
}
