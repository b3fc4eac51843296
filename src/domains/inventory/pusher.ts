// The channel pusher: one per pushed sales channel, in every process that runs the inventory
// module. It turns the coalescing table (propagation.ts) into calls to the channel's
// availability port, within the channel's limits, and records what the channel acknowledged.
//
//   round (one transaction, one commit):
//     record the answers of the sends that finished since the last round
//       (acknowledged → acked version + sync lag; failed → due again, or parked when permanent)
//     claim up to N due keys (N = free concurrency ∧ tokens of the channel's rate)
//   then send each claimed key's newest value (a batch per call where the channel takes
//   batches); every answer wakes the next round.
//
// Why not engine deliveries: availability is a latest-value stream, not a message log. A send
// through the outbox costs a delivery row, its claim, an acknowledgement message and that
// message's handler, four commits per push; here a push costs a share of one commit, so the
// sync lag stays at a few commits plus the channel's own answer time (ADR 0020).
//
// Guarantees, as before: one send in flight per channel × sku@location (the claim, with a lease
// longer than the send's timeout, is a row update, so several processes on PostgreSQL share the
// work safely); each send carries the newest value at claim time; an acknowledgement counts only
// for the live send, so the value a channel shows never goes back. An answer not yet recorded
// when the process dies is sent again after the lease: the channel gets the same value twice,
// with the same idempotency key.
import { createHash } from 'node:crypto';
import type { ChannelAvailabilityPort } from '../../ports/channel.js';
import {
  abandonChannelPush,
  acknowledgeChannelPushes,
  planChannelPushes,
  takeCalls,
  type CallBudget,
  type ChannelPush,
} from './propagation.js';
import { num, type InventorySql, type InventoryStore } from './sql.js';

export interface ChannelPusherOptions {
  store: InventoryStore;
  channel: string;
  port: ChannelAvailabilityPort;
  /** The channel system's limits (estate config `systems[].limits`). */
  limits: { ratePerSecond: number; burst: number; concurrency: number; timeoutMs: number };
  /** Backoff after a failed call (estate config `systems[].retry`). */
  retry: { baseDelayMs: number; maxDelayMs: number };
  /** Consecutive failures that pause the channel, and for how long (`systems[].circuitBreaker`). */
  breaker: { consecutiveFailures: number; halfOpenAfterMs: number };
  /** How long a claim holds its key; raised to at least twice the send timeout plus 5 s. */
  leaseMs: number;
  /** How often to look for due keys without being woken (other processes, leases run out). */
  pollMs: number;
  now?: () => number;
  /** Called with the sync lag (ms) of every acknowledged send, after its commit. */
  onAcknowledged?: (lagMs: number) => void;
  /** Called for every failed send. */
  onFailure?: (kind: 'transient' | 'permanent', error: unknown) => void;
  /**
   * Resolves once what the flows wrote is on disk (the engine's `durableHandlerEffects`: on
   * SQLite handler batches commit relaxed); awaited before a round's sends.
   */
  durable?: () => Promise<void>;
  log?: { warn(obj: object, msg?: string): void };
}

interface SendResult {
  push: ChannelPush;
  at: number;
  /** Undefined: acknowledged. */
  failure?: { permanent: boolean; message: string };
}

function failureOf(err: unknown): {
  permanent: boolean;
  message: string;
  retryAfterMs?: number;
} {
  const e = err as {
    kind?: unknown;
    message?: unknown;
    details?: { retryAfterSeconds?: unknown };
  } | null;
  const retryAfter = e?.details?.retryAfterSeconds;
  return {
    permanent: e?.kind === 'permanent',
    message: typeof e?.message === 'string' ? e.message : String(err),
    ...(typeof retryAfter === 'number' && retryAfter > 0
      ? { retryAfterMs: retryAfter * 1000 }
      : {}),
  };
}

/**
 * The channel refused a send for good (e.g. it does not list the SKU): the key is parked with the
 * error until a newer value arrives (or a reconciliation fix makes it due again). A newer change
 * recorded meanwhile is left due.
 */
export async function parkChannelPush(
  db: InventorySql,
  push: ChannelPush,
  error: string,
  now: number,
): Promise<void> {
  const u = push.update;
  await db.execute(
    `UPDATE inventory_channel_sync SET sending_version = NULL, sending_available = NULL,
       sending_until = NULL, sending_source_time = NULL,
       failed_version = ?, failed_at = ?, last_error = ?,
       pending_since = CASE WHEN latest_version > ? THEN COALESCE(pending_since, ?) ELSE NULL END,
       pending_source_time = CASE WHEN latest_version > ? THEN pending_source_time ELSE NULL END
     WHERE channel = ? AND sku = ? AND location = ? AND sending_version = ?`,
    [
      u.version,
      now,
      error.slice(0, 500),
      u.version,
      now,
      u.version,
      u.channel,
      u.sku,
      u.location,
      u.version,
    ],
  );
}

/** How many keys each channel refused for good and holds parked (for the gauge). */
export async function parkedKeyCounts(db: InventorySql): Promise<Map<string, number>> {
  const rows = await db.query(
    `SELECT channel, COUNT(*) AS n FROM inventory_channel_sync
     WHERE failed_version IS NOT NULL AND failed_version >= latest_version GROUP BY channel`,
  );
  return new Map(rows.map((r) => [String(r.channel), num(r.n)]));
}

/** Keys of a channel the channel refused for good (the newest value, not sent). */
export async function parkedChannelKeys(
  db: InventorySql,
  channel: string,
  limit = 100,
): Promise<Array<{ sku: string; location: string; version: number; error: string; at: number }>> {
  const rows = await db.query(
    `SELECT sku, location, failed_version, last_error, failed_at FROM inventory_channel_sync
     WHERE channel = ? AND failed_version IS NOT NULL AND failed_version >= latest_version
     ORDER BY failed_at DESC LIMIT ?`,
    [channel, limit],
  );
  return rows.map((r) => ({
    sku: String(r.sku),
    location: String(r.location),
    version: num(r.failed_version),
    error: String(r.last_error ?? ''),
    at: num(r.failed_at),
  }));
}

/** True when the channel has a change not yet claimed (a cheap read, outside transactions). */
async function hasUnclaimed(db: InventorySql, channel: string, now: number): Promise<boolean> {
  const rows = await db.query(
    `SELECT 1 AS due FROM inventory_channel_sync
     WHERE channel = ? AND pending_since IS NOT NULL AND latest_version > acked_version
       AND (sending_version IS NULL OR sending_until <= ?) LIMIT 1`,
    [channel, now],
  );
  if (rows.length > 0) return true;
  const expired = await db.query(
    `SELECT 1 AS due FROM inventory_channel_sync
     WHERE channel = ? AND sending_version IS NOT NULL AND sending_until <= ? LIMIT 1`,
    [channel, now],
  );
  return expired.length > 0;
}

export class ChannelPusher {
  private readonly opts: ChannelPusherOptions;
  private readonly now: () => number;
  private readonly leaseMs: number;
  private budget: CallBudget;
  private readonly results: SendResult[] = [];
  private inFlight = 0;
  private running = false;
  private scheduled = false;
  private woken = false;
  private stopped = false;
  private consecutiveFailures = 0;
  private pausedUntil = 0;
  /** After a pause, one call probes the channel before the others follow. */
  private probing = false;
  private poll: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idle: Array<() => void> = [];

  constructor(opts: ChannelPusherOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.leaseMs = Math.max(opts.leaseMs, opts.limits.timeoutMs * 2 + 5_000);
    this.budget = { tokens: opts.limits.burst, at: this.now() };
  }

  /** Starts polling; sends start at the first wake or poll. */
  start(): void {
    if (this.poll || this.stopped) return;
    this.poll = setInterval(() => this.wake(), this.opts.pollMs);
    this.poll.unref();
    this.wake();
  }

  /**
   * Asks for a round soon (a change was committed, a send finished). Cheap: wakes in one turn of
   * the event loop coalesce into one round, which records every answer that arrived meanwhile.
   */
  wake(): void {
    this.woken = true;
    if (this.running || this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.running || this.stopped) return;
      this.running = true;
      void this.loop();
    });
  }

  /** Stops claiming; waits (bounded by the send timeout) for sends in flight and records them. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    if (this.timer) clearTimeout(this.timer);
    const until = Date.now() + this.opts.limits.timeoutMs + 1_000;
    while ((this.inFlight > 0 || this.running) && Date.now() < until) {
      await new Promise<void>((r) => {
        this.idle.push(r);
        setTimeout(r, 50).unref();
      });
    }
    if (this.results.length > 0) {
      try {
        await this.round(false);
      } catch (err) {
        this.opts.log?.warn(
          { err, channel: this.opts.channel },
          'channel push: answers not recorded at stop',
        );
      }
    }
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.woken = false;
        let worked = false;
        try {
          worked = await this.round(!this.stopped);
        } catch (err) {
          this.opts.log?.warn(
            { err, channel: this.opts.channel },
            'channel push round failed; retrying',
          );
          this.pause(this.opts.retry.baseDelayMs);
          break;
        }
        if (!worked && !this.woken) break;
        if (this.stopped && this.results.length === 0) break;
      }
    } finally {
      this.running = false;
      for (const r of this.idle.splice(0)) r();
    }
    this.armTimer();
  }

  /** Wakes when the channel may be called again: the pause ends or a token arrives. */
  private armTimer(): void {
    if (this.stopped || this.timer) return;
    const now = this.now();
    let wait: number | undefined;
    if (this.pausedUntil > now) wait = this.pausedUntil - now;
    else if (this.budget.tokens < 1 && this.inFlight < this.opts.limits.concurrency) {
      wait = Math.ceil(((1 - this.budget.tokens) * 1000) / this.opts.limits.ratePerSecond);
    }
    if (wait === undefined || wait >= this.opts.pollMs) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.wake();
      },
      Math.max(1, wait),
    );
    this.timer.unref();
  }

  /** One round; true when it recorded or claimed anything. */
  private async round(claim: boolean): Promise<boolean> {
    const now = this.now();
    const results = this.results.splice(0);
    const { channel } = this.opts;
    let calls = 0;
    if (claim && now >= this.pausedUntil) {
      let free = this.opts.limits.concurrency - this.inFlight;
      if (this.probing) free = this.inFlight === 0 ? 1 : 0;
      if (free > 0) {
        const taken = takeCalls(
          this.budget,
          now,
          this.opts.limits.ratePerSecond,
          this.opts.limits.burst,
          free,
        );
        this.budget = taken.budget;
        calls = taken.granted;
      }
    }
    if (results.length === 0) {
      // Nothing to record: look before taking the writer.
      if (calls === 0 || !(await hasUnclaimed(this.opts.store, channel, now))) {
        this.budget.tokens += calls;
        return false;
      }
    }
    const lags: number[] = [];
    const perCall = this.perCall();
    let pushes: ChannelPush[];
    try {
      pushes = await this.opts.store.transaction(
        async (tx) => {
          const acked = results.filter((r) => !r.failure);
          if (acked.length > 0) {
            const recorded = await acknowledgeChannelPushes(
              tx,
              acked.map((r) => ({ update: r.push.update, ackedAt: r.at })),
            );
            for (const lag of recorded) if (lag !== undefined) lags.push(lag);
          }
          for (const r of results) {
            if (!r.failure) continue;
            if (r.failure.permanent) await parkChannelPush(tx, r.push, r.failure.message, r.at);
            else await abandonChannelPush(tx, r.push.update, r.at);
          }
          return calls > 0
            ? planChannelPushes(tx, channel, { now, calls: calls * perCall, leaseMs: this.leaseMs })
            : [];
        },
        // Relaxed: claims and acknowledgements are bookkeeping. One lost with the machine means
        // the key is sent again after its lease, the same value under the same idempotency key.
        { relaxed: true },
      );
    } catch (err) {
      // Nothing recorded: the answers wait for the next round, the tokens go back.
      this.results.unshift(...results);
      this.budget.tokens += calls;
      throw err;
    }
    // A value a handler wrote leaves the process only once its commit is on disk. Should the
    // sync fail, the keys stay claimed and are sent again once their lease runs out.
    if (pushes.length > 0 && this.opts.durable) {
      try {
        await this.opts.durable();
      } catch (err) {
        this.budget.tokens += calls;
        throw err;
      }
    }
    const batches: ChannelPush[][] = [];
    for (let i = 0; i < pushes.length; i += perCall) batches.push(pushes.slice(i, i + perCall));
    this.budget.tokens += calls - batches.length;
    for (const lag of lags) this.opts.onAcknowledged?.(lag);
    for (const batch of batches) this.send(batch);
    return results.length > 0 || pushes.length > 0;
  }

  /** Keys one call carries: the channel's batch size when it takes batches, else 1. */
  private perCall(): number {
    const { port } = this.opts;
    const max = port.setAvailabilities ? Math.floor(port.maxBatch ?? 1) : 1;
    return Math.max(1, Math.min(max, 1000));
  }

  /** One call to the channel: a single update, or a batch of them. */
  private call(batch: readonly ChannelPush[], signal: AbortSignal): Promise<unknown> {
    const { port } = this.opts;
    if (batch.length === 1 || !port.setAvailabilities) {
      return port.setAvailability(batch[0]!.update, {
        idempotencyKey: batch[0]!.idempotencyKey,
        signal,
      });
    }
    // Names exactly these keys at these versions: a batch sent again after a crash repeats it.
    const key = createHash('sha256')
      .update(batch.map((p) => p.idempotencyKey).join('\n'))
      .digest('base64url');
    return port.setAvailabilities(
      batch.map((p) => p.update),
      { idempotencyKey: `${this.opts.channel}/batch/${key}`, signal },
    );
  }

  private send(batch: readonly ChannelPush[]): void {
    this.inFlight++;
    const signal = AbortSignal.timeout(this.opts.limits.timeoutMs);
    let settled: Promise<unknown>;
    try {
      settled = this.call(batch, signal);
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled
      .then(
        () => {
          const at = this.now();
          for (const push of batch) this.results.push({ push, at });
          this.consecutiveFailures = 0;
          this.probing = false;
        },
        (err: unknown) => {
          const f = failureOf(err);
          const at = this.now();
          for (const push of batch) {
            this.results.push({
              push,
              at,
              failure: { permanent: f.permanent, message: f.message },
            });
          }
          this.opts.onFailure?.(f.permanent ? 'permanent' : 'transient', err);
          // A permanent refusal is about the keys, not the channel: the others go on.
          if (f.permanent) return;
          this.consecutiveFailures++;
          const { consecutiveFailures, halfOpenAfterMs } = this.opts.breaker;
          let delay: number;
          if (this.consecutiveFailures >= consecutiveFailures) {
            delay = halfOpenAfterMs;
            this.probing = true;
          } else {
            const cap = Math.min(
              this.opts.retry.maxDelayMs,
              this.opts.retry.baseDelayMs * 2 ** (this.consecutiveFailures - 1),
            );
            delay = Math.random() * cap; // full jitter
          }
          this.pause(Math.max(delay, f.retryAfterMs ?? 0));
        },
      )
      .finally(() => {
        this.inFlight--;
        this.wake();
      });
  }

  private pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }
}
