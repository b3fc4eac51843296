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
import type { ErpBooking, ErpSalesOrder } from '../../ports/erp.js';
import type { ErpRouter } from '../../ports/routing.js';
import type { StockReservationPort } from '../../ports/stock.js';
import type { SystemAcknowledgement, SystemAction } from '../../ports/system-actions.js';
import {
  PermanentError,
  type HandlerTx,
  type MessageHandler,
  type PriorityClass,
  type QueuedMessage,
} from '../../runtime/index.js';
import { acknowledgeMovement, requestAccrual, type LoyaltyRule } from '../loyalty/index.js';
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
import { canonicalStatus, mayMove, type OrderState } from './states.js';

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
    // Lines and prices may change only until stock is held for them; later updates are kept
    // as identifiers only (the ERP booking is not rewritten).
    if (!['received', 'parked', 'validated', 'backordered'].includes(rec.state)) return;
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
    if (complete) await this.stock.consume(tx, rec.orderId);
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
    await this.stock.consume(tx, rec.orderId);
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
    if (parsed.data.lineIds && parsed.data.lineIds.length > 0) return; // line cancels: ERP-side
    const rec = await loadOrder(tx, parsed.data.orderId);
    if (!rec || !mayMove(rec.state, 'cancelled')) return;
    rec.updatedAt = this.now();
    rec.waitingFor = null;
    await this.stock.release(tx, rec.orderId, parsed.data.reason);
    await this.moveTo(tx, rec, 'cancelled', `cancelled: ${parsed.data.reason}`);
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
      case 'tax.quote':
        await this.taxQuoted(rec, ack, tx);
        break;
      case 'loyalty.accrue':
        await acknowledgeMovement(tx, ack.idempotencyKey, ackAt);
        break;
      default:
        break;
    }
    await this.closeWhenSettled(rec, tx);
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
    if (from === to || !mayMove(from, to)) return false;
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
