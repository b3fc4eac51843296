// The contract between the durable queue (which persists deliveries and schedules retries) and
// the delivery gate (which makes one attempt under a destination's policies and classifies it).

export interface RetryPolicy {
  /** Attempts in all, the first included; after the last, the delivery is dead-lettered. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface CircuitBreakerPolicy {
  /** Opens after this many consecutive failures. */
  consecutiveFailures: number;
  /** Or when the failure rate over the sampling window reaches this (0..1), given enough calls. */
  failureRateThreshold?: number;
  samplingWindowMs?: number;
  minimumCalls?: number;
  /** Open for this long, then one half-open probe. */
  halfOpenAfterMs: number;
}

export interface ConcurrencyPolicy {
  /** Never more in flight to this destination than this. */
  max: number;
  /** Adapt the limit below max (AIMD on latency and 429s). */
  adaptive: boolean;
  /** Latency above which the adaptive limit decreases. */
  latencyTargetMs?: number;
}

export interface RatePolicy {
  /** Token bucket refill per second. */
  perSecond: number;
  burst: number;
}

export interface DestinationPolicy {
  /** Destination system id, e.g. `cloud-erp`. */
  id: string;
  timeoutMs: number;
  retry: RetryPolicy;
  circuitBreaker: CircuitBreakerPolicy;
  concurrency: ConcurrencyPolicy;
  rate?: RatePolicy;
  /** Backlog (pending deliveries) above which deferrable work to it waits. */
  backlogThreshold?: number;
}

/** What a sender reports of one attempt. Throwing means a transport failure (retryable). */
export interface DeliveryResponse {
  /** HTTP-like status: 2xx success, 408/425/429/5xx retryable, other 4xx permanent. */
  status: number;
  /** Seconds or an HTTP date, from Retry-After. */
  retryAfter?: string;
  body?: unknown;
}

export interface DeliveryAttempt {
  destination: string;
  /** Stable across every attempt and every replay of the same delivery. */
  idempotencyKey: string;
  /** 1 for the first attempt. */
  attempt: number;
  traceparent?: string;
  send: (ctx: { signal: AbortSignal; idempotencyKey: string }) => Promise<DeliveryResponse>;
}

export type DeliveryOutcome =
  | { kind: 'delivered'; status: number; latencyMs: number; body?: unknown }
  /** Try again not before `afterMs` from now (backoff with full jitter, or Retry-After). */
  | {
      kind: 'retry';
      afterMs: number;
      error: string;
      status?: number;
      latencyMs: number;
      /**
       * True when nothing was sent: the destination's own rate or concurrency limit deferred it.
       * Like `circuit-open`, such an outcome is not counted as an attempt.
       */
      notSent?: boolean;
    }
  /** Will never succeed as sent (4xx other than 408/425/429, or attempts exhausted). */
  | { kind: 'permanent'; error: string; status?: number; latencyMs: number }
  /** Not attempted: the circuit is open. Not counted as an attempt. */
  | { kind: 'circuit-open'; afterMs: number };

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface DestinationStatus {
  id: string;
  circuit: CircuitState;
  inFlight: number;
  concurrencyLimit: number;
  /** True when deferrable work to this destination should wait. */
  congested: boolean;
}
