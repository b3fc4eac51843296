// What Middlemart asks of an ERP (cloud REST, legacy SOAP/files, Tryton JSON-RPC …): book a sales
// order and a credit, tell which items it knows, report stock by location, and report order
// status changes since a watermark. Shaped by three real protocols, not by one simulator: an ERP
// may have no idempotency keys (the connector then looks the external reference up before it
// creates), may ignore invalid transitions silently (the connector re-reads state), and reports
// money in its own decimal form (the connector converts from minor units).

/** A sales line as the ERP is asked to book it. Money in minor units of `currency`. */
export interface ErpSalesLine {
  sku: string;
  /** The ERP's own item id, when the item cross-reference resolved it. */
  erpItemId?: string;
  quantity: number;
  unitPriceMinor: number;
  /** Line discount in minor units (already subtracted from nothing: the ERP applies it). */
  discountMinor?: number;
  description?: string;
}

export interface ErpParty {
  /** The ERP's own customer/party id, when known. */
  erpCustomerId?: string;
  /** Middlemart's golden customer id (stored in the ERP as an external reference). */
  customerId?: string;
  name?: string;
  email?: string;
  country?: string;
}

export interface ErpSalesOrder {
  /**
   * Middlemart's order id: the external reference under which the ERP keeps the sale, and the
   * key by which a retry finds an earlier booking instead of creating a second one.
   */
  externalReference: string;
  /** The channel's own order number, for people reading the ERP. */
  channelOrderNumber?: string;
  currency: string;
  /** RFC 3339 UTC. */
  orderDate: string;
  party?: ErpParty;
  /** Fulfilment / warehouse location id (Middlemart's location ids, e.g. DC-EU-1). */
  location?: string;
  lines: ErpSalesLine[];
  shipTo?: {
    name?: string;
    line1?: string;
    line2?: string;
    city?: string;
    postalCode?: string;
    country?: string;
  };
  memo?: string;
}

export interface ErpBooking {
  /** The ERP's id of the sales document. */
  erpOrderId: string;
  /** The ERP's number a person would quote (may equal the id). */
  erpOrderNumber?: string;
  /** The ERP's state after booking, re-read from the ERP (e.g. `confirmed`, `processing`). */
  state: string;
  /** True when the ERP already had a sale with this external reference. */
  duplicate: boolean;
}

export interface ErpCreditLine {
  sku: string;
  erpItemId?: string;
  quantity: number;
  unitPriceMinor: number;
}

export interface ErpCredit {
  /** Middlemart's return id: the external reference of the credit note / return sale. */
  externalReference: string;
  /** The ERP sales document the credit refers to, when known. */
  erpOrderId?: string;
  /** Middlemart's order id of the original sale (its external reference in the ERP). */
  orderExternalReference?: string;
  currency: string;
  party?: ErpParty;
  lines: ErpCreditLine[];
  reason?: string;
}

export interface ErpCreditResult {
  erpCreditId: string;
  state: string;
  duplicate: boolean;
}

/**
 * A cancellation of a booked sale: the whole sale (no `lines`), or part of it (an amendment:
 * each line names the quantity that stays booked, so repeating it changes nothing).
 */
export interface ErpCancellation {
  /** Middlemart's order id: the sale's external reference. */
  externalReference: string;
  /** The ERP's id of the sale, when the booking's acknowledgement named it. */
  erpOrderId?: string;
  /** Absent: cancel the whole sale. Present: cut these lines to `remainingQuantity`. */
  lines?: Array<{
    sku: string;
    erpItemId?: string;
    /** What stays booked of this SKU after the amendment (0 = the line is cancelled). */
    remainingQuantity: number;
    /** What this amendment takes off (for people reading the ERP and for credit-style ERPs). */
    cancelledQuantity: number;
  }>;
  reason?: string;
}

export interface ErpCancellationResult {
  erpOrderId: string;
  /** The sale's state after the cancellation, re-read from the ERP. */
  state: string;
  /** True when the ERP had already cancelled it (or already held these quantities). */
  duplicate: boolean;
}

export interface ErpItem {
  sku: string;
  erpItemId: string;
  active: boolean;
}

export interface ErpStockLevel {
  sku: string;
  /** Middlemart's location id. */
  location: string;
  onHand: number;
}

/** An order's state as the ERP reports it back. */
export interface ErpOrderStatusChange {
  externalReference: string;
  erpOrderId: string;
  kind: 'shipped' | 'invoiced' | 'cancelled' | 'other';
  state: string;
  /** RFC 3339 UTC. */
  at: string;
  /** Lines shipped, when `kind` is `shipped`. */
  lines?: Array<{ sku: string; quantity: number }>;
}

export interface ErpCallContext {
  signal?: AbortSignal;
  /** Stable across retries of one delivery. */
  idempotencyKey?: string;
}

export interface ErpPort {
  /** The system id (from the estate config) this port talks to. */
  readonly system: string;
  /** Books the order once: a retry with the same external reference returns the same booking. */
  postSalesOrder(order: ErpSalesOrder, ctx?: ErpCallContext): Promise<ErpBooking>;
  /** Finds a booking by external reference (undefined when the ERP has none). */
  findSalesOrder(externalReference: string, ctx?: ErpCallContext): Promise<ErpBooking | undefined>;
  /**
   * Cancels a booked sale, or amends it down (lines); idempotent: a repeat answers `duplicate`.
   * A sale the ERP can no longer cancel (shipped, invoiced and closed) is a permanent ErpError.
   * Optional: an ERP without it cannot be asked, and the order process says so.
   */
  cancelSalesOrder?(cancel: ErpCancellation, ctx?: ErpCallContext): Promise<ErpCancellationResult>;
  /** Books a credit once per external reference. */
  postCredit(credit: ErpCredit, ctx?: ErpCallContext): Promise<ErpCreditResult>;
  /** The item cross-reference: which of these SKUs the ERP knows, and under which ids. */
  findItems(skus: readonly string[], ctx?: ErpCallContext): Promise<ErpItem[]>;
  /** On-hand by SKU and location (all locations the ERP manages when `locations` is absent). */
  stockLevels(locations?: readonly string[], ctx?: ErpCallContext): Promise<ErpStockLevel[]>;
  /**
   * Order status changes after `watermark` (opaque; undefined = from the beginning), oldest
   * first, with the watermark to pass next time.
   */
  statusChangesSince(
    watermark: string | undefined,
    ctx?: ErpCallContext,
  ): Promise<{ changes: ErpOrderStatusChange[]; watermark: string | undefined }>;
}

/**
 * How a failed ERP call should be treated: `permanent` (a business error such as an unknown
 * item or a closed period: dead-letter with the ERP's message), `transient` (connection failure,
 * 5xx, 429: retry with backoff), `warning` (the ERP asks for confirmation; the configured policy
 * decides). A connector never reports an ERP error as success.
 */
export type ErpFailureKind = 'permanent' | 'transient' | 'warning';

export class ErpError extends Error {
  override readonly name = 'ErpError';
  constructor(
    message: string,
    readonly kind: ErpFailureKind,
    readonly details: {
      system?: string;
      status?: number;
      /** The ERP's own error code or exception name. */
      code?: string;
      /** Seconds, from Retry-After. */
      retryAfterSeconds?: number;
    } = {},
  ) {
    super(message);
  }
}
