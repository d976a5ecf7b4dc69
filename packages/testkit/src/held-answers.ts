export interface HoldOptions {
  /** How many of the next accepted requests to hold. @defaultValue 1 */
  times?: number;
  /** Answer on its own after this long; without it, only `release()` answers. */
  releaseAfterMs?: number;
}

/**
 * Answers a loopback provider server withholds: the request was accepted and recorded, but the
 * caller hears nothing until `release()` (or a delay). Stands in for a timeout, or for a crash
 * between the provider call and the caller recording its result.
 */
export class HeldAnswers {
  readonly #holds: HoldOptions[] = [];
  readonly #held = new Set<() => void>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #waiters: { count: number; resolve: () => void }[] = [];

  /** Hold the next `times` answers. */
  hold(options: HoldOptions = {}): void {
    for (let i = 0; i < (options.times ?? 1); i++) this.#holds.push(options);
  }

  /** Send `answer` now, or withhold it if a hold is pending. */
  answerOrHold(answer: () => void): void {
    const hold = this.#holds.shift();
    if (!hold) {
      answer();
      return;
    }
    const respond = () => {
      if (!this.#held.delete(respond)) return;
      answer();
    };
    this.#held.add(respond);
    if (hold.releaseAfterMs !== undefined) {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        respond();
      }, hold.releaseAfterMs);
      this.#timers.add(timer);
    }
    this.#notify();
  }

  /** Send every withheld answer now; returns how many there were. */
  release(): number {
    const waiting = [...this.#held];
    for (const respond of waiting) respond();
    return waiting.length;
  }

  /** Resolves once at least `count` answers are being withheld. */
  whenHeld(count = 1): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#waiters.push({ count, resolve });
      this.#notify();
    });
  }

  /** Drop every withheld answer and pending timer (the server is closing). */
  clear(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#held.clear();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) {
      if (this.#held.size >= waiter.count) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
}
