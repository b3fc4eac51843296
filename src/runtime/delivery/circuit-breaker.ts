// A circuit breaker per destination: opens on consecutive failures or on a failure rate over a
// sliding window, stays open for `halfOpenAfterMs`, then admits one probe at a time.
//
// Written by hand rather than with cockatiel's ConsecutiveBreaker / SamplingBreaker: cockatiel 3
// reads `Date.now()` directly (CircuitBreakerPolicy and SamplingBreaker), so its timing cannot be
// driven by an injected clock, and its policy wraps the call itself while the gate needs to
// admit, defer (rate or concurrency limit) and record in separate steps.

import type { CircuitBreakerPolicy, CircuitState } from './types.js';

/** Defaults for the failure-rate rule when `failureRateThreshold` is set without them. */
export const DEFAULT_SAMPLING_WINDOW_MS = 60_000;
export const DEFAULT_MINIMUM_CALLS = 10;

/** What one attempt tells the breaker about the destination's health. */
export type BreakerSignal = 'success' | 'failure' | 'neutral';

export type BreakerAdmission =
  { admitted: true; probe: boolean; generation: number } | { admitted: false; afterMs: number };

export type BreakerTicket = Extract<BreakerAdmission, { admitted: true }>;

interface Sample {
  at: number;
  failed: boolean;
}

export class CircuitBreaker {
  #policy: CircuitBreakerPolicy;
  readonly #now: () => number;
  readonly #onChange: (from: CircuitState, to: CircuitState) => void;
  #state: CircuitState = 'closed';
  /** Bumped on every transition: results of calls admitted under an older state are ignored. */
  #generation = 0;
  #openedAt = 0;
  #consecutiveFailures = 0;
  #probeInFlight = false;
  #samples: Sample[] = [];
  #samplesHead = 0;
  #sampleFailures = 0;

  constructor(
    policy: CircuitBreakerPolicy,
    now: () => number,
    onChange: (from: CircuitState, to: CircuitState) => void,
  ) {
    this.#policy = policy;
    this.#now = now;
    this.#onChange = onChange;
  }

  setPolicy(policy: CircuitBreakerPolicy): void {
    this.#policy = policy;
  }

  /** The current state; an open circuit whose interval has passed reads as half-open. */
  get state(): CircuitState {
    this.#refresh();
    return this.#state;
  }

  get generation(): number {
    this.#refresh();
    return this.#generation;
  }

  /** Milliseconds until an open circuit half-opens (0 when not open). */
  get msUntilHalfOpen(): number {
    this.#refresh();
    if (this.#state !== 'open') return 0;
    return Math.max(0, this.#openedAt + this.#policy.halfOpenAfterMs - this.#now());
  }

  /**
   * Closed: admitted. Open: refused with the time until half-open. Half-open: the first caller is
   * admitted as the probe; others are refused until the probe's result is known.
   */
  admit(): BreakerAdmission {
    this.#refresh();
    switch (this.#state) {
      case 'closed':
        return { admitted: true, probe: false, generation: this.#generation };
      case 'open':
        return { admitted: false, afterMs: this.msUntilHalfOpen };
      case 'half-open':
        if (this.#probeInFlight) {
          return { admitted: false, afterMs: Math.max(0, this.#policy.halfOpenAfterMs) };
        }
        this.#probeInFlight = true;
        return { admitted: true, probe: true, generation: this.#generation };
    }
  }

  /** The admitted call was not sent after all (deferred by a limit): give the probe slot back. */
  release(ticket: BreakerTicket): void {
    if (ticket.probe && ticket.generation === this.#generation) this.#probeInFlight = false;
  }

  /** The result of an admitted call. */
  record(ticket: BreakerTicket, signal: BreakerSignal): void {
    if (ticket.generation !== this.#generation) return;
    if (ticket.probe) {
      this.#probeInFlight = false;
      if (signal === 'success') this.#transition('closed');
      else if (signal === 'failure') this.#open();
      // neutral (a 4xx or 429): the destination answered but proved nothing; stay half-open.
      return;
    }
    if (this.#state !== 'closed' || signal === 'neutral') return;
    const now = this.#now();
    if (signal === 'success') this.#consecutiveFailures = 0;
    else this.#consecutiveFailures += 1;
    if (this.#policy.failureRateThreshold !== undefined) {
      this.#samples.push({ at: now, failed: signal === 'failure' });
      if (signal === 'failure') this.#sampleFailures += 1;
      this.#prune(now);
    }
    if (signal === 'failure' && this.#shouldTrip()) this.#open();
  }

  #shouldTrip(): boolean {
    const { consecutiveFailures, failureRateThreshold } = this.#policy;
    if (consecutiveFailures > 0 && this.#consecutiveFailures >= consecutiveFailures) return true;
    if (failureRateThreshold === undefined) return false;
    const calls = this.#samples.length - this.#samplesHead;
    const minimumCalls = this.#policy.minimumCalls ?? DEFAULT_MINIMUM_CALLS;
    if (calls === 0 || calls < minimumCalls) return false;
    return this.#sampleFailures / calls >= failureRateThreshold;
  }

  #prune(now: number): void {
    const windowMs = this.#policy.samplingWindowMs ?? DEFAULT_SAMPLING_WINDOW_MS;
    while (this.#samplesHead < this.#samples.length) {
      const oldest = this.#samples[this.#samplesHead];
      if (oldest === undefined || oldest.at > now - windowMs) break;
      if (oldest.failed) this.#sampleFailures -= 1;
      this.#samplesHead += 1;
    }
    // Compact once the dead prefix dominates, so memory stays bounded by one window of calls.
    if (this.#samplesHead > 1024 && this.#samplesHead * 2 > this.#samples.length) {
      this.#samples = this.#samples.slice(this.#samplesHead);
      this.#samplesHead = 0;
    }
  }

  #refresh(): void {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#policy.halfOpenAfterMs) {
      this.#transition('half-open');
    }
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#transition('open');
  }

  #transition(to: CircuitState): void {
    const from = this.#state;
    this.#state = to;
    this.#generation += 1;
    this.#probeInFlight = false;
    if (to === 'closed') {
      this.#consecutiveFailures = 0;
      this.#samples = [];
      this.#samplesHead = 0;
      this.#sampleFailures = 0;
    }
    if (from !== to) this.#onChange(from, to);
  }
}
