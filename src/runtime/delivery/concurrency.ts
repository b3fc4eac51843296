// A bulkhead per destination with an adaptive limit. Never more calls in flight than the current
// limit, and the limit never exceeds the policy's `max`; callers beyond it wait in a bounded FIFO
// queue. With `adaptive`, the limit follows AIMD: +1 after a success within the latency target,
// ×0.5 (at least 1) on 429/503, a timeout, or latency above the target.
//
// Written by hand rather than with cockatiel's bulkhead, whose capacity is fixed at construction
// and whose queue wait cannot be bounded in time by an injected scheduler.

import type { ConcurrencyPolicy } from './types.js';

/** Schedules `fn` after `ms`; returns a function that cancels it. */
export type Schedule = (fn: () => void, ms: number) => () => void;

export interface Slot {
  /** Issue order; a slot issued before the last decrease does not decrease again. */
  readonly seq: number;
}

export type AcquireResult = Slot | 'queue-full' | 'wait-timeout';

/** What one finished call tells the adaptive limit. */
export type LimitSignal = 'success' | 'overload' | 'other';

interface Waiter {
  resolve: (result: AcquireResult) => void;
  cancelTimer: () => void;
}

export class ConcurrencyLimiter {
  #policy: ConcurrencyPolicy;
  readonly #onLimitChange: (from: number, to: number, reason: LimitChangeReason) => void;
  #limit: number;
  #inFlight = 0;
  #waiters: Waiter[] = [];
  #seq = 0;
  #lastDecreaseSeq = 0;

  constructor(
    policy: ConcurrencyPolicy,
    onLimitChange: (from: number, to: number, reason: LimitChangeReason) => void,
  ) {
    this.#policy = policy;
    this.#onLimitChange = onLimitChange;
    this.#limit = policy.max;
  }

  get limit(): number {
    return this.#limit;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  get max(): number {
    return this.#policy.max;
  }

  setPolicy(policy: ConcurrencyPolicy): void {
    this.#policy = policy;
    const next = policy.adaptive ? Math.min(this.#limit, policy.max) : policy.max;
    this.#setLimit(next, 'policy');
    this.#drain();
  }

  /**
   * A slot now, or after waiting in FIFO order. Refused at once when `maxWaiting` callers already
   * wait, or after `maxWaitMs` without a slot.
   */
  acquire(maxWaiting: number, maxWaitMs: number, schedule: Schedule): Promise<AcquireResult> {
    if (this.#waiters.length === 0 && this.#inFlight < this.#limit) {
      return Promise.resolve(this.#issue());
    }
    if (this.#waiters.length >= maxWaiting) return Promise.resolve('queue-full');
    return new Promise<AcquireResult>((resolve) => {
      const waiter: Waiter = { resolve, cancelTimer: () => {} };
      waiter.cancelTimer = schedule(() => {
        const at = this.#waiters.indexOf(waiter);
        if (at === -1) return;
        this.#waiters.splice(at, 1);
        resolve('wait-timeout');
      }, maxWaitMs);
      this.#waiters.push(waiter);
    });
  }

  /** The call holding `slot` is no longer in flight. */
  release(_slot: Slot): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    this.#drain();
  }

  /** Feed the adaptive limit with one call's result (no effect unless the policy is adaptive). */
  observe(slot: Slot, signal: LimitSignal, latencyMs: number): void {
    if (!this.#policy.adaptive) return;
    const target = this.#policy.latencyTargetMs;
    const slow = target !== undefined && latencyMs > target;
    if (signal === 'overload' || slow) {
      // Calls issued before the last decrease ran under the older, larger limit: their bad news
      // is already accounted for, so a burst of 429s halves the limit once, not once per call.
      if (slot.seq <= this.#lastDecreaseSeq) return;
      this.#lastDecreaseSeq = this.#seq;
      this.#setLimit(Math.max(1, Math.floor(this.#limit / 2)), 'decrease');
    } else if (signal === 'success' && this.#limit < this.#policy.max) {
      this.#setLimit(this.#limit + 1, 'increase');
      this.#drain();
    }
  }

  #issue(): Slot {
    this.#inFlight += 1;
    this.#seq += 1;
    return { seq: this.#seq };
  }

  #drain(): void {
    while (this.#waiters.length > 0 && this.#inFlight < this.#limit) {
      const waiter = this.#waiters.shift();
      if (waiter === undefined) break;
      waiter.cancelTimer();
      waiter.resolve(this.#issue());
    }
  }

  #setLimit(next: number, reason: LimitChangeReason): void {
    const from = this.#limit;
    this.#limit = next;
    if (from !== next) this.#onLimitChange(from, next, reason);
  }
}

export type LimitChangeReason = 'increase' | 'decrease' | 'policy';
