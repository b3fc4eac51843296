// Pushing availability to sales channels: how the coalescing plan (propagation.ts) becomes
// outbound deliveries, and how a channel's acknowledgement closes the loop.
//
//   change recorded ──► plan the key (claim it: one send in flight per channel × sku@location)
//        │                 └─► tx.deliver(channel, `channel.availability` action)      [outbox]
//        │                                         │  delivery gate: the channel's rate limit
//        │                                         ▼
//        │              refreshPush at send time: the claim moves up to the newest value, so a
//        │              delivery that waited behind the rate limit sends what is true now
//        │                                         │
//        ▼                                         ▼  acknowledgement (engine message)
//   newer changes wait  ◄──────── acknowledgeAvailability: record ack + lag, plan the key again
//
// Plans happen in the transaction that records a change (the adjustment handler), in the
// acknowledgement's transaction (the next value of a busy key), and in the push-due handler the
// background pump triggers (changes recorded outside the engine, leases that ran out). The value
// sent for a key never goes back: a key has one live send, each send carries the newest version
// at its send time, and an acknowledgement only counts for the live send.
import type { SystemAcknowledgement, SystemAction } from '../../ports/system-actions.js';
import type { HandlerTx, MessageHandler, PriorityClass } from '../../runtime/index.js';
import { acknowledgeChannelPush, planChannelPushes, type ChannelPush } from './propagation.js';
import { num, type InventorySql, type InventoryStore } from './sql.js';

/** The internal message that asks a worker to plan a channel's due pushes (payload `{channel}`). */
export const CHANNEL_PUSH_DUE_TYPE = 'com.middlemart.inventory.channel-push-due.v1';

/** The acknowledgement process name of availability pushes. */
export const AVAILABILITY_PROCESS = 'inventory';

export interface ChannelPushOptions {
  /** How long a planned push holds its key (ms). */
  leaseMs: number;
  /** Most pushes planned per channel in one pass. */
  maxPerPass?: number;
  /** Priority of the push deliveries (default standard). */
  priority?: PriorityClass;
  now?: () => number;
}

/** The `channel.availability` action of a planned push. */
export function availabilityAction(push: ChannelPush): SystemAction {
  const u = push.update;
  return {
    action: 'channel.availability',
    correlation: { process: AVAILABILITY_PROCESS, id: `${u.channel}/${u.sku}@${u.location}` },
    sku: u.sku,
    location: u.location,
    available: u.available,
    version: u.version,
    sourceTime: u.sourceTime,
  };
}

/** Writes one delivery per planned push in the handler's transaction. */
export async function deliverPushes(
  tx: HandlerTx,
  pushes: readonly ChannelPush[],
  opts: Pick<ChannelPushOptions, 'priority' | 'leaseMs'> & { now: number },
): Promise<void> {
  for (const push of pushes) {
    await tx.deliver({
      destination: push.update.channel,
      payload: availabilityAction(push),
      // Names the claim (its lease end, unique per key): a key planned again after its lease ran
      // out gets a new delivery, and the performer knows whether its claim is still the live one.
      idempotencyKey: `${push.idempotencyKey}/c${opts.now + opts.leaseMs}`,
      priority: opts.priority ?? 'standard',
    });
  }
}

/** Claims one key for sending when it is due (no live send, newer than acknowledged). */
export async function planKeyPush(
  db: InventorySql,
  channel: string,
  sku: string,
  location: string,
  opts: { now: number; leaseMs: number },
): Promise<ChannelPush | undefined> {
  const claimed = await db.query(
    `UPDATE inventory_channel_sync SET sending_version = latest_version,
       sending_available = latest_available, sending_until = ?,
       sending_source_time = COALESCE(sending_source_time, pending_source_time),
       pending_source_time = NULL, pending_since = NULL
     WHERE channel = ? AND sku = ? AND location = ? AND latest_version > acked_version
       AND (sending_version IS NULL OR sending_until <= ?)
     RETURNING sending_version, sending_available, sending_source_time`,
    [opts.now + opts.leaseMs, channel, sku, location, opts.now],
  );
  const c = claimed[0];
  if (!c) return undefined;
  const version = num(c.sending_version);
  return {
    idempotencyKey: `${channel}/${sku}@${location}/v${version}`,
    update: {
      channel,
      sku,
      location,
      available: num(c.sending_available),
      version,
      sourceTime: new Date(num(c.sending_source_time)).toISOString(),
    },
  };
}

/** Plans and delivers a key's push in a handler's transaction, when it is due. */
export async function pushKeyIfDue(
  tx: HandlerTx,
  channel: string,
  sku: string,
  location: string,
  opts: ChannelPushOptions,
): Promise<boolean> {
  const now = (opts.now ?? Date.now)();
  const push = await planKeyPush(tx, channel, sku, location, { now, leaseMs: opts.leaseMs });
  if (!push) return false;
  await deliverPushes(tx, [push], { ...opts, now });
  return true;
}

/** The handler of {@link CHANNEL_PUSH_DUE_TYPE}: plans the channel's due keys and delivers them. */
export function channelPushDueHandler(opts: ChannelPushOptions): MessageHandler {
  return async (message, tx) => {
    const channel = (message.payload as { channel?: unknown } | null)?.channel;
    if (typeof channel !== 'string' || channel.length === 0) return;
    const now = (opts.now ?? Date.now)();
    const pushes = await planChannelPushes(tx, channel, {
      now,
      calls: opts.maxPerPass ?? 500,
      leaseMs: opts.leaseMs,
    });
    await deliverPushes(tx, pushes, { ...opts, now });
  };
}

/** True when the channel has a key that is due and unclaimed. */
export async function hasDuePushes(
  db: InventorySql,
  channel: string,
  now: number,
): Promise<boolean> {
  const rows = await db.query(
    `SELECT 1 AS due FROM inventory_channel_sync
     WHERE channel = ? AND latest_version > acked_version
       AND (sending_version IS NULL OR sending_until <= ?) LIMIT 1`,
    [channel, now],
  );
  return rows.length > 0;
}

/** What the push performer reports back in the acknowledgement. */
export interface AvailabilityPushResult {
  /** The version the channel was sent (may be newer than the planned one). */
  version: number;
  available: number;
  /** True when this delivery was no longer the key's live send: nothing was sent. */
  superseded?: boolean;
}

/** The claim a push delivery's idempotency key names (its lease end), if any. */
export function claimOfDelivery(idempotencyKey: string): number | undefined {
  const m = /\/c(\d+)$/.exec(idempotencyKey);
  return m ? Number(m[1]) : undefined;
}

/**
 * Late binding at send time: moves the key's live send up to its newest value, so a delivery
 * that waited behind the channel's rate limit (or is retried) sends what is true now. Returns
 * the action to send, or undefined when this delivery's claim is no longer the key's live send.
 */
export async function refreshPush(
  store: InventoryStore,
  channel: string,
  action: Extract<SystemAction, { action: 'channel.availability' }>,
  deliveryKey: string,
): Promise<Extract<SystemAction, { action: 'channel.availability' }> | undefined> {
  const claim = claimOfDelivery(deliveryKey);
  // A delivery without a claim in its key names it by the version it was planned with.
  const live = claim === undefined ? 'sending_version = ?' : 'sending_until = ?';
  const liveValue = claim ?? action.version;
  // Read first, outside a transaction: most sends carry the newest value already.
  const current = await store.query(
    `SELECT sending_version, sending_available, latest_version FROM inventory_channel_sync
     WHERE channel = ? AND sku = ? AND location = ? AND sending_version IS NOT NULL AND ${live}`,
    [channel, action.sku, action.location, liveValue],
  );
  const c = current[0];
  if (!c) return undefined;
  if (num(c.latest_version) <= num(c.sending_version)) {
    return { ...action, version: num(c.sending_version), available: num(c.sending_available) };
  }
  return store.transaction(async (tx) => {
    const moved = await tx.query(
      `UPDATE inventory_channel_sync SET sending_version = latest_version,
         sending_available = latest_available, pending_source_time = NULL, pending_since = NULL
       WHERE channel = ? AND sku = ? AND location = ? AND sending_version IS NOT NULL AND ${live}
         AND latest_version > sending_version
       RETURNING sending_version, sending_available`,
      [channel, action.sku, action.location, liveValue],
    );
    const row =
      moved[0] ??
      (
        await tx.query(
          `SELECT sending_version, sending_available FROM inventory_channel_sync
           WHERE channel = ? AND sku = ? AND location = ? AND sending_version IS NOT NULL AND ${live}`,
          [channel, action.sku, action.location, liveValue],
        )
      )[0];
    if (!row) return undefined;
    return {
      ...action,
      version: num(row.sending_version),
      available: num(row.sending_available),
    };
  });
}

/**
 * Handles the acknowledgement of a `channel.availability` push in its transaction: records what
 * the channel shows and the sync lag, then plans the key's next value if it changed meanwhile.
 * Returns the sync lag in ms (undefined when the acknowledgement counted for nothing).
 */
export async function acknowledgeAvailability(
  tx: HandlerTx,
  ack: SystemAcknowledgement,
  opts: ChannelPushOptions,
): Promise<number | undefined> {
  if (ack.action !== 'channel.availability') return undefined;
  const result = ack.result as Partial<AvailabilityPushResult> | undefined;
  const slash = ack.correlation.id.indexOf('/');
  const key = ack.correlation.id.slice(slash + 1);
  const at = key.lastIndexOf('@');
  const sku = key.slice(0, at);
  const location = key.slice(at + 1);
  if (!result || result.superseded || typeof result.version !== 'number') return undefined;
  const ackedAt = Date.parse(ack.at);
  const lag = await acknowledgeChannelPush(
    tx,
    { channel: ack.destination, sku, location, version: result.version },
    Number.isFinite(ackedAt) ? ackedAt : (opts.now ?? Date.now)(),
  );
  await pushKeyIfDue(tx, ack.destination, sku, location, opts);
  return lag;
}
