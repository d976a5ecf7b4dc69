import { hostname } from 'node:os';
import { createLogger } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BREAKER_STATES_KEY,
  type Breaker,
  type BreakerStatePublisher,
  createBreaker,
  type OpsServer,
  publishBreakerStates,
  readBreakerStates,
  registerBreakerMetrics,
  startOpsServer,
} from '../src/index.ts';

const log = createLogger({ name: 'breaker-states-test', level: 'silent' });
const outage = () => Promise.reject(new Error('down'));

function breaker(name: string, service = 'sender'): Breaker {
  return createBreaker({
    name,
    service,
    volumeThreshold: 1,
    errorThresholdPercentage: 50,
    rollingWindowMs: 1000,
    resetTimeoutMs: 60_000,
    isFailure: () => true,
  });
}

describe('breaker states for holdfast status and /metrics', () => {
  let redis: TestRedis;
  let raw: Redis;
  let breakers: Breaker[] = [];
  let publisher: BreakerStatePublisher | undefined;
  let ops: OpsServer | undefined;

  beforeEach(async () => {
    redis = await startRedis();
    raw = new Redis(redis.url, { maxRetriesPerRequest: null });
  });

  afterEach(async () => {
    await publisher?.close();
    await ops?.close();
    for (const b of breakers) b.shutdown();
    publisher = ops = undefined;
    breakers = [];
    raw.disconnect();
    await redis.stop();
  });

  it('publishes each breaker under <service>/<breaker>/<host>:<pid> on every change, and removes them on close', async () => {
    const sms = breaker('sms');
    const email = breaker('email');
    breakers = [sms, email];
    publisher = publishBreakerStates({ redis: raw, breakers, log, instance: 'host-a:41' });
    await publisher.flush();
    const before = await readBreakerStates(raw);
    expect(before.map((e) => [e.service, e.breaker, e.instance, e.state])).toEqual([
      ['sender', 'email', 'host-a:41', 'closed'],
      ['sender', 'sms', 'host-a:41', 'closed'],
    ]);

    await sms.fire(outage).catch(() => {});
    expect(sms.state).toBe('open');
    await publisher.flush();
    const fields = await raw.hgetall(BREAKER_STATES_KEY);
    expect(Object.keys(fields).sort()).toEqual(['sender/email/host-a:41', 'sender/sms/host-a:41']);
    const record = JSON.parse(fields['sender/sms/host-a:41']!);
    expect(record).toEqual({
      service: 'sender',
      breaker: 'sms',
      state: 'open',
      since: sms.since.toISOString(),
      updatedAt: expect.any(String),
    });
    expect(Date.parse(record.updatedAt)).toBeGreaterThanOrEqual(sms.since.getTime());

    await publisher.close();
    publisher = undefined;
    expect(await raw.hgetall(BREAKER_STATES_KEY)).toEqual({});
  });

  it('names the instance by host and pid by default, and keeps it fresh every refreshMs', async () => {
    const store = breaker('store', 'archiver');
    breakers = [store];
    publisher = publishBreakerStates({ redis: raw, breakers, log, refreshMs: 20 });
    const field = `archiver/store/${hostname()}:${process.pid}`;
    const first = JSON.parse((await waitForField(raw, field))!).updatedAt as string;
    for (;;) {
      const now = JSON.parse((await raw.hget(BREAKER_STATES_KEY, field))!).updatedAt as string;
      if (now !== first) break;
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  it('readers ignore entries not refreshed for a minute; a new publisher deletes long-dead ones', async () => {
    const now = new Date('2026-11-20T12:00:00.000Z');
    const entry = (state: string, updatedAt: string) =>
      JSON.stringify({
        service: 'archiver',
        breaker: 'store',
        state,
        since: '2026-11-20T11:00:00.000Z',
        updatedAt,
      });
    await raw.hset(BREAKER_STATES_KEY, {
      'archiver/store/fresh:1': entry('open', '2026-11-20T11:59:30.000Z'),
      'archiver/store/stale:2': entry('open', '2026-11-20T11:58:59.000Z'),
      'archiver/store/garbled:3': '{not json',
    });
    const read = await readBreakerStates(raw, { now });
    expect(read).toEqual([
      {
        service: 'archiver',
        breaker: 'store',
        instance: 'fresh:1',
        state: 'open',
        since: '2026-11-20T11:00:00.000Z',
        updatedAt: '2026-11-20T11:59:30.000Z',
      },
    ]);

    // Real time is long past those dates: a publisher starting now prunes all three.
    breakers = [breaker('sms')];
    publisher = publishBreakerStates({ redis: raw, breakers, log, instance: 'host-b:7' });
    for (;;) {
      const fields = Object.keys(await raw.hgetall(BREAKER_STATES_KEY));
      if (fields.length === 1) {
        expect(fields).toEqual(['sender/sms/host-b:7']);
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  });

  it('exports holdfast_breaker_state and holdfast_breaker_opens_total on the ops server', async () => {
    const sms = breaker('sms');
    const whatsapp = breaker('whatsapp');
    breakers = [sms, whatsapp];
    ops = await startOpsServer({ port: 0, host: '127.0.0.1', queues: [], checks: {}, log });
    const stop = registerBreakerMetrics(ops.registry, breakers);
    const metrics = async () => (await fetch(`${ops!.url}/metrics`)).text();

    let text = await metrics();
    expect(text).toContain('holdfast_breaker_state{service="sender",breaker="sms"} 0');
    expect(text).toContain('holdfast_breaker_opens_total{service="sender",breaker="sms"} 0');

    await sms.fire(outage).catch(() => {});
    text = await metrics();
    expect(text).toContain('holdfast_breaker_state{service="sender",breaker="sms"} 2');
    expect(text).toContain('holdfast_breaker_state{service="sender",breaker="whatsapp"} 0');
    expect(text).toContain('holdfast_breaker_opens_total{service="sender",breaker="sms"} 1');
    expect(text).toContain('# TYPE holdfast_breaker_opens_total counter');

    // Another service on the same registry (all services in one process) adds its breakers.
    const store = breaker('store', 'archiver');
    breakers.push(store);
    const stopStore = registerBreakerMetrics(ops.registry, [store]);
    text = await metrics();
    expect(text).toContain('holdfast_breaker_state{service="archiver",breaker="store"} 0');
    expect(text).toContain('holdfast_breaker_state{service="sender",breaker="sms"} 2');
    stopStore();
    stop();
    expect(await metrics()).not.toContain('holdfast_breaker_state{');
  });
});

async function waitForField(raw: Redis, field: string): Promise<string> {
  for (;;) {
    const value = await raw.hget(BREAKER_STATES_KEY, field);
    if (value) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
}
