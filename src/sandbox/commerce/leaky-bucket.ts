// Shopify's REST Admin API rate limit: a leaky bucket per shop. Every call adds one unit; the
// bucket drains at a fixed rate; a call that finds the bucket full is refused with 429.

export interface LeakyBucketOptions {
  /** Units the bucket holds (Shopify standard plan: 40). */
  capacity?: number;
  /** Units drained per second (Shopify standard plan: 2). */
  leakPerSecond?: number;
  now?: () => number;
}

export type BucketDecision =
  | { allowed: true; used: number; capacity: number }
  | { allowed: false; used: number; capacity: number; retryAfterSeconds: number };

export class LeakyBucket {
  readonly capacity: number;
  readonly leakPerSecond: number;
  private readonly now: () => number;
  private level = 0;
  private lastLeakAt: number;

  constructor(opts: LeakyBucketOptions = {}) {
    this.capacity = opts.capacity ?? 40;
    this.leakPerSecond = opts.leakPerSecond ?? 2;
    this.now = opts.now ?? Date.now;
    this.lastLeakAt = this.now();
  }

  /** Units currently in the bucket, rounded up (what the call-limit header shows). */
  get used(): number {
    this.leak();
    return Math.ceil(this.level - 1e-9);
  }

  /** Takes one unit for a call, or refuses it when the bucket is full. */
  take(): BucketDecision {
    this.leak();
    if (this.level + 1 > this.capacity + 1e-9) {
      const needed = (this.level + 1 - this.capacity) / this.leakPerSecond;
      return {
        allowed: false,
        used: Math.ceil(this.level - 1e-9),
        capacity: this.capacity,
        retryAfterSeconds: Math.max(1, Math.ceil(needed)),
      };
    }
    this.level += 1;
    return { allowed: true, used: Math.ceil(this.level - 1e-9), capacity: this.capacity };
  }

  private leak(): void {
    const now = this.now();
    const elapsed = Math.max(0, now - this.lastLeakAt) / 1000;
    this.level = Math.max(0, this.level - elapsed * this.leakPerSecond);
    this.lastLeakAt = now;
  }
}
