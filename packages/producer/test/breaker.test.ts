import { ValidationError } from '@holdfast/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Breaker,
  BreakerOpenError,
  type BreakerState,
  BreakerTimeoutError,
  breakerOpenErrorOf,
  breakerSettingsFrom,
  createBreaker,
} from '../src/index.ts';

/** What the dependency throws: `outage` errors count, `rejected` ones (one bad request) do not. */
class DependencyError extends Error {
  readonly kind: 'outage' | 'rejected';
  constructor(kind: 'outage' | 'rejected') {
    super(`dependency ${kind}`);
    this.kind = kind;
  }
}
const isFailure = (e: unknown) => e instanceof DependencyError && e.kind === 'outage';
const failWith = (kind: 'outage' | 'rejected') => () => Promise.reject(new DependencyError(kind));
const ok = () => Promise.resolve('ok');

const created: Breaker[] = [];
function breaker(overrides: Partial<Parameters<typeof createBreaker>[0]> = {}): Breaker {
  const b = createBreaker({
    name: 'dep',
    service: 'test',
    volumeThreshold: 4,
    errorThresholdPercentage: 50,
    rollingWindowMs: 60_000,
    resetTimeoutMs: 100,
    isFailure,
    ...overrides,
  });
  created.push(b);
  return b;
}

function nextState(b: Breaker, state: BreakerState): Promise<void> {
  return new Promise((resolve) => {
    const stop = b.onStateChange((change) => {
      if (change.state === state) {
        stop();
        resolve();
      }
    });
  });
}

afterEach(() => {
  for (const b of created.splice(0)) b.shutdown();
});

describe('circuit breaker', () => {
  it('opens once at least the threshold percentage of at least volumeThreshold calls failed', async () => {
    const b = breaker();
    await expect(b.fire(ok)).resolves.toBe('ok');
    await expect(b.fire(failWith('outage'))).rejects.toThrow('dependency outage');
    await expect(b.fire(ok)).resolves.toBe('ok');
    expect(b.state).toBe('closed');
    // 4 calls, 2 failed: 50%, which is "at least 50".
    await expect(b.fire(failWith('outage'))).rejects.toThrow('dependency outage');
    expect(b.state).toBe('open');
    expect(b.opens).toBe(1);
    expect(b.retryAt!.getTime()).toBe(b.since.getTime() + 100);
  });

  it("opens at the thresholds a service's config sets (HOLDFAST_BREAKER_ERROR_PERCENT, _MIN_CALLS)", async () => {
    const settings = breakerSettingsFrom({
      breakerResetMs: 1000,
      breakerErrorPercent: 75,
      breakerMinCalls: 4,
    });
    expect(settings).toEqual({
      errorThresholdPercentage: 75,
      volumeThreshold: 4,
      resetTimeoutMs: 1000,
      rollingWindowMs: 500,
    });
    const b = breaker({ ...settings, rollingWindowMs: 60_000 });
    await expect(b.fire(ok)).resolves.toBe('ok');
    for (let i = 0; i < 2; i++) await expect(b.fire(failWith('outage'))).rejects.toThrow();
    await expect(b.fire(ok)).resolves.toBe('ok');
    // 4 calls, 2 failed: 50%, under 75.
    expect(b.state).toBe('closed');
    await expect(b.fire(failWith('outage'))).rejects.toThrow();
    await expect(b.fire(failWith('outage'))).rejects.toThrow();
    // 6 calls, 4 failed: 67%, still under 75; one more makes 5 of 7, 71%; then 6 of 8, 75%.
    expect(b.state).toBe('closed');
    await expect(b.fire(failWith('outage'))).rejects.toThrow();
    expect(b.state).toBe('closed');
    await expect(b.fire(failWith('outage'))).rejects.toThrow();
    expect(b.state).toBe('open');
  });

  it('does not open below the volume threshold, however many of those calls failed', async () => {
    const b = breaker({ volumeThreshold: 4 });
    for (let i = 0; i < 3; i++) await expect(b.fire(failWith('outage'))).rejects.toThrow();
    expect(b.state).toBe('closed');
  });

  it('never opens on errors isFailure does not count (a request the dependency refused)', async () => {
    const b = breaker();
    for (let i = 0; i < 20; i++)
      await expect(b.fire(failWith('rejected'))).rejects.toThrow('dependency rejected');
    expect(b.state).toBe('closed');
    expect(b.opens).toBe(0);
  });

  it('refuses calls while open with BreakerOpenError carrying when to come back, without calling', async () => {
    const b = breaker({ resetTimeoutMs: 60_000 });
    for (let i = 0; i < 4; i++) await expect(b.fire(failWith('outage'))).rejects.toThrow();
    let called = false;
    const refused = await b
      .fire(async () => {
        called = true;
      })
      .catch((e: unknown) => e);
    expect(called).toBe(false);
    expect(refused).toBeInstanceOf(BreakerOpenError);
    const error = refused as BreakerOpenError;
    expect(error.code).toBe('HOLDFAST_ERR_BREAKER_OPEN');
    expect(error).toMatchObject({ service: 'test', breaker: 'dep', state: 'open' });
    expect(error.retryAt).toEqual(b.retryAt);
    expect(error.retryAfterMs).toBeGreaterThan(0);
    expect(() => b.throwIfOpen()).toThrow(BreakerOpenError);
    // Found through the causes a service wraps it in.
    expect(breakerOpenErrorOf(new Error('wrapped', { cause: new Error('again', { cause: error }) }))).toBe(
      error,
    );
    expect(breakerOpenErrorOf(new Error('unrelated'))).toBeUndefined();
  });

  it('half-open: one probe goes through; its success closes the breaker', async () => {
    const b = breaker();
    const states: BreakerState[] = [];
    b.onStateChange((c) => states.push(c.state));
    for (let i = 0; i < 4; i++) await expect(b.fire(failWith('outage'))).rejects.toThrow();
    await nextState(b, 'half-open');
    expect(() => b.throwIfOpen()).not.toThrow();
    let release!: () => void;
    const probe = b.fire(() => new Promise<string>((resolve) => (release = () => resolve('probed'))));
    // The probe is in flight: every other call is refused, and told to look again soon.
    const other = await b.fire(ok).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(BreakerOpenError);
    expect((other as BreakerOpenError).state).toBe('half-open');
    expect(() => b.throwIfOpen()).toThrow(BreakerOpenError);
    release();
    await expect(probe).resolves.toBe('probed');
    expect(b.state).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
    await expect(b.fire(ok)).resolves.toBe('ok');
  });

  it('a probe that fails re-opens the breaker for another reset period', async () => {
    const b = breaker();
    for (let i = 0; i < 4; i++) await expect(b.fire(failWith('outage'))).rejects.toThrow();
    await nextState(b, 'half-open');
    await expect(b.fire(failWith('outage'))).rejects.toThrow('dependency outage');
    expect(b.state).toBe('open');
    expect(b.opens).toBe(2);
    await nextState(b, 'half-open');
    await expect(b.fire(ok)).resolves.toBe('ok');
    expect(b.state).toBe('closed');
  });

  it('a probe the dependency refused on its merits closes the breaker: it answered', async () => {
    const b = breaker();
    for (let i = 0; i < 4; i++) await expect(b.fire(failWith('outage'))).rejects.toThrow();
    await nextState(b, 'half-open');
    await expect(b.fire(failWith('rejected'))).rejects.toThrow('dependency rejected');
    expect(b.state).toBe('closed');
  });

  it('with timeoutMs, a call that does not settle in time fails with BreakerTimeoutError and counts', async () => {
    const b = breaker({ timeoutMs: 20, volumeThreshold: 1 });
    const never = () => new Promise<never>(() => {});
    const error = await b.fire(never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BreakerTimeoutError);
    expect((error as BreakerTimeoutError).code).toBe('HOLDFAST_ERR_BREAKER_TIMEOUT');
    expect(b.state).toBe('open');
  });

  it('refuses bad options with a ValidationError naming each field', () => {
    const bad = () =>
      createBreaker({
        name: 'Bad/Name',
        service: '',
        errorThresholdPercentage: 0,
        volumeThreshold: 0.5,
        rollingWindowMs: 5,
        resetTimeoutMs: -1,
        timeoutMs: 0,
        isFailure,
      });
    expect(bad).toThrow(ValidationError);
    try {
      bad();
    } catch (error) {
      expect((error as ValidationError).issues.map((i) => i.path)).toEqual([
        'name',
        'service',
        'errorThresholdPercentage',
        'volumeThreshold',
        'rollingWindowMs',
        'resetTimeoutMs',
        'timeoutMs',
      ]);
    }
  });
});
