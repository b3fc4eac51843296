// The order's lifecycle as the process manager keeps it, and how each state reads in the
// canonical `OrderStatus` that channels see.
import type { OrderStatus } from '../../canonical/index.js';

export const ORDER_STATES = [
  /** Accepted from a channel; references not checked yet (or waiting for the item lookup). */
  'received',
  /** Customer and items resolved; waiting for the tax quote when one was asked for. */
  'validated',
  /** Stock held; the sale is on its way to the ERP. */
  'reserved',
  /** Stock could not be held; allocation is retried as stock arrives. */
  'backordered',
  /** Parked in the exception list (an item the ERP does not know); waits for a fix. */
  'parked',
  /** Booked by the ERP; downstream systems are being told. */
  'posted',
  'partially_fulfilled',
  'fulfilled',
  /** Fulfilled and every downstream system acknowledged. */
  'closed',
  /** Refused (e.g. the ERP refused the sale): stock released, on the exception list. */
  'rejected',
  'cancelled',
] as const;
export type OrderState = (typeof ORDER_STATES)[number];

/** Allowed moves; anything else is ignored (an event that arrives too late or twice). */
const NEXT: Record<OrderState, readonly OrderState[]> = {
  received: ['validated', 'parked', 'rejected', 'cancelled'],
  validated: ['reserved', 'backordered', 'parked', 'rejected', 'cancelled'],
  reserved: ['posted', 'rejected', 'cancelled', 'partially_fulfilled', 'fulfilled'],
  backordered: ['reserved', 'parked', 'cancelled', 'rejected'],
  parked: ['received', 'validated', 'cancelled', 'rejected'],
  posted: ['partially_fulfilled', 'fulfilled', 'cancelled'],
  partially_fulfilled: ['fulfilled', 'cancelled'],
  fulfilled: ['closed'],
  closed: [],
  rejected: [],
  cancelled: [],
};

export function mayMove(from: OrderState, to: OrderState): boolean {
  return NEXT[from].includes(to);
}

const CANONICAL: Record<OrderState, OrderStatus> = {
  received: 'received',
  validated: 'accepted',
  reserved: 'accepted',
  backordered: 'on_hold',
  parked: 'on_hold',
  posted: 'posted',
  partially_fulfilled: 'partially_fulfilled',
  fulfilled: 'fulfilled',
  closed: 'closed',
  rejected: 'cancelled',
  cancelled: 'cancelled',
};

export function canonicalStatus(state: OrderState): OrderStatus {
  return CANONICAL[state];
}

/**
 * The two ways out of `rejected`, taken only by the order process itself: an order the ERP
 * refused (exception `erp_refused`) is posted after all when an operator replays the refused
 * posting and the ERP books it, and a refused order may still be cancelled at the channel (the
 * stock is released already; a replay booking it later is then cancelled in the ERP).
 */
export function mayLeaveRejected(from: OrderState, to: OrderState): boolean {
  return from === 'rejected' && (to === 'posted' || to === 'cancelled');
}

/** States in which the order is finished (no event moves it any more). */
export function isFinal(state: OrderState): boolean {
  return NEXT[state].length === 0;
}
