// Coalescing availability for channels (the EIP "latest value" variant of a resequencer): one
// row per channel and sku@location keeps the newest availability and what the channel has
// acknowledged. A channel slower than the changes gets only the newest value per key; a key has
// at most one send in flight, and a send always carries the newest version at claim time, so a
// stale value never follows a fresh one. The sync lag (source time of the oldest change a send
// covers → the channel's acknowledgement) is recorded per send.
//
// The storage and the pure selector live here; the sender (a ChannelAvailabilityPort behind the
// delivery gate) is wired by the composition root.
import type { ChannelAvailabilityUpdate } from '../../ports/channel.js';
import { num, type InventorySql } from './sql.js';

/** A change of what a channel should show for a sku@location. */
export interface AvailabilityChange {
  sku: string;
  location: string;
  /** The position's version; only a higher one replaces the pending value. */
  version: number;
  /** What the channel may promise (after its allocation rule). */
  available: number;
  /** When the movement happened at its source (epoch ms). */
  sourceTime: number;
}

/** A claimed send: the update to hand to the channel's port. */
export interface ChannelPush {
  update: ChannelAvailabilityUpdate;
  /** Stable per channel, key and version. */
  idempotencyKey: string;
}

// ---- pure ----------------------------------------------------------------------------------

/** A token bucket for a channel's call rate (calls per second, with a burst). */
export interface CallBudget {
  tokens: number;
  at: number;
}

/** Refills the bucket to `now` and takes up to `wanted` whole calls from it. */
export function takeCalls(
  budget: CallBudget,
  now: number,
  perSecond: number,
  burst: number,
  wanted: number,
): { granted: number; budget: CallBudget } {
  const elapsed = Math.max(0, now - budget.at);
  const tokens = Math.min(burst, budget.tokens + (elapsed * perSecond) / 1000);
  const granted = Math.max(0, Math.min(wanted, Math.floor(tokens)));
  return { granted, budget: { tokens: tokens - granted, at: now } };
}

/** The q-quantile (0..1) of numbers by nearest rank; 0 for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1]!;
}

// ---- storage ---------------------------------------------------------------------------------

/**
 * Records a change for a channel in the caller's transaction. An older or equal version than the
 * one recorded changes nothing.
 */
export async function recordAvailabilityChange(
  db: InventorySql,
  channel: string,
  change: AvailabilityChange,
  now = Date.now(),
): Promise<void> {
  await db.execute(
    `INSERT INTO inventory_channel_sync (channel, sku, location, latest_version, latest_available,
       pending_source_time, pending_since) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (channel, sku, location) DO UPDATE SET
       latest_version = excluded.latest_version,
       latest_available = excluded.latest_available,
       pending_source_time = COALESCE(inventory_channel_sync.pending_source_time, excluded.pending_source_time),
       pending_since = COALESCE(inventory_channel_sync.pending_since, excluded.pending_since)
     WHERE inventory_channel_sync.latest_version < excluded.latest_version`,
    [
      channel,
      change.sku,
      change.location,
      change.version,
      change.available,
      change.sourceTime,
      now,
    ],
  );
}

/** Makes keys whose claim ran out (their sender died) due again. Returns how many. */
export async function reviveExpiredClaims(
  db: InventorySql,
  channel: string,
  now: number,
): Promise<number> {
  const r = await db.execute(
    `UPDATE inventory_channel_sync SET sending_version = NULL, sending_available = NULL,
       sending_until = NULL,
       pending_source_time = COALESCE(sending_source_time, pending_source_time),
       sending_source_time = NULL, pending_since = COALESCE(pending_since, ?)
     WHERE channel = ? AND sending_version IS NOT NULL AND sending_until <= ?`,
    [now, channel, now],
  );
  return r.changes;
}

/** The push of a claimed row (its newest value at claim time). */
function pushOf(channel: string, r: Record<string, unknown>): ChannelPush {
  const sku = String(r.sku);
  const location = String(r.location);
  const version = num(r.sending_version);
  return {
    idempotencyKey: `${channel}/${sku}@${location}/v${version}`,
    update: {
      channel,
      sku,
      location,
      available: num(r.sending_available),
      version,
      sourceTime: new Date(num(r.sending_source_time)).toISOString(),
    },
  };
}

/**
 * Plans the next sends for a channel: claims up to `calls` due keys, the longest-waiting first,
 * each for `leaseMs` with its newest value, in one statement (keys whose claim ran out are made
 * due first). Run it in a transaction; send what it returns, then acknowledge or abandon each.
 * The due conditions are checked again on the row itself, so two processes never claim one key.
 */
export async function planChannelPushes(
  db: InventorySql,
  channel: string,
  opts: { now: number; calls: number; leaseMs?: number },
): Promise<ChannelPush[]> {
  if (opts.calls <= 0) return [];
  const leaseMs = opts.leaseMs ?? 30_000;
  await reviveExpiredClaims(db, channel, opts.now);
  const due = `channel = ? AND pending_since IS NOT NULL AND latest_version > acked_version
       AND (sending_version IS NULL OR sending_until <= ?)`;
  const claimed = await db.query(
    `UPDATE inventory_channel_sync SET sending_version = latest_version,
       sending_available = latest_available, sending_until = ?,
       sending_source_time = COALESCE(sending_source_time, pending_source_time),
       pending_source_time = NULL, pending_since = NULL
     WHERE ${due} AND (sku, location) IN (
       SELECT sku, location FROM inventory_channel_sync WHERE ${due}
       ORDER BY pending_since, sku, location LIMIT ?)
     RETURNING sku, location, sending_version, sending_available, sending_source_time`,
    [opts.now + leaseMs, channel, opts.now, channel, opts.now, Math.floor(opts.calls)],
  );
  return claimed.map((r) => pushOf(channel, r));
}

/** An acknowledged send: what was sent and when the channel answered. */
export interface ChannelAck {
  update: Pick<ChannelAvailabilityUpdate, 'channel' | 'sku' | 'location' | 'version'>;
  ackedAt: number;
}

/**
 * The channel acknowledged sends: records each (when it is still the key's live send) and its
 * sync lag. Returns the lag in ms per ack, undefined where the send was no longer the live one
 * (its lease had passed to another).
 */
export async function acknowledgeChannelPushes(
  db: InventorySql,
  acks: readonly ChannelAck[],
): Promise<Array<number | undefined>> {
  const lags: Array<number | undefined> = [];
  const rows: Array<[string, string, string, number, number, number]> = [];
  for (const { update, ackedAt } of acks) {
    const r = await db.query(
      `UPDATE inventory_channel_sync SET acked_version = sending_version,
         acked_available = sending_available, acked_at = ?,
         last_lag_ms = CASE WHEN ? > COALESCE(sending_source_time, ?)
           THEN ? - COALESCE(sending_source_time, ?) ELSE 0 END,
         sending_version = NULL, sending_available = NULL, sending_until = NULL,
         sending_source_time = NULL, failed_version = NULL, last_error = NULL
       WHERE channel = ? AND sku = ? AND location = ? AND sending_version = ?
         AND acked_version < sending_version
       RETURNING last_lag_ms`,
      [
        ackedAt,
        ackedAt,
        ackedAt,
        ackedAt,
        ackedAt,
        update.channel,
        update.sku,
        update.location,
        update.version,
      ],
    );
    const lag = r[0] ? num(r[0].last_lag_ms) : undefined;
    lags.push(lag);
    if (lag !== undefined) {
      rows.push([update.channel, update.sku, update.location, update.version, lag, ackedAt]);
    }
  }
  for (let i = 0; i < rows.length; i += 100) {
    const chunk = rows.slice(i, i + 100);
    await db.execute(
      `INSERT INTO inventory_channel_lag (channel, sku, location, version, lag_ms, acked_at)
       VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
      chunk.flat(),
    );
  }
  return lags;
}

/**
 * The channel acknowledged a send: records it and its sync lag. Returns the lag in ms, or
 * undefined when the send was no longer the live one (its lease had passed to another).
 */
export async function acknowledgeChannelPush(
  db: InventorySql,
  update: Pick<ChannelAvailabilityUpdate, 'channel' | 'sku' | 'location' | 'version'>,
  ackedAt: number,
): Promise<number | undefined> {
  return (await acknowledgeChannelPushes(db, [{ update, ackedAt }]))[0];
}

/** The channel refused or failed a send: the key is due again (with its newest value). */
export async function abandonChannelPush(
  db: InventorySql,
  update: Pick<ChannelAvailabilityUpdate, 'channel' | 'sku' | 'location' | 'version'>,
  now: number,
): Promise<void> {
  await db.execute(
    `UPDATE inventory_channel_sync SET sending_version = NULL, sending_available = NULL,
       sending_until = NULL,
       pending_source_time = COALESCE(sending_source_time, pending_source_time),
       pending_since = COALESCE(pending_since, ?), sending_source_time = NULL
     WHERE channel = ? AND sku = ? AND location = ? AND sending_version = ?`,
    [now, update.channel, update.sku, update.location, update.version],
  );
}

/** What the channel was last acknowledged to show for a key (undefined before any ack). */
export async function acknowledgedAvailability(
  db: InventorySql,
  channel: string,
  sku: string,
  location: string,
): Promise<{ version: number; available: number; ackedAt: number } | undefined> {
  const rows = await db.query(
    `SELECT acked_version, acked_available, acked_at FROM inventory_channel_sync
     WHERE channel = ? AND sku = ? AND location = ? AND acked_at IS NOT NULL`,
    [channel, sku, location],
  );
  const r = rows[0];
  return r
    ? { version: num(r.acked_version), available: num(r.acked_available), ackedAt: num(r.acked_at) }
    : undefined;
}

export interface SyncLagSummary {
  channel: string;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Sync lag of a channel's acknowledged sends since `since` (epoch ms; default all). */
export async function channelSyncLag(
  db: InventorySql,
  channel: string,
  since = 0,
): Promise<SyncLagSummary> {
  const rows = await db.query(
    'SELECT lag_ms FROM inventory_channel_lag WHERE channel = ? AND acked_at >= ?',
    [channel, since],
  );
  const lags = rows.map((r) => num(r.lag_ms));
  return {
    channel,
    samples: lags.length,
    p50Ms: quantile(lags, 0.5),
    p99Ms: quantile(lags, 0.99),
    maxMs: lags.length ? Math.max(...lags) : 0,
  };
}
