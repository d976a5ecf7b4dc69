import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type EmailPause,
  type ReputationContext,
  type ReputationThresholds,
  readPause,
  trackReputation,
} from '@holdfast/archiver';
import { type EventEnvelope, newEvent, RetentionPolicy } from '@holdfast/core';
import { startRedis, type TestRedis } from '@holdfast/testkit/redis';
import { tempDir } from '@holdfast/testkit/temp-dir';
import { LocalWormStore } from '@holdfast/worm-store';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from './support/run-cli.ts';

const MIN_SENDS = 20;
const thresholds: ReputationThresholds = {
  bounceRate: 0.05,
  complaintRate: 0.001,
  windowHours: 24,
  minSends: MIN_SENDS,
};

let seq = 0;
function sent(project: string): EventEnvelope {
  const providerMessageId = `0100019a-cli-${++seq}`;
  return newEvent({
    type: 'message.sent',
    occurredAt: new Date(),
    project,
    channel: 'email',
    direction: 'outbound',
    subject: `msg-${seq}`,
    category: 'email-transactional',
    data: { transport: 'ses', providerMessageId, attempt: 1 },
  });
}

function bounced(of: EventEnvelope, at = new Date()): EventEnvelope {
  const providerMessageId = of.data.providerMessageId as string;
  return newEvent({
    type: 'message.bounced',
    occurredAt: at,
    project: of.project,
    channel: 'email',
    direction: 'outbound',
    subject: `email:${providerMessageId}`,
    category: 'email-transactional',
    data: {
      sesType: 'Bounce',
      permanent: true,
      provider: 'ses',
      providerEventId: `${providerMessageId}:Bounce:${at.toISOString()}`,
      providerMessageId,
    },
  });
}

describe('holdfast pause', () => {
  let redis: TestRedis;
  let client: Redis;
  let dir: { path: string; remove(): Promise<void> };
  let env: NodeJS.ProcessEnv;
  const storeDir = () => join(dir.path, 'store');

  beforeEach(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = await tempDir('holdfast-pause-cli-');
    env = {
      PATH: process.env.PATH,
      HOLDFAST_STORE: `local:${storeDir()}`,
      REDIS_URL: redis.url,
      HOLDFAST_LOG_LEVEL: 'warn',
      HOLDFAST_REPUTATION_MIN_SENDS: String(MIN_SENDS),
    };
  });
  afterEach(async () => {
    client.disconnect();
    await redis.stop();
    await dir.remove();
  });

  /** What the archiver's hook does with each archived event, against the CLI's store. */
  async function track(events: EventEnvelope[]): Promise<void> {
    const store = await LocalWormStore.open({ dir: storeDir() });
    const ctx: ReputationContext = {
      redis: client,
      store,
      policy: RetentionPolicy.defaults(),
      thresholds,
    };
    try {
      for (const e of events) await trackReputation(ctx, e);
    } finally {
      await store.close();
    }
  }

  async function archived(type: string): Promise<Record<string, unknown>[]> {
    const store = await LocalWormStore.open({ dir: storeDir() });
    try {
      const out: Record<string, unknown>[] = [];
      for await (const o of store.list('records/audit-log-admin/')) {
        const doc = JSON.parse(Buffer.from((await store.get(o.key)).body).toString('utf8'));
        if (doc.type === type) out.push({ ...doc, key: o.key });
      }
      return out;
    } finally {
      await store.close();
    }
  }

  it('shows status, clears with an archived operator event first, and starts a fresh window', async () => {
    const none = await runCli(['pause', 'status'], env);
    expect(none).toMatchObject({ code: 0, stderr: '' });
    expect(none.stdout).toBe("no project's outbound email is paused\n");
    expect(JSON.parse((await runCli(['pause', 'status', '--json'], env)).stdout)).toEqual({ paused: [] });

    const messages = Array.from({ length: MIN_SENDS }, () => sent('acme'));
    await track([...messages, bounced(messages[0]!)]);
    // Not paused, and still its figures are shown.
    const flowing = await runCli(['pause', 'status', '--project', 'acme'], env);
    expect(flowing.code).toBe(0);
    expect(flowing.stdout).toMatch(/^acme: outbound email flows \(not paused\)/);
    expect(flowing.stdout).toMatch(/sends 20, hard bounces 1 \(5\.00%, limit 5\.00%\), complaints 0/);
    expect(
      JSON.parse((await runCli(['pause', 'status', '--project', 'acme', '--json'], env)).stdout),
    ).toMatchObject({
      project: 'acme',
      paused: false,
      pause: null,
      current: { sends: 20, bounces: 1, bounceRate: 0.05, exceeded: [] },
    });

    const oldBounces = [bounced(messages[1]!), bounced(messages[2]!)];
    await track(oldBounces);
    const pause = (await readPause(client, 'acme'))!;
    expect(pause).toMatchObject({ trigger: 'reputation', archived: true, exceeded: ['bounceRate'] });

    const status = await runCli(['pause', 'status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`acme: outbound email PAUSED since ${pause.since}`);
    expect(status.stdout).toContain('by system:reputation (reputation)');
    expect(status.stdout).toContain(
      'reason: hard-bounce rate 10.00% (2 of 20 sends) exceeds 5.00% over the last 24h',
    );
    // It paused at the second bounce; the third was counted while paused.
    expect(status.stdout).toContain('now:         sends 20, hard bounces 3 (15.00%, limit 5.00%)');
    expect(status.stdout).toContain(`recorded as ${pause.eventKey}`);
    expect(status.stdout).toContain('resume with: holdfast pause clear --project acme');
    const statusJson = JSON.parse((await runCli(['pause', 'status', '--json'], env)).stdout);
    expect(statusJson.paused).toHaveLength(1);
    expect(statusJson.paused[0]).toMatchObject({
      project: 'acme',
      pause: { eventId: pause.eventId, archived: true, clearing: false, figures: { sends: 20, bounces: 2 } },
      current: {
        sends: 20,
        bounces: 3,
        thresholds: { bounceRate: 0.05, complaintRate: 0.001, minSends: 20 },
      },
    });
    expect(statusJson.paused[0].pause.pending).toBeUndefined();

    // Who clears must be known; nothing is cleared otherwise.
    const anonymous = await runCli(['pause', 'clear', '--project', 'acme'], env);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/--actor: required \(or set HOLDFAST_ACTOR\)/);
    // The clear cannot be recorded (the store is not there): the pause stays.
    await writeFile(join(dir.path, 'not-a-dir'), 'x');
    const blocked = await runCli(['pause', 'clear', '--project', 'acme', '--actor', 'oncall@acme'], {
      ...env,
      HOLDFAST_STORE: `local:${join(dir.path, 'not-a-dir')}`,
    });
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(/^holdfast: /);
    expect((await readPause(client, 'acme'))?.eventId).toBe(pause.eventId);
    expect(await archived('reputation.cleared')).toEqual([]);

    const cleared = await runCli(
      ['pause', 'clear', '--project', 'acme', '--reason', 'list cleaned', '--json'],
      {
        ...env,
        HOLDFAST_ACTOR: 'oncall@acme',
      },
    );
    expect(cleared.stderr).toBe('');
    expect(cleared.code).toBe(0);
    const out = JSON.parse(cleared.stdout);
    expect(out).toMatchObject({
      project: 'acme',
      clearedBy: 'oncall@acme',
      cleared: { eventId: pause.eventId, since: pause.since },
      current: { sends: 0, bounces: 0 },
    });
    expect(await readPause(client, 'acme')).toBeUndefined();
    const events = await archived('reputation.cleared');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      key: out.eventKey,
      project: 'acme',
      category: 'audit-log-admin',
      data: {
        actor: 'oncall@acme',
        reason: 'list cleaned',
        pause: { eventId: pause.eventId, eventKey: pause.eventKey, pausedBy: 'system:reputation' },
        figures: { sends: 20, bounces: 3 },
      },
    });
    expect(out.current.window.freshSince).toBe(
      (events[0]!.data as { freshWindowFrom: string }).freshWindowFrom,
    );

    // The fresh window: the old bounces, processed again, count for nothing and pause nothing.
    await track([...oldBounces, bounced(messages[3]!, new Date(Date.parse(out.current.window.from) - 1000))]);
    expect(await readPause(client, 'acme')).toBeUndefined();
    const fresh = await runCli(['pause', 'status', '--project', 'acme'], env);
    expect(fresh.stdout).toMatch(/sends 0 \(a pause needs at least 20\), hard bounces 0/);
    expect(fresh.stdout).toContain(`fresh since the clear at ${out.current.window.freshSince}`);

    // Nothing left to clear.
    const again = await runCli(['pause', 'clear', '--project', 'acme', '--actor', 'oncall@acme'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/outbound email of project "acme" is not paused.*HOLDFAST_ERR_NOT_PAUSED/);
  });

  it('pauses by hand, archived with the actor, and refuses a second pause and bad arguments', async () => {
    const set = await runCli(
      ['pause', 'set', '--project', 'beta', '--reason', 'spam trap hits', '--actor', 'oncall@acme'],
      env,
    );
    expect(set.stderr).toBe('');
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(
      /^beta: outbound email paused since \S+; sends wait until the pause is cleared/,
    );
    const pause = (await readPause(client, 'beta')) as EmailPause;
    expect(pause).toMatchObject({
      trigger: 'manual',
      pausedBy: 'oncall@acme',
      reason: 'spam trap hits',
      archived: true,
      exceeded: [],
    });
    expect(set.stdout).toContain(`recorded as ${pause.eventKey}`);
    const events = await archived('reputation.paused');
    expect(events).toEqual([
      expect.objectContaining({
        id: pause.eventId,
        key: pause.eventKey,
        project: 'beta',
        data: expect.objectContaining({ actor: 'oncall@acme', trigger: 'manual', reason: 'spam trap hits' }),
      }),
    ]);
    // Other projects are untouched.
    expect(
      JSON.parse((await runCli(['pause', 'status', '--project', 'gamma', '--json'], env)).stdout).paused,
    ).toBe(false);

    const twice = await runCli(
      ['pause', 'set', '--project', 'beta', '--reason', 'again', '--actor', 'x'],
      env,
    );
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(
      /"beta" is already paused since .* by oncall@acme: spam trap hits.*HOLDFAST_ERR_ALREADY_PAUSED/,
    );
    expect(await archived('reputation.paused')).toHaveLength(1);

    const noReason = await runCli(['pause', 'set', '--project', 'beta', '--actor', 'x'], env);
    expect(noReason.code).toBe(1);
    expect(noReason.stderr).toMatch(/required option '--reason <text>' not specified/);
    const blankReason = await runCli(
      ['pause', 'set', '--project', 'delta', '--reason', '  ', '--actor', 'x'],
      env,
    );
    expect(blankReason.code).toBe(1);
    expect(blankReason.stderr).toMatch(/--reason: required/);
    const badProject = await runCli(['pause', 'status', '--project', 'Not/A/Project'], env);
    expect(badProject.code).toBe(1);
    expect(badProject.stderr).toMatch(
      /invalid command: --project: must be 1-63 of a-z.*HOLDFAST_ERR_VALIDATION/,
    );
    const noProject = await runCli(['pause', 'clear', '--actor', 'x'], env);
    expect(noProject.code).toBe(1);
    expect(noProject.stderr).toMatch(/required option '--project <project>' not specified/);
    const noRedis = await runCli(['pause', 'status'], { ...env, REDIS_URL: '' });
    expect(noRedis.code).toBe(1);
    expect(noRedis.stderr).toMatch(/REDIS_URL: required/);

    const cleared = await runCli(['pause', 'clear', '--project', 'beta', '--actor', 'lead@acme'], env);
    expect(cleared.code).toBe(0);
    expect(cleared.stdout).toMatch(/^beta: outbound email resumed \(was paused since \S+ by oncall@acme\)/);
    expect(cleared.stdout).toMatch(/an automatic pause needs 20 new sends first/);
    expect((await archived('reputation.cleared'))[0]).toMatchObject({
      data: { actor: 'lead@acme', reason: null, pause: { pausedBy: 'oncall@acme', trigger: 'manual' } },
    });
  });

  it('shows a pause key set by hand to a non-record as a pause whose record is unreadable', async () => {
    await client.set('holdfast:pause:email:beta', 'paused');
    const status = await runCli(['pause', 'status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^beta: outbound email PAUSED by a key whose record is unreadable/);
    expect(status.stdout).toContain('reason: unreadable record (not JSON)');
    expect(status.stdout).toContain('resume with: holdfast pause clear --project beta');
    expect(status.stdout).not.toMatch(/NaN|undefined/);
  });
});
