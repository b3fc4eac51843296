// A token bucket per destination: `burst` tokens at most, refilled at `perSecond`. Callers reserve
// a token and wait until it exists, so concurrent callers queue up in time instead of racing.

import type { RatePolicy } from './types.js';

export type TokenReservation =
  /** A token is reserved: send after `waitMs`. */
  | { reserved: true; waitMs: number }
  /** The wait would exceed the caller's bound: nothing reserved; a token exists in `waitMs`. */
  | { reserved: false; waitMs: number };

export class TokenBucket {
  #rate: RatePolicy;
  readonly #now: () => number;
  /** May go negative: each unit below zero is a token already promised to a waiting caller. */
  #tokens: number;
  #updatedAt: number;

  constructor(rate: RatePolicy, now: () => number) {
    this.#rate = rate;
    this.#now = now;
    this.#tokens = rate.burst;
    this.#updatedAt = now();
  }

  setRate(rate: RatePolicy): void {
    this.#refill();
    this.#rate = rate;
    this.#tokens = Math.min(this.#tokens, rate.burst);
  }

  /** Tokens available now (negative when callers are already waiting for future tokens). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  /** Reserve one token if it will exist within `maxWaitMs`. */
  reserve(maxWaitMs: number): TokenReservation {
    this.#refill();
    const waitMs =
      this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#rate.perSecond) * 1000);
    if (waitMs > maxWaitMs) return { reserved: false, waitMs };
    this.#tokens -= 1;
    return { reserved: true, waitMs };
  }

  /** Give back a reserved token that was not used for a send. */
  refund(): void {
    this.#refill();
    this.#tokens = Math.min(this.#rate.burst, this.#tokens + 1);
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#updatedAt);
    this.#updatedAt = now;
    this.#tokens = Math.min(
      this.#rate.burst,
      this.#tokens + (elapsed / 1000) * this.#rate.perSecond,
    );
  }
}
