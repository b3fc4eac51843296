// What the delivery gate reports as it works, for metrics and logs. Every event names its
// destination; per-attempt events also carry the delivery's idempotency key and attempt number.

import type { CircuitState } from './types.js';

interface AttemptRef {
  destination: string;
  idempotencyKey: string;
  attempt: number;
}

export type GateEvent =
  /** The request is about to be sent (after every limit admitted it). */
  | (AttemptRef & { type: 'attempt'; traceparent?: string })
  | (AttemptRef & { type: 'delivered'; status: number; latencyMs: number })
  /** Try again after `afterMs`; `notSent` when a local limit deferred it before sending. */
  | (AttemptRef & {
      type: 'retry';
      afterMs: number;
      error: string;
      status?: number;
      latencyMs: number;
      notSent: boolean;
    })
  | (AttemptRef & { type: 'permanent'; error: string; status?: number; latencyMs: number })
  /** Refused without sending: the circuit is open (or half-open with its probe in flight). */
  | (AttemptRef & { type: 'short-circuited'; afterMs: number })
  | { type: 'circuit'; destination: string; from: CircuitState; to: CircuitState }
  | {
      type: 'concurrency-limit';
      destination: string;
      from: number;
      to: number;
      reason: 'increase' | 'decrease' | 'policy';
    }
  /** Waited `waitMs` for a rate token, or (`deferred`) would have waited too long and did not. */
  | (AttemptRef & { type: 'rate-limited'; waitMs: number; deferred: boolean })
  /** The bulkhead refused: its wait queue was full, or the wait for a slot ran out. */
  | (AttemptRef & {
      type: 'bulkhead-rejected';
      reason: 'queue-full' | 'wait-timeout';
      waiting: number;
    });

export type GateEventType = GateEvent['type'];
