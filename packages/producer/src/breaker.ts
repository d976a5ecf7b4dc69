import { ValidationError, type ValidationIssue } from '@holdfast/core';
import CircuitBreaker from 'opossum';
import { BreakerOpenError, BreakerTimeoutError } from './errors.ts';

/** `half-open`: the breaker lets one probe call through; its outcome closes or re-opens it. */
export type BreakerState = 'closed' | 'half-open' | 'open';

/** When a breaker opens and how long it stays open. Every field has a default. */
export interface BreakerSettings {
  /**
   * The breaker opens when at least this percentage of the calls in the rolling window failed
   * (failures as `isFailure` counts them).
   * @defaultValue 50
   */
  errorThresholdPercentage?: number;
  /** It never opens on fewer calls than this in the rolling window. @defaultValue 10 */
  volumeThreshold?: number;
  /**
   * The rolling window the percentage is counted over. Keep it shorter than `resetTimeoutMs`,
   * so the failures that opened the breaker have left the window when its probe closes it.
   * @defaultValue 10000
   */
  rollingWindowMs?: number;
  /** How long it stays open before one probe call is let through. @defaultValue 30000 */
  resetTimeoutMs?: number;
  /**
   * Count a call still unsettled after this long as failed (the caller gets BreakerTimeoutError;
   * the call itself is not cancelled). Off by default: every Holdfast client has its own timeout,
   * which knows what an unanswered call means.
   * @defaultValue undefined (no timeout)
   */
  timeoutMs?: number;
}

export interface BreakerOptions extends BreakerSettings {
  /** The dependency, e.g. `sms`, `store`, `download-twilio`: lowercase letters, digits, `.`, `_`, `-`. */
  name: string;
  /** The service that calls it, e.g. `sender` (same form). */
  service: string;
  /**
   * Whether an error says the dependency is failing (timeouts, 5xx, throttling, connection
   * errors), as opposed to refusing one request (an invalid number, an existing object): only
   * the former count towards opening the breaker.
   */
  isFailure(error: unknown): boolean;
}

/** A state change, as `onStateChange` listeners receive it. */
export interface BreakerStateChange {
  breaker: Breaker;
  state: BreakerState;
  previous: BreakerState;
  since: Date;
}

export const BREAKER_DEFAULTS: Readonly<Required<Omit<BreakerSettings, 'timeoutMs'>>> = Object.freeze({
  errorThresholdPercentage: 50,
  volumeThreshold: 10,
  rollingWindowMs: 10_000,
  resetTimeoutMs: 30_000,
});

/**
 * The breaker settings a service's config asks for (`HOLDFAST_BREAKER_RESET_MS`,
 * `HOLDFAST_BREAKER_ERROR_PERCENT`, `HOLDFAST_BREAKER_MIN_CALLS`); the rolling window stays
 * shorter than the reset, so the failures that opened a breaker are gone from the window when its
 * probe closes it.
 */
export function breakerSettingsFrom(config: {
  breakerResetMs: number;
  breakerErrorPercent: number;
  breakerMinCalls: number;
}): BreakerSettings {
  return {
    errorThresholdPercentage: config.breakerErrorPercent,
    volumeThreshold: config.breakerMinCalls,
    resetTimeoutMs: config.breakerResetMs,
    rollingWindowMs: Math.min(
      BREAKER_DEFAULTS.rollingWindowMs,
      Math.max(100, Math.floor(config.breakerResetMs / 2)),
    ),
  };
}

/** While a probe is in flight other calls are refused; they look again after at most this long. */
const PROBE_RECHECK_MS = 1000;
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

type Call = () => Promise<unknown>;

/**
 * A circuit breaker around one external dependency (opossum underneath). Calls go through
 * `fire`; when enough of them fail the breaker opens and refuses calls at once with
 * BreakerOpenError (which says when to come back) until `resetTimeoutMs` has passed; then it is
 * half-open and lets one probe call through: success closes it, failure opens it again.
 */
export class Breaker {
  readonly name: string;
  readonly service: string;
  readonly settings: Readonly<
    Required<Omit<BreakerSettings, 'timeoutMs'>> & { timeoutMs: number | undefined }
  >;
  readonly #circuit: CircuitBreaker<[Call], unknown>;
  readonly #listeners = new Set<(change: BreakerStateChange) => void>();
  #state: BreakerState = 'closed';
  #since = new Date();
  #retryAt: Date | undefined;
  #opens = 0;

  constructor(options: BreakerOptions) {
    const settings = resolveSettings(options);
    this.name = options.name;
    this.service = options.service;
    this.settings = settings;
    const isFailure = options.isFailure;
    this.#circuit = new CircuitBreaker<[Call], unknown>((call: Call) => call(), {
      name: `${options.service}/${options.name}`,
      timeout: settings.timeoutMs ?? false,
      resetTimeout: settings.resetTimeoutMs,
      // opossum opens above the percentage; the setting is "at least".
      errorThresholdPercentage: settings.errorThresholdPercentage - 1e-9,
      volumeThreshold: settings.volumeThreshold,
      rollingCountTimeout: settings.rollingWindowMs,
      rollingCountBuckets: 10,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      // opossum counts a filtered error as a success: the dependency answered.
      errorFilter: (error: Error) => !counts(error, isFailure),
    });
    this.#circuit.on('open', () => this.#enter('open'));
    this.#circuit.on('halfOpen', () => this.#enter('half-open'));
    this.#circuit.on('close', () => this.#enter('closed'));
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** When the breaker entered its current state. */
  get since(): Date {
    return this.#since;
  }

  /** While open: when it turns half-open and lets a probe through. */
  get retryAt(): Date | undefined {
    return this.#retryAt;
  }

  /** How many times it has opened (re-opening after a failed probe counts). */
  get opens(): number {
    return this.#opens;
  }

  /** Run `call` through the breaker; BreakerOpenError at once when the breaker refuses it. */
  async fire<T>(call: () => Promise<T>): Promise<T> {
    try {
      return (await this.#circuit.fire(call)) as T;
    } catch (error) {
      if (error instanceof Error && CircuitBreaker.isOurError(error)) {
        const code = (error as { code?: unknown }).code;
        if (code === 'EOPENBREAKER') throw this.#refusal();
        if (code === 'ETIMEDOUT')
          throw new BreakerTimeoutError(this.service, this.name, this.settings.timeoutMs ?? 0);
      }
      throw error;
    }
  }

  /**
   * Throw the BreakerOpenError that `fire` would throw now, without calling anything: for work
   * that is only worth starting if the dependency can be called (e.g. before recording an
   * attempt, or before a download whose bytes would go to an open store).
   */
  throwIfOpen(): void {
    if (this.#state === 'open' || (this.#state === 'half-open' && !this.#circuit.pendingClose)) {
      throw this.#refusal();
    }
  }

  /** Be told of every state change; returns the function that stops it. */
  onStateChange(listener: (change: BreakerStateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Stop its timers; calls after this are refused. */
  shutdown(): void {
    this.#listeners.clear();
    this.#circuit.shutdown();
  }

  #refusal(): BreakerOpenError {
    if (this.#state === 'open' && this.#retryAt)
      return new BreakerOpenError(this.service, this.name, 'open', this.#retryAt);
    // Half-open with its probe in flight: the probe's outcome decides, soon.
    return new BreakerOpenError(
      this.service,
      this.name,
      'half-open',
      new Date(Date.now() + Math.min(PROBE_RECHECK_MS, this.settings.resetTimeoutMs)),
    );
  }

  #enter(state: BreakerState): void {
    const previous = this.#state;
    if (state === previous) return;
    const now = new Date();
    this.#state = state;
    this.#since = now;
    if (state === 'open') {
      this.#opens += 1;
      this.#retryAt = new Date(now.getTime() + this.settings.resetTimeoutMs);
    } else {
      this.#retryAt = undefined;
    }
    for (const listener of [...this.#listeners]) {
      try {
        listener({ breaker: this, state, previous, since: now });
      } catch {
        // A listener's bug must not break the breaker (opossum emits from inside calls).
      }
    }
  }
}

/** Create a breaker; its options are validated here and frozen. */
export function createBreaker(options: BreakerOptions): Breaker {
  return new Breaker(options);
}

/** The BreakerOpenError an error is, or was caused by (services wrap errors), if any. */
export function breakerOpenErrorOf(error: unknown): BreakerOpenError | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 6; depth++) {
    if (e instanceof BreakerOpenError) return e;
    e = e.cause;
  }
  return undefined;
}

function counts(error: unknown, isFailure: (error: unknown) => boolean): boolean {
  // opossum's own timeout (only with timeoutMs) is a failure of the dependency.
  if (error instanceof Error && CircuitBreaker.isOurError(error)) return true;
  try {
    return isFailure(error);
  } catch {
    return true;
  }
}

function resolveSettings(options: BreakerOptions): Breaker['settings'] {
  const issues: ValidationIssue[] = [];
  for (const field of ['name', 'service'] as const) {
    if (typeof options[field] !== 'string' || !NAME.test(options[field]))
      issues.push({ path: field, message: 'lowercase letters, digits, ".", "_" or "-", at most 63' });
  }
  if (typeof options.isFailure !== 'function')
    issues.push({ path: 'isFailure', message: 'must be a function' });
  const settings = {
    errorThresholdPercentage: options.errorThresholdPercentage ?? BREAKER_DEFAULTS.errorThresholdPercentage,
    volumeThreshold: options.volumeThreshold ?? BREAKER_DEFAULTS.volumeThreshold,
    rollingWindowMs: options.rollingWindowMs ?? BREAKER_DEFAULTS.rollingWindowMs,
    resetTimeoutMs: options.resetTimeoutMs ?? BREAKER_DEFAULTS.resetTimeoutMs,
    timeoutMs: options.timeoutMs,
  };
  const p = settings.errorThresholdPercentage;
  if (typeof p !== 'number' || !(p > 0 && p <= 100))
    issues.push({ path: 'errorThresholdPercentage', message: 'a number above 0, at most 100' });
  if (!Number.isInteger(settings.volumeThreshold) || settings.volumeThreshold < 1)
    issues.push({ path: 'volumeThreshold', message: 'an integer of at least 1' });
  // opossum splits the window into 10 buckets of whole milliseconds.
  if (!Number.isInteger(settings.rollingWindowMs) || settings.rollingWindowMs < 10)
    issues.push({ path: 'rollingWindowMs', message: 'an integer of at least 10' });
  if (!Number.isInteger(settings.resetTimeoutMs) || settings.resetTimeoutMs < 1)
    issues.push({ path: 'resetTimeoutMs', message: 'a positive integer' });
  if (settings.timeoutMs !== undefined && (!Number.isInteger(settings.timeoutMs) || settings.timeoutMs < 1))
    issues.push({ path: 'timeoutMs', message: 'a positive integer, or undefined for none' });
  if (issues.length > 0) throw new ValidationError('breaker options', issues);
  return Object.freeze(settings);
}
