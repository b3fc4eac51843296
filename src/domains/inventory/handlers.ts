// Engine handlers of the inventory domain: `inventory.adjusted` is applied to the ledger in the
// handler's transaction; when the position's available-to-promise changes,
// `inventory.availability_changed` is emitted in the same transaction, and each configured
// channel's pending availability is brought up to date for the channel pushers (pusher.ts),
// which send it once the transaction has committed.
import {
  eventByName,
  makeEvent,
  type EventData,
  type InventoryPositionV1,
  type ReservationV1,
} from '../../canonical/index.js';
import {
  PermanentError,
  type AcceptRequest,
  type HandlerTx,
  type MessageHandler,
  type PriorityClass,
} from '../../runtime/index.js';
import { channelAvailable, type AvailabilityRules } from './availability.js';
import { AvailabilityLedger, type StockPosition } from './ledger.js';
import { recordAvailabilityChange } from './propagation.js';
import type { ReservationRecord } from './reservations.js';
import type { InventorySql } from './sql.js';

export interface InventoryHandlerOptions {
  rules?: AvailabilityRules;
  /** Channels whose pending availability is kept for the channel push. */
  channels?: readonly string[];
  /** CloudEvents `source` of the events the domain emits (default `/middlemart/inventory`). */
  eventSource?: string;
  /**
   * Called (inside the transaction, before its commit) whenever a channel's availability was
   * recorded, with the id of the handler's message: the composition root wakes the channel
   * pushers once that message's transaction has committed.
   */
  onRecorded?: (messageId: string | undefined) => void;
  now?: () => number;
}

/** What the engine offers for registering handlers. */
export interface HandlerRegistry {
  registerHandler(type: string, handler: MessageHandler): void;
}

const ADJUSTED = eventByName('inventory.adjusted');
const AVAILABILITY_CHANGED = eventByName('inventory.availability_changed');
const RESERVATION_CREATED = eventByName('reservation.created');
const RESERVATION_RELEASED = eventByName('reservation.released');

/** The canonical position of a ledger position. */
export function toInventoryPosition(p: StockPosition, asOf: number): InventoryPositionV1 {
  return {
    sku: p.sku,
    location: p.location,
    onHand: p.onHand,
    reserved: p.reserved,
    safetyStock: p.safetyStock,
    available: p.available,
    sourceSequence: p.version,
    asOf: new Date(asOf).toISOString(),
  };
}

/**
 * Emits `inventory.availability_changed` for a position whose ATP changed and records the new
 * availability for each channel, in the transaction `tx`. For use by every inventory flow
 * (adjustments, reservations) that runs in a handler.
 */
export async function publishAvailability(
  tx: HandlerTx,
  position: StockPosition,
  opts: InventoryHandlerOptions = {},
  /** When the change happened at its source (default: the newest adjustment's source time). */
  changedAt?: number,
): Promise<void> {
  const now = (opts.now ?? Date.now)();
  const sourceTime = changedAt ?? position.sourceTimestamp ?? now;
  const e = availabilityChangedEvent(position, opts, sourceTime, now, tx.message.traceparent);
  await tx.emit({
    ...e,
    idempotencyKey: `${tx.message.id}/availability/${position.sku}@${position.location}/v${position.version}`,
  });
  await recordChannels(tx, position, opts, sourceTime, now);
}

/** The `inventory.availability_changed` event of a position (type, key, class, payload). */
export function availabilityChangedEvent(
  position: StockPosition,
  opts: Pick<InventoryHandlerOptions, 'eventSource'>,
  sourceTime: number,
  now: number,
  traceparent?: string,
): { type: string; partitionKey: string; priority: PriorityClass; payload: unknown } {
  const data = toInventoryPosition(position, sourceTime);
  return {
    type: AVAILABILITY_CHANGED.type,
    partitionKey: AVAILABILITY_CHANGED.partitionKey(data),
    priority: AVAILABILITY_CHANGED.priority,
    payload: makeEvent('inventory.availability_changed', data, {
      source: opts.eventSource ?? '/middlemart/inventory',
      time: new Date(now),
      ...(traceparent ? { traceparent } : {}),
    }),
  };
}

/**
 * Publishes a position's change from a transaction that is not a handler's (API reservations,
 * expiry, reconciliation fixes): the event is accepted into the engine inside `tx`, so it
 * commits with the change, and each channel's newest value is recorded for the pushers.
 */
export async function publishAvailabilityOutside(
  tx: InventorySql,
  position: StockPosition,
  opts: InventoryHandlerOptions & { accept?: AcceptInTransaction },
  changedAt?: number,
): Promise<void> {
  const now = (opts.now ?? Date.now)();
  const sourceTime = changedAt ?? position.sourceTimestamp ?? now;
  if (opts.accept) {
    const e = availabilityChangedEvent(position, opts, sourceTime, now);
    const key = `availability/${position.sku}@${position.location}/v${position.version}`;
    await opts.accept(tx, {
      ...e,
      source: 'middlemart',
      idempotencyKey: key,
      requestHash: key,
    });
  }
  await recordChannels(tx, position, opts, sourceTime, now);
}

/** Accepts a message inside the caller's transaction (the engine's `acceptInTransaction`). */
export type AcceptInTransaction = (tx: InventorySql, req: AcceptRequest) => Promise<unknown>;

async function recordChannels(
  tx: InventorySql,
  position: StockPosition,
  opts: InventoryHandlerOptions,
  sourceTime: number,
  now: number,
): Promise<void> {
  if ((opts.channels ?? []).length > 0) {
    opts.onRecorded?.((tx as Partial<HandlerTx>).message?.id);
  }
  for (const channel of opts.channels ?? []) {
    await recordAvailabilityChange(
      tx,
      channel,
      {
        sku: position.sku,
        location: position.location,
        version: position.version,
        available: channelAvailable(
          position.available,
          position.location,
          opts.rules?.channels?.[channel],
        ),
        sourceTime,
      },
      now,
    );
  }
}

/** Reads the data of an `inventory.adjusted` message (a CloudEvent, or its bare data). */
export function adjustmentOf(payload: unknown): EventData<'inventory.adjusted'> {
  const data =
    payload !== null && typeof payload === 'object' && 'data' in payload
      ? (payload as { data: unknown }).data
      : payload;
  const parsed = ADJUSTED.data.safeParse(data);
  if (!parsed.success) {
    throw new PermanentError(`invalid inventory.adjusted data: ${parsed.error.message}`);
  }
  return parsed.data;
}

/** The handler of `inventory.adjusted`. */
export function adjustmentHandler(opts: InventoryHandlerOptions = {}): MessageHandler {
  const ledger = new AvailabilityLedger({
    ...(opts.rules ? { rules: opts.rules } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  });
  return async (message, tx) => {
    const a = adjustmentOf(message.payload);
    const result = await ledger.applyAdjustment(
      tx,
      {
        sku: a.sku,
        location: a.location,
        reason: a.reason,
        ...(a.delta === undefined ? {} : { delta: a.delta }),
        ...(a.count === undefined ? {} : { count: a.count }),
        sourceSystem: a.sourceSystem,
        sourceSequence: a.sourceSequence,
        sourceTimestamp: Date.parse(a.sourceTimestamp),
      },
      message.id,
    );
    if (result.outcome === 'applied' && result.after.available !== result.before.available) {
      await publishAvailability(tx, result.after, opts);
    }
  };
}

/** Registers the inventory domain's handlers on the engine. */
export function registerInventoryHandlers(
  engine: HandlerRegistry,
  opts: InventoryHandlerOptions = {},
): void {
  engine.registerHandler(ADJUSTED.type, adjustmentHandler(opts));
}

/** The canonical reservation of a stored one (a refused reservation has none). */
export function toCanonicalReservation(r: ReservationRecord): ReservationV1 {
  if (r.status === 'refused') throw new TypeError(`reservation ${r.id} was refused`);
  return {
    id: r.id,
    sku: r.sku,
    location: r.location,
    quantity: r.quantity,
    order: { orderId: r.orderId, ...(r.lineId === null ? {} : { lineId: r.lineId }) },
    channel: r.channel as ReservationV1['channel'],
    createdAt: new Date(r.createdAt).toISOString(),
    expiresAt: new Date(r.expiresAt).toISOString(),
    status: r.status,
  };
}

/**
 * Emits `reservation.created` for a reservation taken in this transaction. The reservation's
 * channel must be a canonical sales channel (web, mobile, store, marketplace).
 */
export async function publishReservationCreated(
  tx: HandlerTx,
  reservation: ReservationRecord,
  opts: Pick<InventoryHandlerOptions, 'eventSource'> = {},
): Promise<void> {
  const data = toCanonicalReservation(reservation);
  await tx.emit({
    type: RESERVATION_CREATED.type,
    partitionKey: RESERVATION_CREATED.partitionKey(data),
    priority: RESERVATION_CREATED.priority,
    payload: makeEvent('reservation.created', data, {
      source: opts.eventSource ?? '/middlemart/inventory',
      time: new Date(reservation.createdAt),
      ...(tx.message.traceparent ? { traceparent: tx.message.traceparent } : {}),
    }),
    idempotencyKey: `reservation/${reservation.id}/created`,
  });
}

/** Emits `reservation.released` for a reservation consumed, released or expired in this transaction. */
export async function publishReservationReleased(
  tx: HandlerTx,
  reservation: ReservationRecord,
  opts: Pick<InventoryHandlerOptions, 'eventSource'> = {},
): Promise<void> {
  const reason =
    reservation.status === 'committed'
      ? 'committed'
      : reservation.status === 'expired'
        ? 'expired'
        : 'cancelled';
  const releasedAt = reservation.closedAt ?? Date.now();
  const data = {
    reservationId: reservation.id,
    sku: reservation.sku,
    location: reservation.location,
    quantity: reservation.quantity,
    reason,
    releasedAt: new Date(releasedAt).toISOString(),
  } as const;
  await tx.emit({
    type: RESERVATION_RELEASED.type,
    partitionKey: RESERVATION_RELEASED.partitionKey(data),
    priority: RESERVATION_RELEASED.priority,
    payload: makeEvent('reservation.released', data, {
      source: opts.eventSource ?? '/middlemart/inventory',
      time: new Date(releasedAt),
      ...(tx.message.traceparent ? { traceparent: tx.message.traceparent } : {}),
    }),
    idempotencyKey: `reservation/${reservation.id}/released`,
  });
}
