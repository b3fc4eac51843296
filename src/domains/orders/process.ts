// The order process manager: one persisted state machine per order, moved by the order's own
// events (created, updated, cancelled, shipped, fulfilled) and by the acknowledgements of the
// actions it asked for (tax quote, ERP booking, fan-out), all of which arrive in order on the
// order's partition. Every step runs in the handled message's transaction: state, sync
// bookkeeping, emitted events and outbound deliveries commit together or not at all, and every
// step checks where the order stands first, so a message processed twice has no second effect.
//
//   received ─ validate references (customer, SKU → ERP item) ─▶ validated ─ tax quote ─▶
//   reserve stock ─▶ reserved ─ post to the ERP ─▶ posted ─ fan out ─▶ (partially) fulfilled ─▶ closed
//   parked (exception list) · backordered (retried as stock arrives) · rejected · cancelled
//
// A system's permanent refusal arrives as a refusal message (`refused`): a refused sale rejects
// the order (`erp_refused`, stock released) until a replay books it. Cancellations after posting
// and line cuts (amendments) are sent to the ERP as `erp.cancel-sales-order` (ADR 0019).
import { createHash } from 'node:crypto';
import {
  OrderCancelledV1,
  OrderFulfilledV1,
  OrderV1,
  ShipmentV1,
  makeEvent,
  type OrderStatus,
} from '../../canonical/index.js';
import type { CustomerResolverPort } from '../../ports/customers.js';
import type { ErpBooking, ErpCancellation, ErpSalesOrder } from '../../ports/erp.js';
import type { ErpRouter } from '../../ports/routing.js';
import type { StockReservationPort } from '../../ports/stock.js';
import type {
  SystemAcknowledgement,
  SystemAction,
  SystemRefusal,
} from '../../ports/system-actions.js';
import {
  PermanentError,
  type HandlerTx,
  type MessageHandler,
  type PriorityClass,
  type QueuedMessage,
} from '../../runtime/index.js';
import {
  accrualOf,
  acknowledgeMovement,
  requestAccrual,
  requestReversal,
  type LoyaltyRule,
} from '../loyalty/index.js';
import {
  amendedLines,
  nextAmendment,
  recordAmendment,
  waitingAmendments,
  markAmendments,
  type LineReduction,
} from './amendments.js';
import { FallbackStockReservations } from './fallback-stock.js';
import { itemMappings, requestItemLookups } from './item-xref.js';
import {
  insertOrder,
  loadOrder,
  openException,
  recordIdentifier,
  resolveException,
  saveOrder,
  type OrderRecord,
} from './record.js';
import { canonicalStatus, mayLeaveRejected, mayMove, type OrderState } from './states.js';

/** States in which the order holds stock and the ERP has (or is about to have) the sale. */
const HOLDING_STATES: readonly OrderState[] = ['reserved', 'posted', 'partially_fulfilled'];

/** A stock port that can give back part of an order's reservation (the fallback table can). */
interface PartialRelease {
  releaseLines(
    tx: HandlerTx,
    orderId: string,
    lines: ReadonlyArray<{ sku: string; quantity: number }>,
    reason: string,
  ): Promise<void>;
}

function canReleaseLines(
  port: StockReservationPort,
): port is StockReservationPort & PartialRelease {
  return typeof (port as Partial<PartialRelease>).releaseLines === 'function';
}

/** Retries allocation of one backordered order (accepted by the background retry). */
export const ALLOCATION_RETRY_TYPE = 'com.middlemart.orders.allocation-retry.v1';
/** The item cross-reference answered SKUs an order waits for (or may un-park it). */
export const ITEMS_CHECKED_TYPE = 'com.middlemart.orders.items-checked.v1';

const SOURCE = '/middlemart/orders';

/** The systems each fan-out goes to; absent = that fan-out is off. */
export interface OrderSystems {
  tax?: string;
  crm?: string;
  loyalty?: string;
  wms?: string;
  commerce?: string;
  stores?: string;
  notifications?: string;
}

export interface OrderSettings {
  systems: OrderSystems;
  /** The ERP orders go to when no router is offered. */
  defaultErp?: string;
  taxQuote: 'missing-tax' | 'always' | 'never';
  /** Shipping DC by region; `default` for any other. */
  shipFrom: Readonly<Record<string, string>>;
  backorderExpectedDays: number;
  loyalty: LoyaltyRule;
  /**
   * The business unit an order belongs to, for ERP routing: by its store (fulfilment or pickup
   * location), else by the channel system it came from, else by its sales channel, else the
   * default. Absent: routing rules see no business unit.
   */
  businessUnits?: {
    byStore: Readonly<Record<string, string>>;
    bySystem: Readonly<Record<string, string>>;
    byChannel: Readonly<Record<string, string>>;
    default?: string;
  };
}

/** The business unit of an order by the configured mapping (store, then system, then channel). */
export function businessUnitOf(
  units: OrderSettings['businessUnits'],
  facts: { store?: string | undefined; system?: string | undefined; channel: string },
): string | undefined {
  if (!units) return undefined;
  return (
    (facts.store !== undefined ? units.byStore[facts.store] : undefined) ??
    (facts.system !== undefined ? units.bySystem[facts.system] : undefined) ??
    units.byChannel[facts.channel] ??
    units.default
  );
}

/** Services other domains offer; read at use, so a late offer is still taken. */
export interface OrderServices {
  erpRouter?: ErpRouter;
  stock?: StockReservationPort;
  customers?: CustomerResolverPort;
}

/** Where the process reports what it measures (metrics live outside the domain). */
export interface OrderObserver {
  /** From the order's accept to the ERP's acknowledgement. */
  posted?(ms: number): void;
  exception?(kind: string): void;
  /** From the fan-out request to the system's acknowledgement. */
  fanOutAcknowledged?(system: string, action: string, ms: number): void;
}

export interface OrderProcessDeps {
  settings: OrderSettings;
  services: OrderServices;
  observer?: OrderObserver;
  now?: () => number;
}

function dataOf(message: QueuedMessage): unknown {
  const p = message.payload as Record<string, unknown> | null;
  if (p && typeof p === 'object' && 'specversion' in p && 'data' in p) return p.data;
  return p;
}

function issuesOf(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }) {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A provisional customer id derived from the reference, the same for every order of it. */
export function provisionalCustomerId(ref: {
  customerId?: string | undefined;
  sourceRef?: { system: string; id: string } | undefined;
  email?: string | undefined;
}): string {
  const basis = ref.sourceRef
    ? `src:${ref.sourceRef.system}:${ref.sourceRef.id}`
    : ref.email
      ? `email:${ref.email.trim().toLowerCase()}`
      : `id:${ref.customerId ?? ''}`;
  return `cust-prov-${createHash('sha256').update(basis).digest('hex').slice(0, 20)}`;
}

export class OrderProcess {
  private readonly settings: OrderSettings;
  private readonly services: OrderServices;
  private readonly observer: OrderObserver;
  private readonly now: () => number;
  private readonly fallbackStock: FallbackStockReservations;

  constructor(deps: OrderProcessDeps) {
    this.settings = deps.settings;
    this.services = deps.services;
    this.observer = deps.observer ?? {};
    this.now = deps.now ?? Date.now;
    this.fallbackStock = new FallbackStockReservations(this.now);
  }

  /** The stock port in use: the inventory domain's when offered, else the fallback table. */
  get stock(): StockReservationPort {
    return this.services.stock ?? this.fallbackStock;
  }

  /** Handlers by message type. */
  handlers(): Record<string, MessageHandler> {
    return {
      'com.middlemart.order.created.v1': (m, tx) => this.orderCreated(m, tx),
      'com.middlemart.order.updated.v1': (m, tx) => this.orderUpdated(m, tx),
      'com.middlemart.order.cancelled.v1': (m, tx) => this.orderCancelled(m, tx),
      'com.middlemart.order.fulfilled.v1': (m, tx) => this.orderFulfilled(m, tx),
      'com.middlemart.shipment.confirmed.v1': (m, tx) => this.shipmentConfirmed(m, tx),
      [ALLOCATION_RETRY_TYPE]: (m, tx) => this.allocationRetry(m, tx),
      [ITEMS_CHECKED_TYPE]: (m, tx) => this.itemsChecked(m, tx),
    };
  }

  // ------------------------------------------------------------------------------ intake

  private async orderCreated(message: QueuedMessage, tx: HandlerTx): Promise<void> {
    const parsed = OrderV1.safeParse(dataOf(message));
    if (!parsed.success) {
      throw new PermanentError(`order.created: not a canonical order: ${issuesOf(parsed.error)}`);
    }
    const order = parsed.data;
    if (await loadOrder(tx, order.id)) return; // the same order again: already in process
    const now = this.now();
    const method = order.fulfilment.method;
    const location =
      method === 'pickup'
        ? (order.fulfilment.pickupLocation ?? null)
        : method === 'store_sale'
          ? (order.fulfilment.storeLocation ?? null)
          : (this.settings.shipFrom[order.region] ?? this.settings.shipFrom.default ?? null);
    const commerce = this.settings.systems.commerce;
    const commerceRef = commerce ? order.externalIds.find((r) => r.system === commerce) : undefined;
    const rec: OrderRecord = {
      orderId: order.id,
      state: 'received',
      waitingFor: null,
      channel: order.channel,
      region: order.region,
      country: order.shippingAddress?.country ?? order.billingAddress?.country ?? null,
      currency: order.currency,
      netTotalMinor: order.totals.subtotal.amount - order.totals.discountTotal.amount,
      customerId: null,
      customerProvisional: false,
      loyaltyMemberId: null,
      erpSystem: null,
      erpRule: null,
      erpReason: null,
      erpOrderId: null,
      fulfilmentMethod: method,
      fulfilmentLocation: location,
      commerceSystem: commerceRef ? (commerce ?? null) : null,
      commerceOrderId: commerceRef?.id ?? null,
      expectedDate: null,
      order,
      tax: null,
      shipped: {},
      traceparent: message.traceparent ?? null,
      acceptedAt: Date.parse(message.acceptedAt),
      postedAt: null,
      updatedAt: now,
      version: 0,
    };
    await insertOrder(tx, rec);
    await this.recordTransition(tx, rec, undefined, 'received', `accepted from ${order.channel}`);
    for (const ref of order.externalIds) await recordIdentifier(tx, ref.system, ref.id, order.id);
    await this.validate(rec, tx);
  }

  private async orderUpdated(message: QueuedMessage, tx: HandlerTx): Promise<void> {
    const parsed = OrderV1.safeParse(dataOf(message));
    if (!parsed.success) {
      throw new PermanentError(`order.updated: not a canonical order: ${issuesOf(parsed.error)}`);
    }
    const rec = await loadOrder(tx, parsed.data.id);
    if (!rec) {
      // An update of an order never seen: take it as the order.
      await this.orderCreated(message, tx);
      return;
    }
    for (const ref of parsed.data.externalIds) {
      await recordIdentifier(tx, ref.system, ref.id, rec.orderId);
    }
    // Lines and prices may change freely until stock is held for them. Later, an update may only
    // take quantities off (a line cancelled or reduced at the channel): the cancelled quantity's
    // reservation is released and the ERP's sale amended. Anything else is kept as identifiers.
    if (!['received', 'parked', 'validated', 'backordered'].includes(rec.state)) {
      const targets = new Map<string, number>();
      for (const line of rec.order.lines) {
        const now = parsed.data.lines.find((l) => l.lineId === line.lineId);
        targets.set(line.lineId, now?.quantity ?? 0);
      }
      await this.reduceLines(rec, targets, tx, 'order updated at the channel');
      return;
    }
    if (JSON.stringify(rec.order) === JSON.stringify(parsed.data)) return;
    rec.order = parsed.data;
    rec.netTotalMinor =
      parsed.data.totals.subtotal.amount - parsed.data.totals.discountTotal.amount;
    rec.updatedAt = this.now();
    await saveOrder(tx, rec);
    if (rec.state === 'parked' || (rec.state === 'received' && rec.waitingFor === 'items')) {
      await this.validate(rec, tx);
    }
  }

  // ---------------------------------------------------------------------------- validate

  private routeErp(rec: OrderRecord): { system: string; rule: string; reason: string } | undefined {
    const router = this.services.erpRouter;
    if (router) {
      const store =
        rec.order.fulfilment.storeLocation ?? rec.order.fulfilment.pickupLocation ?? undefined;
      const businessUnit = businessUnitOf(this.settings.businessUnits, {
        store,
        system: rec.commerceSystem ?? rec.order.customer.sourceRef?.system,
        channel: rec.channel,
      });
      return router.route({
        process: 'order',
        event: 'order.created',
        region: rec.region,
        channel: rec.channel,
        ...(businessUnit ? { businessUnit } : {}),
        ...(rec.country ? { country: rec.country } : {}),
        ...(store ? { store } : {}),
      });
    }
    const fallback = this.settings.defaultErp;
    return fallback
      ? { system: fallback, rule: 'default', reason: 'no routing rules offered: first ERP' }
      : undefined;
  }

  private async resolveCustomer(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    if (rec.customerId) return;
    const ref = rec.order.customer;
    const resolver = this.services.customers;
    const name = rec.order.shippingAddress?.name ?? rec.order.billingAddress?.name;
    let email = ref.email;
    if (resolver) {
      const resolved = await resolver.resolve(tx, {
        ...ref,
        source: ref.sourceRef?.system ?? rec.commerceSystem ?? rec.channel,
        ...(name ? { name } : {}),
      });
      rec.customerId = resolved.customerId;
      rec.customerProvisional = resolved.provisional;
      email ??= resolved.email;
      const loyalty = this.settings.systems.loyalty;
      rec.loyaltyMemberId = (loyalty ? resolved.sourceIds[loyalty] : undefined) ?? null;
    } else {
      rec.customerId = ref.customerId ?? provisionalCustomerId(ref);
      rec.customerProvisional = !ref.customerId;
    }
    // A loyalty card scanned at the till (or named by the channel) is the member itself.
    const loyalty = this.settings.systems.loyalty;
    if (!rec.loyaltyMemberId && loyalty && ref.sourceRef?.system === loyalty) {
      rec.loyaltyMemberId = ref.sourceRef.id;
    }
    if (email && !rec.order.customer.email) {
      rec.order = { ...rec.order, customer: { ...rec.order.customer, email } };
    }
    if (rec.customerProvisional) {
      await this.exception(
        tx,
        rec,
        'unknown_customer',
        `no customer is known for ${describeReference(ref)}: provisional customer ${rec.customerId} created; the order continues`,
        {
          // No email here: the exception list is read by channels for every order.
          ...(ref.customerId ? { customerId: ref.customerId } : {}),
          ...(ref.sourceRef ? { sourceRef: ref.sourceRef } : {}),
          byEmail: !ref.customerId && !ref.sourceRef && !!ref.email,
          provisionalId: rec.customerId,
        },
      );
    }
  }

  private async validate(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    const now = this.now();
    if (!rec.erpSystem) {
      const decision = this.routeErp(rec);
      if (!decision) {
        rec.updatedAt = now;
        await this.exception(tx, rec, 'no_erp', 'no ERP is configured to book the order', {});
        await this.moveTo(tx, rec, 'parked', 'no ERP configured');
        await saveOrder(tx, rec);
        return;
      }
      rec.erpSystem = decision.system;
      rec.erpRule = decision.rule;
      rec.erpReason = decision.reason;
    }
    await this.resolveCustomer(rec, tx);

    const skus = rec.order.lines.map((l) => l.sku);
    const mappings = await itemMappings(tx, rec.erpSystem, skus);
    const missing = [...new Set(skus)].filter((s) => !mappings.has(s));
    if (missing.length > 0) {
      await requestItemLookups(tx, rec.erpSystem, missing, now);
      rec.waitingFor = 'items';
      rec.updatedAt = now;
      await saveOrder(tx, rec);
      return;
    }
    const invalid = [...mappings.values()].filter((m) => m.status !== 'known');
    if (invalid.length > 0) {
      const reason = invalid
        .map(
          (m) =>
            `SKU ${m.sku} is ${m.status === 'inactive' ? 'inactive' : 'unknown'} in ${rec.erpSystem}`,
        )
        .join('; ');
      rec.waitingFor = null;
      rec.updatedAt = now;
      await this.exception(tx, rec, 'invalid_sku_mapping', reason, {
        erpSystem: rec.erpSystem,
        skus: invalid.map((m) => ({ sku: m.sku, status: m.status })),
      });
      await this.moveTo(tx, rec, 'parked', reason);
      await saveOrder(tx, rec);
      return;
    }
    rec.order = {
      ...rec.order,
      lines: rec.order.lines.map((l) => {
        const id = mappings.get(l.sku)?.erpItemId;
        return id ? { ...l, erpItemId: id } : l;
      }),
    };
    rec.waitingFor = null;
    rec.updatedAt = now;
    await resolveException(tx, rec.orderId, 'invalid_sku_mapping', now);
    await this.moveTo(tx, rec, 'validated', 'customer and items resolved');
    await this.enrich(rec, tx);
  }

  private async itemsChecked(message: QueuedMessage, tx: HandlerTx): Promise<void> {
    const orderId = (message.payload as { orderId?: unknown } | null)?.orderId;
    if (typeof orderId !== 'string') return;
    const rec = await loadOrder(tx, orderId);
    if (!rec) return;
    if (rec.state === 'parked' || (rec.state === 'received' && rec.waitingFor === 'items')) {
      await this.validate(rec, tx);
    }
  }

  // ------------------------------------------------------------------------------ enrich

  private needsTaxQuote(rec: OrderRecord): boolean {
    if (!this.settings.systems.tax || rec.fulfilmentMethod === 'store_sale') return false;
    if (this.settings.taxQuote === 'never') return false;
    if (this.settings.taxQuote === 'always') return true;
    const taxed =
      rec.order.lines.some((l) => l.taxes.length > 0) ||
      (rec.order.shipping?.taxes.length ?? 0) > 0;
    return !taxed;
  }

  private async enrich(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    if (this.needsTaxQuote(rec) && rec.tax === null) {
      const address = rec.order.shippingAddress ?? rec.order.billingAddress;
      const action: SystemAction = {
        action: 'tax.quote',
        correlation: { process: 'order', id: rec.orderId },
        orderId: rec.orderId,
        currency: rec.currency,
        ...(address
          ? {
              shipTo: {
                country: address.country,
                ...(address.postalCode ? { postalCode: address.postalCode } : {}),
                ...(address.region ? { region: address.region } : {}),
              },
            }
          : {}),
        lines: rec.order.lines.map((l) => ({
          sku: l.sku,
          quantity: l.quantity,
          unitPriceMinor: l.unitPrice.amount,
        })),
      };
      await this.requestStep(tx, rec, 'tax', this.settings.systems.tax!, action);
      rec.waitingFor = 'tax';
      await saveOrder(tx, rec);
      return;
    }
    await this.reserve(rec, tx);
  }

  private async taxQuoted(rec: OrderRecord, ack: SystemAcknowledgement, tx: HandlerTx) {
    if (rec.state !== 'validated' || rec.waitingFor !== 'tax') return;
    rec.tax = ack.result ?? {};
    rec.waitingFor = null;
    await this.reserve(rec, tx);
  }

  // ----------------------------------------------------------------------------- reserve

  private async reserve(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    const now = this.now();
    rec.updatedAt = now;
    if (rec.fulfilmentMethod === 'store_sale') {
      // Sold at the till: the goods are gone already; nothing to hold.
      await this.moveTo(tx, rec, 'reserved', 'sold at the till');
      await this.post(rec, tx);
      return;
    }
    const location = rec.fulfilmentLocation;
    if (!location) {
      await this.exception(tx, rec, 'no_fulfilment_node', 'no location fulfils the order', {});
      await this.moveTo(tx, rec, 'parked', 'no fulfilment node');
      await saveOrder(tx, rec);
      return;
    }
    const lines = rec.order.lines.map((l) => ({ sku: l.sku, quantity: l.quantity }));
    const outcome = await this.stock.reserve(tx, {
      orderId: rec.orderId,
      location,
      channel: rec.channel,
      lines,
    });
    if (outcome.ok) {
      await resolveException(tx, rec.orderId, 'backorder', now);
      rec.expectedDate = null;
      await this.moveTo(tx, rec, 'reserved', `stock held at ${location}`);
      await this.post(rec, tx);
      return;
    }
    if (rec.state === 'backordered') {
      await saveOrder(tx, rec); // still short: wait for the next retry
      return;
    }
    const reason = outcome.short
      .map((s) => `${s.sku}: ${s.requested} wanted, ${s.available} available at ${location}`)
      .join('; ');
    const expected = iso(now + this.settings.backorderExpectedDays * 86_400_000).slice(0, 10);
    rec.expectedDate = expected;
    rec.waitingFor = 'stock';
    await this.exception(tx, rec, 'backorder', reason, { location, short: outcome.short });
    await this.moveTo(tx, rec, 'backordered', reason);
    await saveOrder(tx, rec);
    const commerce = this.settings.systems.commerce;
    if (commerce && rec.commerceOrderId && rec.commerceSystem === commerce) {
      await this.requestStep(tx, rec, 'commerce:backordered', commerce, {
        action: 'commerce.order-status',
        correlation: { process: 'order', id: rec.orderId },
        channelOrderId: rec.commerceOrderId,
        status: 'backordered',
        tags: ['backordered'],
        expectedDate: expected,
        note: `Backordered: ${reason}`,
      });
    }
    const notifications = this.settings.systems.notifications;
    const email = rec.order.customer.email;
    if (notifications && email) {
      await this.requestStep(tx, rec, 'notify:backordered', notifications, {
        action: 'notify.customer',
        correlation: { process: 'order', id: rec.orderId },
        template: 'order-backordered',
        email,
        data: {
          orderId: rec.orderId,
          orderNumber: rec.commerceOrderId ?? rec.orderId,
          expectedDate: expected,
          skus: outcome.short.map((s) => s.sku),
        },
      });
    }
  }

  private async allocationRetry(message: QueuedMessage, tx: HandlerTx): Promise<void> {
    const orderId = (message.payload as { orderId?: unknown } | null)?.orderId;
    if (typeof orderId !== 'string') return;
    const rec = await loadOrder(tx, orderId);
    if (!rec || rec.state !== 'backordered') return;
    await this.reserve(rec, tx);
  }

  // -------------------------------------------------------------------------------- post

  private async post(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    const o = rec.order;
    const ship = o.shippingAddress;
    const erpOrder: ErpSalesOrder = {
      externalReference: rec.orderId,
      ...(rec.commerceOrderId || o.externalIds[0]
        ? { channelOrderNumber: rec.commerceOrderId ?? o.externalIds[0]!.id }
        : {}),
      currency: o.currency,
      orderDate: o.placedAt,
      party: {
        ...(rec.customerId ? { customerId: rec.customerId } : {}),
        ...((ship?.name ?? o.billingAddress?.name)
          ? { name: (ship?.name ?? o.billingAddress?.name)! }
          : {}),
        ...(o.customer.email ? { email: o.customer.email } : {}),
        ...(rec.country ? { country: rec.country } : {}),
      },
      ...(rec.fulfilmentLocation ? { location: rec.fulfilmentLocation } : {}),
      lines: o.lines.map((l) => {
        const discount = l.discounts.reduce((a, d) => a + d.amount.amount, 0);
        return {
          sku: l.sku,
          ...(l.erpItemId ? { erpItemId: l.erpItemId } : {}),
          quantity: l.quantity,
          unitPriceMinor: l.unitPrice.amount,
          ...(discount > 0 ? { discountMinor: discount } : {}),
          ...(l.title ? { description: l.title } : {}),
        };
      }),
      ...(ship
        ? {
            shipTo: {
              ...(ship.name ? { name: ship.name } : {}),
              ...(ship.lines[0] ? { line1: ship.lines[0] } : {}),
              ...(ship.lines[1] ? { line2: ship.lines[1] } : {}),
              city: ship.city,
              ...(ship.postalCode ? { postalCode: ship.postalCode } : {}),
              country: ship.country,
            },
          }
        : {}),
      memo: `Middlemart order ${rec.orderId} (${rec.channel})`,
    };
    await this.requestStep(
      tx,
      rec,
      'erp',
      rec.erpSystem!,
      {
        action: 'erp.post-sales-order',
        correlation: { process: 'order', id: rec.orderId },
        order: erpOrder,
      },
      'critical',
    );
    rec.waitingFor = 'erp';
    await saveOrder(tx, rec);
  }

  private async erpBooked(rec: OrderRecord, ack: SystemAcknowledgement, tx: HandlerTx) {
    if (rec.erpOrderId) return;
    const booking = (ack.result ?? {}) as Partial<ErpBooking>;
    const at = Date.parse(ack.at);
    const postedAt = Number.isFinite(at) ? at : this.now();
    rec.erpOrderId = booking.erpOrderId ?? null;
    rec.postedAt = postedAt;
    rec.waitingFor = null;
    rec.updatedAt = this.now();
    if (rec.erpOrderId) await recordIdentifier(tx, rec.erpSystem!, rec.erpOrderId, rec.orderId);
    if (booking.erpOrderNumber && booking.erpOrderNumber !== rec.erpOrderId) {
      await recordIdentifier(tx, rec.erpSystem!, booking.erpOrderNumber, rec.orderId);
    }
    if (rec.state === 'cancelled') {
      // Cancelled while the sale was on its way (or before a refused posting was replayed): the
      // ERP booked it after all, so it is cancelled there too; nothing is fanned out.
      await this.cancelInErp(rec, tx, 'the order was cancelled before the ERP booked it');
      await saveOrder(tx, rec);
      return;
    }
    if (rec.state === 'rejected') {
      // The refused posting was replayed and the ERP took it: hold the stock again and go on.
      await resolveException(tx, rec.orderId, 'erp_refused', this.now());
      if (rec.fulfilmentMethod !== 'store_sale' && rec.fulfilmentLocation) {
        const outcome = await this.stock.reserve(tx, {
          orderId: rec.orderId,
          location: rec.fulfilmentLocation,
          channel: rec.channel,
          lines: rec.order.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
        });
        if (!outcome.ok) {
          await this.exception(
            tx,
            rec,
            'backorder',
            `booked by ${rec.erpSystem} after a refusal, but stock is short: ${outcome.short
              .map((x) => `${x.sku}: ${x.requested} wanted, ${x.available} available`)
              .join('; ')}`,
            { location: rec.fulfilmentLocation, short: outcome.short },
          );
        }
      }
    }
    this.observer.posted?.(Math.max(0, postedAt - rec.acceptedAt));
    await this.moveTo(tx, rec, 'posted', `booked by ${rec.erpSystem} as ${rec.erpOrderId ?? '?'}`);
    await tx.emit({
      type: 'com.middlemart.order.posted.v1',
      partitionKey: rec.orderId,
      idempotencyKey: `order/${rec.orderId}/posted`,
      ...(rec.traceparent ? { traceparent: rec.traceparent } : {}),
      payload: makeEvent(
        'order.posted',
        {
          orderId: rec.orderId,
          erp: { system: rec.erpSystem!, id: rec.erpOrderId ?? rec.orderId },
          postedAt: iso(postedAt),
        },
        {
          source: SOURCE,
          id: `order/${rec.orderId}/posted`,
          ...(rec.traceparent ? { traceparent: rec.traceparent } : {}),
        },
      ),
    });
    await this.fanOut(rec, tx);
    if (rec.fulfilmentMethod === 'store_sale') {
      await this.moveTo(tx, rec, 'fulfilled', 'handed over at the till');
    }
    await saveOrder(tx, rec);
    // Lines cancelled while the sale was on its way: the ERP booked the old quantities.
    await this.sendWaitingAmendments(rec, tx);
  }

  // ------------------------------------------------------------------------------ fan out

  private async fanOut(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    const s = this.settings.systems;
    const o = rec.order;
    const correlation = { process: 'order', id: rec.orderId };
    const number = rec.commerceOrderId ?? o.externalIds[0]?.id ?? rec.orderId;
    if (s.crm) {
      await this.requestStep(tx, rec, 'crm:order', s.crm, {
        action: 'crm.timeline-entry',
        correlation,
        ...(rec.customerId ? { customerId: rec.customerId } : {}),
        ...(o.customer.email ? { email: o.customer.email } : {}),
        kind: 'order',
        summary: `Order ${number} (${rec.channel}) booked in ${rec.erpSystem}`,
        orderId: rec.orderId,
        amountMinor: o.totals.grandTotal.amount,
        currency: o.currency,
        at: o.placedAt,
      });
    }
    if (s.loyalty && rec.loyaltyMemberId) {
      const accrual = await requestAccrual(tx, {
        system: s.loyalty,
        memberId: rec.loyaltyMemberId,
        orderId: rec.orderId,
        amountMinor: rec.netTotalMinor,
        currency: rec.currency,
        rule: this.settings.loyalty,
        now: this.now(),
      });
      if (accrual) {
        await this.recordStep(
          tx,
          rec,
          'loyalty:accrue',
          s.loyalty,
          'loyalty.accrue',
          accrual.idempotencyKey,
        );
      }
    }
    if (rec.fulfilmentMethod === 'ship' && s.wms && rec.fulfilmentLocation) {
      await this.requestStep(tx, rec, 'wms', s.wms, {
        action: 'wms.fulfilment-request',
        correlation,
        order: { ...o, status: 'posted' },
        location: rec.fulfilmentLocation,
      });
    }
    if (rec.fulfilmentMethod === 'pickup' && s.stores && rec.fulfilmentLocation) {
      await this.requestStep(tx, rec, 'pickup', s.stores, {
        action: 'store.pickup-task',
        correlation,
        orderId: rec.orderId,
        store: rec.fulfilmentLocation,
        lines: o.lines.map((l) => ({ sku: l.sku, quantity: l.quantity })),
      });
    }
    await this.commerceStatus(rec, tx, 'commerce:posted', 'posted', [
      'erp-posted',
      ...(rec.erpOrderId ? [`erp:${rec.erpOrderId}`] : []),
    ]);
  }

  private async commerceStatus(
    rec: OrderRecord,
    tx: HandlerTx,
    step: string,
    status: string,
    tags: string[],
    note?: string,
  ): Promise<void> {
    const commerce = this.settings.systems.commerce;
    if (!commerce || !rec.commerceOrderId || rec.commerceSystem !== commerce) return;
    await this.requestStep(tx, rec, step, commerce, {
      action: 'commerce.order-status',
      correlation: { process: 'order', id: rec.orderId },
      channelOrderId: rec.commerceOrderId,
      status,
      tags,
      ...(note ? { note } : {}),
    });
  }

  // ------------------------------------------------------------------------ status back

  private async shipmentConfirmed(message: QueuedMessage, tx: HandlerTx): Promise<void> {
    const parsed = ShipmentV1.safeParse(dataOf(message));
    if (!parsed.success) {
      throw new PermanentError(`shipment.confirmed: ${issuesOf(parsed.error)}`);
    }
    const shipment = parsed.data;
    const rec = await loadOrder(tx, shipment.orderId);
    if (!rec) return;
    const inserted = await tx.execute(
      `INSERT INTO order_shipments (order_id, shipment_id, lines_json, shipped_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (order_id, shipment_id) DO NOTHING`,
      [rec.orderId, shipment.id, JSON.stringify(shipment.lines), Date.parse(shipment.shippedAt)],
    );
    if (inserted.changes === 0) return; // the same shipment again
    for (const l of shipment.lines) {
      const line =
        rec.order.lines.find((x) => x.lineId === l.orderLineId) ??
        rec.order.lines.find((x) => x.sku === l.sku);
      const key = line?.lineId ?? l.orderLineId;
      rec.shipped[key] = (rec.shipped[key] ?? 0) + l.quantity;
    }
    const complete = rec.order.lines.every((l) => (rec.shipped[l.lineId] ?? 0) >= l.quantity);
    const to: OrderState = complete ? 'fulfilled' : 'partially_fulfilled';
    rec.updatedAt = this.now();
    const tracking = shipment.trackingNumber ? [`tracking:${shipment.trackingNumber}`] : [];
    if (rec.state !== to)
      await this.moveTo(tx, rec, to, `shipment ${shipment.id} from ${shipment.fromLocation}`);
    if (complete) await this.stock.consume(tx, rec.orderId, this.currentLines(rec));
    await this.commerceStatus(rec, tx, `commerce:shipment:${shipment.id}`, to, [
      complete ? 'fulfilled' : 'partially-fulfilled',
      ...tracking,
    ]);
    const s = this.settings.systems;
    if (s.crm) {
      await this.requestStep(tx, rec, `crm:shipment:${shipment.id}`, s.crm, {
        action: 'crm.timeline-entry',
        correlation: { process: 'order', id: rec.orderId },
        ...(rec.customerId ? { customerId: rec.customerId } : {}),
        ...(rec.order.customer.email ? { email: rec.order.customer.email } : {}),
        kind: 'shipment',
        summary: `Order ${rec.commerceOrderId ?? rec.orderId} shipped with ${shipment.carrier}${shipment.trackingNumber ? ` (${shipment.trackingNumber})` : ''}`,
        orderId: rec.orderId,
        at: shipment.shippedAt,
      });
    }
    await saveOrder(tx, rec);
    await this.closeWhenSettled(rec, tx);
  }

  private async orderFulfilled(message: QueuedMessage, tx: HandlerTx): Promise<void> {
    const parsed = OrderFulfilledV1.safeParse(dataOf(message));
    if (!parsed.success) throw new PermanentError(`order.fulfilled: ${issuesOf(parsed.error)}`);
    const rec = await loadOrder(tx, parsed.data.orderId);
    if (!rec || !mayMove(rec.state, 'fulfilled')) return;
    rec.updatedAt = this.now();
    for (const l of rec.order.lines) rec.shipped[l.lineId] = l.quantity;
    await this.moveTo(tx, rec, 'fulfilled', 'fulfilment reported');
    await this.stock.consume(tx, rec.orderId, this.currentLines(rec));
    await this.commerceStatus(rec, tx, 'commerce:fulfilled', 'fulfilled', ['fulfilled']);
    const crm = this.settings.systems.crm;
    if (crm) {
      await this.requestStep(tx, rec, 'crm:fulfilled', crm, {
        action: 'crm.timeline-entry',
        correlation: { process: 'order', id: rec.orderId },
        ...(rec.customerId ? { customerId: rec.customerId } : {}),
        ...(rec.order.customer.email ? { email: rec.order.customer.email } : {}),
        kind: 'shipment',
        summary: `Order ${rec.commerceOrderId ?? rec.orderId} fulfilled`,
        orderId: rec.orderId,
        at: parsed.data.fulfilledAt,
      });
    }
    await saveOrder(tx, rec);
    await this.closeWhenSettled(rec, tx);
  }

  private async orderCancelled(message: QueuedMessage, tx: HandlerTx): Promise<void> {
    const parsed = OrderCancelledV1.safeParse(dataOf(message));
    if (!parsed.success) throw new PermanentError(`order.cancelled: ${issuesOf(parsed.error)}`);
    const rec = await loadOrder(tx, parsed.data.orderId);
    if (!rec) return;
    const lineIds = parsed.data.lineIds ?? [];
    if (lineIds.length > 0) {
      // Some lines cancelled: each to zero (what was shipped of it stays).
      await this.reduceLines(
        rec,
        new Map(lineIds.map((id) => [id, 0])),
        tx,
        `lines cancelled: ${parsed.data.reason}`,
      );
      return;
    }
    await this.cancelWhole(rec, tx, parsed.data.reason);
  }

  /**
   * Cancels the whole order: stock released, and when the ERP booked it already, the sale
   * cancelled in the ERP (`erp.cancel-sales-order`, critical) and the loyalty points reversed;
   * commerce and CRM hear of it when the ERP acknowledges the cancellation. A sale still on its
   * way to the ERP is cancelled there when its booking arrives.
   */
  private async cancelWhole(rec: OrderRecord, tx: HandlerTx, reason: string): Promise<void> {
    if (!mayMove(rec.state, 'cancelled') && !mayLeaveRejected(rec.state, 'cancelled')) return;
    rec.updatedAt = this.now();
    rec.waitingFor = null;
    await this.stock.release(tx, rec.orderId, reason);
    await this.moveTo(tx, rec, 'cancelled', `cancelled: ${reason}`);
    if (rec.erpOrderId) {
      await this.cancelInErp(rec, tx, reason);
      await this.reverseLoyalty(rec, tx);
    }
    await saveOrder(tx, rec);
  }

  private async cancelInErp(rec: OrderRecord, tx: HandlerTx, reason: string): Promise<void> {
    if (!rec.erpSystem) return;
    const cancel: ErpCancellation = {
      externalReference: rec.orderId,
      ...(rec.erpOrderId ? { erpOrderId: rec.erpOrderId } : {}),
      reason,
    };
    await this.requestStep(
      tx,
      rec,
      'erp:cancel',
      rec.erpSystem,
      {
        action: 'erp.cancel-sales-order',
        correlation: { process: 'order', id: rec.orderId },
        cancel,
      },
      'critical',
    );
  }

  /**
   * Takes back loyalty points: everything the order earned (cancelled), or the points of the
   * amendments' cancelled value. Only once the accrual is acknowledged: a reversal overtaking
   * its accrual would be refused for want of balance, so the accrual's acknowledgement calls
   * this again.
   */
  private async reverseLoyalty(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    const correlation = { process: 'order', id: rec.orderId };
    const now = this.now();
    const reversals: Array<{ ref: string; step: string; amount: number | 'all' }> = [];
    if (rec.state === 'cancelled') {
      reversals.push({ ref: `cancel-${rec.orderId}`, step: 'loyalty:reverse', amount: 'all' });
    } else {
      for (const a of await amendedLines(tx, rec.orderId)) {
        if (a.removedNetMinor > 0) {
          reversals.push({
            ref: `amend-${rec.orderId}-${a.seq}`,
            step: `loyalty:reverse:amend:${a.seq}`,
            amount: a.removedNetMinor,
          });
        }
      }
    }
    if (reversals.length === 0) return;
    const accrual = await accrualOf(tx, rec.orderId);
    if (!accrual || accrual.status !== 'acknowledged') return;
    for (const r of reversals) {
      const reversal = await requestReversal(tx, {
        orderId: rec.orderId,
        returnId: r.ref,
        refundMinor: r.amount,
        currency: rec.currency,
        rule: this.settings.loyalty,
        now,
        correlation,
      });
      if (reversal) {
        await this.recordStep(
          tx,
          rec,
          r.step,
          reversal.system,
          'loyalty.reverse',
          reversal.idempotencyKey,
        );
      }
    }
  }

  /** The order's lines as they stand (after amendments), for consuming its reservation. */
  private currentLines(rec: OrderRecord): Array<{ sku: string; quantity: number }> {
    return rec.order.lines.map((l) => ({ sku: l.sku, quantity: l.quantity }));
  }

  /**
   * Takes quantities off lines (`targets`: line id → the quantity it keeps; never below what
   * was shipped). Before stock is held the order is simply rewritten; while it holds stock, the
   * cancelled quantities are released and the ERP's sale is amended (now when it is booked,
   * else when its booking arrives); loyalty points of the cancelled value are reversed. Every
   * line cut to nothing cancels the order. The same update again finds nothing to take off.
   */
  private async reduceLines(
    rec: OrderRecord,
    targets: ReadonlyMap<string, number>,
    tx: HandlerTx,
    reason: string,
  ): Promise<void> {
    if (['cancelled', 'closed', 'fulfilled'].includes(rec.state)) return;
    const reductions: LineReduction[] = [];
    const lines: OrderRecord['order']['lines'] = [];
    for (const line of rec.order.lines) {
      const target = targets.get(line.lineId);
      const shipped = rec.shipped[line.lineId] ?? 0;
      const keep =
        target === undefined ? line.quantity : Math.min(line.quantity, Math.max(target, shipped));
      if (keep < line.quantity) {
        reductions.push({
          lineId: line.lineId,
          sku: line.sku,
          ...(line.erpItemId ? { erpItemId: line.erpItemId } : {}),
          from: line.quantity,
          to: keep,
        });
      }
      if (keep > 0) lines.push(keep < line.quantity ? scaleLine(line, keep) : line);
    }
    if (reductions.length === 0) return;
    if (lines.length === 0) {
      await this.cancelWhole(rec, tx, 'other');
      return;
    }
    const before = rec.order;
    rec.order = { ...before, lines, totals: retotal(before, lines) };
    const removedNetMinor =
      before.totals.subtotal.amount -
      before.totals.discountTotal.amount -
      (rec.order.totals.subtotal.amount - rec.order.totals.discountTotal.amount);
    rec.netTotalMinor = rec.order.totals.subtotal.amount - rec.order.totals.discountTotal.amount;
    rec.updatedAt = this.now();
    const holding = HOLDING_STATES.includes(rec.state) || rec.state === 'rejected';
    if (!holding) {
      // Nothing held or booked yet: the order is just smaller.
      await saveOrder(tx, rec);
      return;
    }
    if (HOLDING_STATES.includes(rec.state) && rec.fulfilmentMethod !== 'store_sale') {
      const released = reductions.map((r) => ({ sku: r.sku, quantity: r.from - r.to }));
      if (canReleaseLines(this.stock)) {
        await this.stock.releaseLines(tx, rec.orderId, released, reason);
      }
      // Otherwise the port can only release whole orders: the cancelled quantity stays held
      // until the reservation expires, and fulfilment consumes only what the order still has.
    }
    const seq = await nextAmendment(tx, rec.orderId);
    await recordAmendment(tx, {
      orderId: rec.orderId,
      seq,
      reductions,
      removedNetMinor,
      reason,
      status: rec.erpOrderId ? 'requested' : 'waiting',
      messageId: tx.message.id,
      at: this.now(),
    });
    await this.recordTransition(
      tx,
      rec,
      rec.state,
      rec.state,
      `${reason}: ${reductions.map((r) => `${r.sku} ${r.from}→${r.to}`).join(', ')}`,
    );
    await saveOrder(tx, rec);
    if (rec.erpOrderId) {
      await this.amendInErp(rec, tx, seq, reductions, reason);
      await this.reverseLoyalty(rec, tx);
    }
  }

  /** Asks the ERP to keep only what the order still has of the reduced SKUs. */
  private async amendInErp(
    rec: OrderRecord,
    tx: HandlerTx,
    seq: number,
    reductions: readonly LineReduction[],
    reason: string,
  ): Promise<void> {
    if (!rec.erpSystem) return;
    const skus = [...new Set(reductions.map((r) => r.sku))];
    const cancel: ErpCancellation = {
      externalReference: rec.orderId,
      ...(rec.erpOrderId ? { erpOrderId: rec.erpOrderId } : {}),
      lines: skus.map((sku) => {
        const erpItemId = reductions.find((r) => r.sku === sku && r.erpItemId)?.erpItemId;
        return {
          sku,
          ...(erpItemId ? { erpItemId } : {}),
          remainingQuantity: rec.order.lines
            .filter((l) => l.sku === sku)
            .reduce((a, l) => a + l.quantity, 0),
          cancelledQuantity: reductions
            .filter((r) => r.sku === sku)
            .reduce((a, r) => a + (r.from - r.to), 0),
        };
      }),
      reason,
    };
    await this.requestStep(
      tx,
      rec,
      `erp:amend:${seq}`,
      rec.erpSystem,
      {
        action: 'erp.cancel-sales-order',
        correlation: { process: 'order', id: rec.orderId },
        cancel,
      },
      'critical',
    );
  }

  /** Sends the amendments made while the sale was on its way, as one, once it is booked. */
  private async sendWaitingAmendments(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    const waiting = await waitingAmendments(tx, rec.orderId);
    if (waiting.length === 0) return;
    const last = waiting[waiting.length - 1]!;
    await markAmendments(
      tx,
      rec.orderId,
      waiting.map((a) => a.seq),
      'requested',
    );
    await this.amendInErp(
      rec,
      tx,
      last.seq,
      waiting.flatMap((a) => a.reductions),
      waiting.map((a) => a.reason).join('; '),
    );
    await this.reverseLoyalty(rec, tx);
  }

  // -------------------------------------------------------------------------- refusals

  /**
   * Handles a permanent refusal of an action this process asked for (in the order's partition):
   * the step is marked refused and the order goes to where an operator can see it. An ERP that
   * refuses the sale rejects the order (exception `erp_refused`, stock released, commerce told);
   * a refused cancellation or amendment, tax quote or fan-out opens an exception of its kind.
   * A replay of the refused delivery that succeeds arrives as an ordinary acknowledgement.
   */
  async refused(refusal: SystemRefusal, tx: HandlerTx): Promise<void> {
    const rec = await loadOrder(tx, refusal.correlation.id);
    if (!rec) return;
    const [step] = await tx.query<{ step: string; status: string }>(
      'SELECT step, status FROM order_sync WHERE order_id = ? AND idempotency_key = ?',
      [rec.orderId, refusal.idempotencyKey],
    );
    if (!step || step.status !== 'pending') return; // not ours, done, or refused before
    const now = this.now();
    await tx.execute(
      `UPDATE order_sync SET status = 'refused', detail = ? WHERE order_id = ? AND step = ?`,
      [
        summarise({ refused: refusal.reason, ...(refusal.code ? { code: refusal.code } : {}) }),
        rec.orderId,
        step.step,
      ],
    );
    rec.updatedAt = now;
    const detail = {
      system: refusal.destination,
      action: refusal.action,
      step: step.step,
      deliveryId: refusal.deliveryId,
      ...(refusal.code ? { code: refusal.code } : {}),
    };
    const by = `${refusal.destination}${refusal.code === 'residency' ? ' (residency)' : ''}`;
    switch (refusal.action) {
      case 'erp.post-sales-order': {
        if (rec.erpOrderId) return; // booked meanwhile
        await this.exception(
          tx,
          rec,
          'erp_refused',
          `${by} refused the sale: ${refusal.reason}`,
          detail,
        );
        if (rec.state === 'cancelled') break; // nothing held any more
        rec.waitingFor = null;
        await this.stock.release(tx, rec.orderId, 'erp_refused');
        await this.moveTo(tx, rec, 'rejected', `erp_refused: ${refusal.reason}`);
        await saveOrder(tx, rec);
        await this.commerceStatus(
          rec,
          tx,
          'commerce:rejected',
          'rejected',
          ['erp-refused'],
          `Refused by ${refusal.destination}: ${refusal.reason.slice(0, 300)}`,
        );
        return;
      }
      case 'erp.cancel-sales-order': {
        const amend = step.step.startsWith('erp:amend:');
        await this.exception(
          tx,
          rec,
          amend ? 'erp_amend_refused' : 'erp_cancel_refused',
          `${by} refused to ${amend ? 'amend' : 'cancel'} the sale: ${refusal.reason}`,
          detail,
        );
        break;
      }
      case 'tax.quote':
        await this.exception(
          tx,
          rec,
          'tax_failure',
          `${by} refused the tax quote: ${refusal.reason}`,
          detail,
        );
        break;
      default:
        await this.exception(
          tx,
          rec,
          `${refusal.action.split('.')[0]}_refused`,
          `${by} refused ${refusal.action}: ${refusal.reason}`,
          detail,
        );
        break;
    }
    await saveOrder(tx, rec);
  }

  // ------------------------------------------------------------------- acknowledgements

  /** Handles the acknowledgement of an action this process asked for (in the order's partition). */
  async acknowledged(ack: SystemAcknowledgement, tx: HandlerTx): Promise<void> {
    const rec = await loadOrder(tx, ack.correlation.id);
    if (!rec) return;
    const [step] = await tx.query<{
      step: string;
      system: string;
      action: string;
      status: string;
      requested_at: number;
    }>(
      'SELECT step, system, action, status, requested_at FROM order_sync WHERE order_id = ? AND idempotency_key = ?',
      [rec.orderId, ack.idempotencyKey],
    );
    if (!step || step.status === 'done') return; // not ours, or acknowledged before
    const afterRefusal = step.status === 'refused';
    const at = Date.parse(ack.at);
    const ackAt = Number.isFinite(at) ? at : this.now();
    await tx.execute(
      `UPDATE order_sync SET status = 'done', acknowledged_at = ?, detail = ? WHERE order_id = ? AND step = ?`,
      [ackAt, summarise(ack.result), rec.orderId, step.step],
    );
    if (ack.action !== 'erp.post-sales-order' && ack.action !== 'tax.quote') {
      this.observer.fanOutAcknowledged?.(
        step.system,
        step.action,
        Math.max(0, ackAt - Number(step.requested_at)),
      );
    }
    switch (ack.action) {
      case 'erp.post-sales-order':
        await this.erpBooked(rec, ack, tx);
        break;
      case 'erp.cancel-sales-order':
        if (afterRefusal) {
          const amend = step.step.startsWith('erp:amend:');
          await resolveException(
            tx,
            rec.orderId,
            amend ? 'erp_amend_refused' : 'erp_cancel_refused',
            ackAt,
          );
        }
        if (step.step === 'erp:cancel') await this.erpCancelled(rec, ack, tx);
        break;
      case 'tax.quote':
        if (afterRefusal) await resolveException(tx, rec.orderId, 'tax_failure', ackAt);
        await this.taxQuoted(rec, ack, tx);
        break;
      case 'loyalty.accrue':
        await acknowledgeMovement(tx, ack.idempotencyKey, ackAt);
        // A cancellation or amendment that came before the accrual's acknowledgement.
        await this.reverseLoyalty(rec, tx);
        break;
      case 'loyalty.reverse':
        await acknowledgeMovement(tx, ack.idempotencyKey, ackAt);
        break;
      default:
        if (afterRefusal) {
          await resolveException(tx, rec.orderId, `${ack.action.split('.')[0]}_refused`, ackAt);
        }
        break;
    }
    await this.closeWhenSettled(rec, tx);
  }

  /** The ERP cancelled the sale: commerce and CRM hear of it. */
  private async erpCancelled(rec: OrderRecord, ack: SystemAcknowledgement, tx: HandlerTx) {
    await this.commerceStatus(rec, tx, 'commerce:cancelled', 'cancelled', [
      'erp-cancelled',
      ...(rec.erpOrderId ? [`erp:${rec.erpOrderId}`] : []),
    ]);
    const crm = this.settings.systems.crm;
    const [told] = await tx.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM order_sync WHERE order_id = ? AND step = 'crm:order'`,
      [rec.orderId],
    );
    if (crm && Number(told?.n ?? 0) > 0) {
      // CRM heard of the order, so it hears of its cancellation.
      await this.requestStep(tx, rec, 'crm:cancelled', crm, {
        action: 'crm.timeline-entry',
        correlation: { process: 'order', id: rec.orderId },
        ...(rec.customerId ? { customerId: rec.customerId } : {}),
        ...(rec.order.customer.email ? { email: rec.order.customer.email } : {}),
        kind: 'order',
        summary: `Order ${rec.commerceOrderId ?? rec.orderId} cancelled in ${rec.erpSystem}`,
        orderId: rec.orderId,
        at: ack.at,
      });
    }
  }

  private async closeWhenSettled(rec: OrderRecord, tx: HandlerTx): Promise<void> {
    if (rec.state !== 'fulfilled') return;
    const [pending] = await tx.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM order_sync WHERE order_id = ? AND status <> 'done'`,
      [rec.orderId],
    );
    if (Number(pending?.n ?? 0) > 0) return;
    rec.updatedAt = this.now();
    await this.moveTo(tx, rec, 'closed', 'fulfilled and every system in sync');
    await saveOrder(tx, rec);
  }

  // ------------------------------------------------------------------------------ helpers

  private async recordStep(
    tx: HandlerTx,
    rec: OrderRecord,
    step: string,
    system: string,
    action: string,
    idempotencyKey: string,
  ): Promise<boolean> {
    const r = await tx.execute(
      `INSERT INTO order_sync (order_id, step, system, action, idempotency_key, status, requested_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?)
       ON CONFLICT (order_id, step) DO NOTHING`,
      [rec.orderId, step, system, action, idempotencyKey, this.now()],
    );
    return r.changes > 0;
  }

  /** Writes one outbound action as its own delivery and tracks it as a sync step, once. */
  private async requestStep(
    tx: HandlerTx,
    rec: OrderRecord,
    step: string,
    system: string,
    action: SystemAction,
    priority?: PriorityClass,
  ): Promise<void> {
    const key = `order/${rec.orderId}/${step}`;
    if (!(await this.recordStep(tx, rec, step, system, action.action, key))) return;
    await tx.deliver({
      destination: system,
      payload: action,
      idempotencyKey: key,
      ...(priority ? { priority } : {}),
      ...(rec.traceparent ? { traceparent: rec.traceparent } : {}),
    });
  }

  private async exception(
    tx: HandlerTx,
    rec: OrderRecord,
    kind: string,
    reason: string,
    detail: unknown,
  ): Promise<void> {
    if (await openException(tx, rec.orderId, kind, reason, detail, this.now())) {
      this.observer.exception?.(kind);
    }
  }

  private async moveTo(
    tx: HandlerTx,
    rec: OrderRecord,
    to: OrderState,
    reason: string,
  ): Promise<boolean> {
    const from = rec.state;
    if (from === to || !(mayMove(from, to) || mayLeaveRejected(from, to))) return false;
    rec.state = to;
    rec.version += 1;
    await this.recordTransition(tx, rec, from, to, reason);
    await saveOrder(tx, rec);
    return true;
  }

  private async recordTransition(
    tx: HandlerTx,
    rec: OrderRecord,
    from: OrderState | undefined,
    to: OrderState,
    reason: string,
  ): Promise<void> {
    const [last] = await tx.query<{ seq: number | null }>(
      'SELECT MAX(seq) AS seq FROM order_transitions WHERE order_id = ?',
      [rec.orderId],
    );
    const seq = Number(last?.seq ?? 0) + 1;
    const at = this.now();
    await tx.execute(
      `INSERT INTO order_transitions (order_id, seq, from_state, to_state, reason, at, message_id)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
      [rec.orderId, seq, from ?? null, to, reason.slice(0, 1000), at, tx.message.id],
    );
    const fromStatus: OrderStatus | undefined = from ? canonicalStatus(from) : undefined;
    const toStatus = canonicalStatus(to);
    if (fromStatus === toStatus) return;
    const id = `order/${rec.orderId}/status/${seq}`;
    await tx.emit({
      type: 'com.middlemart.order.status_changed.v1',
      partitionKey: rec.orderId,
      idempotencyKey: id,
      ...(rec.traceparent ? { traceparent: rec.traceparent } : {}),
      payload: makeEvent(
        'order.status_changed',
        {
          orderId: rec.orderId,
          ...(fromStatus ? { from: fromStatus } : {}),
          to: toStatus,
          reason: reason.slice(0, 500),
          changedAt: iso(at),
        },
        { source: SOURCE, id, ...(rec.traceparent ? { traceparent: rec.traceparent } : {}) },
      ),
    });
  }
}

function describeReference(ref: {
  customerId?: string | undefined;
  sourceRef?: { system: string; id: string } | undefined;
  email?: string | undefined;
}): string {
  if (ref.customerId) return `customer ${ref.customerId}`;
  if (ref.sourceRef) return `${ref.sourceRef.system} customer ${ref.sourceRef.id}`;
  return 'a guest email';
}

function summarise(result: unknown): string | null {
  if (result === undefined || result === null) return null;
  const text = JSON.stringify(result);
  return text.length > 2000 ? text.slice(0, 2000) : text;
}

type OrderLine = OrderRecord['order']['lines'][number];

/** A line cut to `quantity`, its discounts and taxes in proportion (rounded to minor units). */
function scaleLine(line: OrderLine, quantity: number): OrderLine {
  const f = quantity / line.quantity;
  return {
    ...line,
    quantity,
    discounts: line.discounts.map((d) => ({
      ...d,
      amount: { ...d.amount, amount: Math.round(d.amount.amount * f) },
    })),
    taxes: line.taxes.map((t) => ({
      ...t,
      amount: { ...t.amount, amount: Math.round(t.amount.amount * f) },
    })),
  };
}

/** The order's totals after its lines changed (shipping unchanged). */
function retotal(order: OrderRecord['order'], lines: readonly OrderLine[]) {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const lineTax = (ls: readonly OrderLine[]) =>
    sum(ls.flatMap((l) => l.taxes.map((t) => t.amount.amount)));
  const subtotal = sum(lines.map((l) => l.quantity * l.unitPrice.amount));
  const discountTotal = sum(lines.flatMap((l) => l.discounts.map((d) => d.amount.amount)));
  const taxTotal = order.totals.taxTotal.amount - lineTax(order.lines) + lineTax(lines);
  const grandTotal =
    subtotal -
    discountTotal +
    order.totals.shippingTotal.amount +
    (order.pricesIncludeTax ? 0 : taxTotal);
  const m = (amount: number) => ({ amount, currency: order.currency });
  return {
    ...order.totals,
    subtotal: m(subtotal),
    discountTotal: m(discountTotal),
    taxTotal: m(Math.max(0, taxTotal)),
    grandTotal: m(Math.max(0, grandTotal)),
  };
}
