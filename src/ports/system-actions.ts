// The outbox payloads domains write for the systems around them (`tx.deliver({ destination,
// payload })`): one action per delivery, in canonical terms. The connector registered for the
// destination system translates the action into that system's API (REST, SOAP, JSON-RPC …), and
// answers with the system's acknowledgement. Domains never see a system's wire format.
//
// Acknowledgements flow back as messages: when a connector's call succeeds, the wiring accepts a
// `com.middlemart.system.acknowledged.v1` message (`SystemAcknowledgement`) into the engine,
// partitioned by the action's correlation key, so the process that asked sees the result in
// order with its other events (and a crash between the call and the acknowledgement only
// repeats the call, which every action below makes idempotent by `idempotencyKey`).
import type { OrderV1 } from '../canonical/index.js';
import type { ErpCancellation, ErpCredit, ErpSalesOrder } from './erp.js';

/** Who asked: the process instance the acknowledgement goes back to. */
export interface ActionCorrelation {
  /** `order`, `return`, `price`, `customer`, `inventory` … */
  process: string;
  /** The process instance's id (order id, return id …); also the ack's partition key. */
  id: string;
}

interface ActionBase {
  correlation: ActionCorrelation;
  /**
   * Set when the action carries a customer's personal data: the customer's residency region.
   * A system whose configured region the residency rules do not allow for it is refused the
   * action (dead-lettered with a residency reason), never sent it.
   */
  pii?: { customerRegion: string };
}

export type SystemAction =
  | (ActionBase & { action: 'erp.post-sales-order'; order: ErpSalesOrder })
  | (ActionBase & { action: 'erp.post-credit'; credit: ErpCredit })
  /** Cancels a booked sale (no lines) or amends it down (lines); answers an ErpCancellationResult. */
  | (ActionBase & { action: 'erp.cancel-sales-order'; cancel: ErpCancellation })
  | (ActionBase & {
      action: 'tax.quote';
      orderId: string;
      currency: string;
      shipTo?: { country: string; postalCode?: string; region?: string };
      lines: Array<{ sku: string; quantity: number; unitPriceMinor: number }>;
    })
  | (ActionBase & {
      action: 'crm.timeline-entry';
      /** Golden customer id; the connector finds the CRM contact by its cross-reference. */
      customerId?: string;
      email?: string;
      kind: 'order' | 'return' | 'shipment' | 'backorder' | 'consent' | 'note';
      summary: string;
      orderId?: string;
      amountMinor?: number;
      currency?: string;
      at: string;
    })
  | (ActionBase & {
      action: 'loyalty.accrue';
      memberId: string;
      points: number;
      orderId: string;
      amountMinor: number;
      currency: string;
    })
  | (ActionBase & {
      action: 'loyalty.reverse';
      memberId: string;
      points: number;
      orderId: string;
      returnId: string;
    })
  | (ActionBase & {
      action: 'wms.fulfilment-request';
      order: OrderV1;
      /** The DC that ships it. */
      location: string;
    })
  | (ActionBase & {
      action: 'store.pickup-task';
      orderId: string;
      store: string;
      lines: Array<{ sku: string; quantity: number }>;
    })
  | (ActionBase & {
      action: 'commerce.order-status';
      /** The commerce platform's own order id. */
      channelOrderId: string;
      status: string;
      tags?: string[];
      /** RFC 3339 date, for backorders. */
      expectedDate?: string;
      note?: string;
    })
  | (ActionBase & {
      action: 'notify.customer';
      template:
        | 'order-confirmation'
        | 'order-backordered'
        | 'order-shipped'
        | 'return-completed'
        | 'consent-changed';
      email?: string;
      phone?: string;
      data: Record<string, unknown>;
    })
  | (ActionBase & {
      action: 'channel.price';
      sku: string;
      /** Store group or store, for POS channels. */
      scope?: string;
      currency: string;
      listPriceMinor: number;
      salePriceMinor?: number;
      /** The price version; a channel refuses an older one than it shows. */
      version: number;
    })
  | (ActionBase & {
      action: 'channel.availability';
      sku: string;
      location: string;
      /** Units the channel may promise (after its allocation rule). */
      available: number;
      /** Position version; a channel refuses an older one than it shows. */
      version: number;
      /** When the newest movement behind it happened at its source (RFC 3339 UTC). */
      sourceTime: string;
    })
  | (ActionBase & {
      action: 'customer.sync';
      customerId: string;
      /** The system's own id for this identity, when it has one. */
      sourceId?: string;
      /** Attributes this system does not own, to set; owned ones are never sent. */
      attributes: Record<string, unknown>;
      consents?: Array<{ purpose: string; channel: string; status: string; at: string }>;
      mergedFrom?: string[];
    });

export type SystemActionName = SystemAction['action'];

/** The message type of acknowledgements (not a canonical catalogue event: internal). */
export const SYSTEM_ACKNOWLEDGED_TYPE = 'com.middlemart.system.acknowledged.v1';

/** What an acknowledgement and a refusal both say: which action, to whom, and when. */
export interface SystemAnswer {
  action: SystemActionName;
  correlation: ActionCorrelation;
  /** The system id the action went to. */
  destination: string;
  deliveryId: string;
  idempotencyKey: string;
  /** RFC 3339 UTC, when the system answered. */
  at: string;
}

export interface SystemAcknowledgement extends SystemAnswer {
  /** What the system answered, in canonical terms (e.g. an `ErpBooking`, a tax quote). */
  result?: unknown;
}

/**
 * The message type of refusals: a system refused an action permanently (an ERP answering 422, a
 * residency rule), so the asking process can act on it (not a canonical catalogue event).
 */
export const SYSTEM_REFUSED_TYPE = 'com.middlemart.system.refused.v1';

/**
 * A permanent refusal, shaped like the acknowledgement. The delivery is still dead-lettered, so
 * an operator can replay it once the system side is fixed; a replay that succeeds then sends the
 * ordinary acknowledgement.
 */
export interface SystemRefusal extends SystemAnswer {
  /** The system's message. */
  reason: string;
  /** The system's error code (`residency` for residency refusals). */
  code?: string;
  /** HTTP status the system answered, when there was one. */
  status?: number;
}

/** What a connector does with one action: performs it and returns the system's answer. */
export type ActionPerformer = (
  action: SystemAction,
  ctx: { signal: AbortSignal; idempotencyKey: string; attempt: number },
) => Promise<unknown>;

/**
 * Thrown by a connector when an action failed: `permanent` (the system refused it as sent; the
 * delivery is dead-lettered with `message`) or `transient` (try again later, after
 * `retryAfterSeconds` when the system said so). Any other error counts as transient.
 */
export class ActionError extends Error {
  override readonly name = 'ActionError';
  constructor(
    message: string,
    readonly kind: 'permanent' | 'transient',
    readonly details: { status?: number; code?: string; retryAfterSeconds?: number } = {},
  ) {
    super(message);
  }
}
