// Delivery policies from the estate config: each system's limits, retry and breaker settings.
import type { SystemConfig } from '../config/schema.js';
import type { DestinationPolicy } from '../runtime/delivery/index.js';

/** The delivery policy of each configured system, from its limits, retry and breaker settings. */
export function destinationPolicies(systems: readonly SystemConfig[]): DestinationPolicy[] {
  return systems.map((s) => ({
    id: s.id,
    timeoutMs: s.limits.timeoutMs,
    retry: { ...s.retry },
    circuitBreaker: {
      consecutiveFailures: s.circuitBreaker.consecutiveFailures,
      halfOpenAfterMs: s.circuitBreaker.halfOpenAfterMs,
    },
    concurrency: { max: s.limits.concurrency, adaptive: s.limits.adaptiveConcurrency },
    rate: { perSecond: s.limits.ratePerSecond, burst: s.limits.burst },
  }));
}
