import { Counter, Gauge, type Registry } from 'prom-client';
import type { Breaker, BreakerState } from './breaker.ts';

const STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

interface RegisteredBreakers {
  breakers: Set<Breaker>;
  opens: Counter;
}

/** The breaker metrics already on a registry: services sharing one (`holdfast dev`) add to them. */
const registered = new WeakMap<Registry, RegisteredBreakers>();

/**
 * Export breakers on a metrics registry (the ops server's `registry`):
 * `holdfast_breaker_state{service,breaker}` 0 closed, 1 half-open, 2 open, and
 * `holdfast_breaker_opens_total{service,breaker}`. Returns the function that takes these
 * breakers off again (on close).
 */
export function registerBreakerMetrics(registry: Registry, breakers: readonly Breaker[]): () => void {
  let metrics = registered.get(registry);
  if (!metrics) {
    const all = new Set<Breaker>();
    new Gauge({
      name: 'holdfast_breaker_state',
      help: 'Circuit breaker state: 0 closed, 1 half-open (probing), 2 open (the worker takes no jobs)',
      labelNames: ['service', 'breaker'],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of all) this.set({ service: b.service, breaker: b.name }, STATE_VALUE[b.state]);
      },
    });
    const opens = new Counter({
      name: 'holdfast_breaker_opens_total',
      help: 'Times a circuit breaker opened (a failed probe re-opening it counts)',
      labelNames: ['service', 'breaker'],
      registers: [registry],
    });
    metrics = { breakers: all, opens };
    registered.set(registry, metrics);
  }
  const { breakers: all, opens } = metrics;
  const unsubscribe = breakers.map((b) => {
    all.add(b);
    // Opens before registration (a store failing during start-up) are counted too.
    opens.inc({ service: b.service, breaker: b.name }, b.opens);
    return b.onStateChange(({ state }) => {
      if (state === 'open') opens.inc({ service: b.service, breaker: b.name });
    });
  });
  return () => {
    for (const stop of unsubscribe) stop();
    for (const b of breakers) all.delete(b);
  };
}
