// The cloud ERP's governance: a token bucket per account (requests per second with a burst) and
// an account-wide concurrency gate. Pure logic with an injected clock.

export type TakeResult = { ok: true } | { ok: false; retryAfterSeconds: number };

export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly capacity: number,
    private readonly refillPerSecond: number,
    private readonly now: () => number,
  ) {
    this.tokens = capacity;
    this.updatedAt = now();
  }

  take(): TakeResult {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    const seconds = (1 - this.tokens) / this.refillPerSecond;
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(seconds)) };
  }

  available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const t = this.now();
    const elapsed = Math.max(0, t - this.updatedAt) / 1000;
    this.tokens = Math.min(this.capacity, this.tokens + elapsed * this.refillPerSecond);
    this.updatedAt = t;
  }
}

/** Counts requests in flight; `enter` fails when the limit is reached. */
export class ConcurrencyGate {
  private inFlight = 0;
  private maxObserved = 0;

  constructor(private readonly limit: number) {}

  /** Tries to admit a request; the observed maximum includes requests that were refused. */
  enter(): boolean {
    const wanted = this.inFlight + 1;
    if (wanted > this.maxObserved) this.maxObserved = wanted;
    if (wanted > this.limit) return false;
    this.inFlight = wanted;
    return true;
  }

  leave(): void {
    if (this.inFlight > 0) this.inFlight -= 1;
  }

  current(): number {
    return this.inFlight;
  }

  maxConcurrencyObserved(): number {
    return this.maxObserved;
  }
}
