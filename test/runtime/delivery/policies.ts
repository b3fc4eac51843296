// Destination policies for the delivery gate's tests.

import type { DestinationPolicy } from '../../../src/runtime/delivery/types.js';

export function policy(overrides: Partial<DestinationPolicy> = {}): DestinationPolicy {
  return {
    id: 'erp',
    timeoutMs: 1_000,
    retry: { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 10_000 },
    circuitBreaker: { consecutiveFailures: 3, halfOpenAfterMs: 5_000 },
    concurrency: { max: 4, adaptive: false },
    ...overrides,
  };
}
