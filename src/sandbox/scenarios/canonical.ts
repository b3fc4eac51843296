// Canonical forms of the sandbox's channel traffic: what a Shopify order, refund or customer, or
// a POS sale or return, becomes as a Middlemart CloudEvent. Ids, trace ids and times come from the
// caller's seeded random source and virtual clock, so the same seed builds the same events.
import { makeEvent } from '../../canonical/index.js';
import type {
  Address,
  CloudEvent,
  CustomerV1,
  OrderV1,
  PriceV1,
  ReturnV1,
} from '../../canonical/index.js';
import type {
  AddressRecord,
  CustomerRecord,
  OrderRecord,
  RefundRecord,
} from '../commerce/payloads.js';
import { orderTotals } from '../commerce/payloads.js';
import { seededUuid } from '../commerce/wire.js';
import type { PosTransaction } from '../pos/transactions.js';

export interface CanonicalEventsOptions {
  /** System id of the commerce platform in the estate config (default 'commerce'). */
  commerceSystem?: string;
  /** System id of the POS estate (default 'pos'). */
  posSystem?: string;
  /** Region orders and customers belong to (default 'eu'). */
  region?: string;
}

function hex(random: () => number, length: number): string {
  let out = '';
  while (out.length < length) out += Math.floor(random() * 16).toString(16);
  return /^0+$/.test(out) ? `1${out.slice(1)}` : out;
}

/** Builds canonical events with ids and trace context drawn from a seeded random source. */
export class CanonicalEvents {
  private readonly commerce: string;
  private readonly pos: string;
  private readonly region: string;

  constructor(
    private readonly random: () => number,
    opts: CanonicalEventsOptions = {},
  ) {
    this.commerce = opts.commerceSystem ?? 'commerce';
    this.pos = opts.posSystem ?? 'pos';
    this.region = opts.region ?? 'eu';
  }

  /** A W3C traceparent drawn from the seeded source. */
  traceparent(): string {
    return `00-${hex(this.random, 32)}-${hex(this.random, 16)}-01`;
  }

  private envelope(key: string, time: string, source: string) {
    return {
      source,
      id: seededUuid(this.random),
      time,
      idempotencyKey: key,
      traceparent: this.traceparent(),
    };
  }

  orderFromShopify(o: OrderRecord, channel: 'web' | 'mobile' = 'web'): OrderV1 {
    const tot = orderTotals(o);
    const cur = o.currency;
    const m = (amount: number) => ({ amount, currency: cur });
    const customer = o.customer
      ? {
          sourceRef: { system: this.commerce, id: o.customer.id.toString() },
          email: o.customer.email,
        }
      : { email: o.email ?? 'guest@example.com' };
    return {
      id: `${this.commerce}-${o.id.toString()}`,
      channel,
      externalIds: [{ system: this.commerce, id: o.id.toString() }],
      customer,
      currency: cur,
      pricesIncludeTax: false,
      lines: o.lines.map((l) => ({
        lineId: l.id.toString(),
        sku: l.variant.sku,
        title: l.productTitle,
        quantity: l.quantity,
        unitPrice: m(l.priceMinor),
        discounts: l.discountMinor > 0 ? [{ amount: m(l.discountMinor) }] : [],
        taxes:
          l.taxMinor > 0
            ? [
                {
                  amount: m(l.taxMinor),
                  rateBasisPoints: Math.round(o.taxRate * 10000),
                  kind: 'vat',
                },
              ]
            : [],
      })),
      fulfilment: { method: 'ship', serviceLevel: 'standard' },
      shipping: { amount: m(o.shippingMinor), taxes: [] },
      ...(o.billingAddress ? { billingAddress: address(o.billingAddress) } : {}),
      ...(o.shippingAddress ? { shippingAddress: address(o.shippingAddress) } : {}),
      totals: {
        subtotal: m(tot.lineItems),
        discountTotal: m(tot.discounts),
        shippingTotal: m(o.shippingMinor),
        taxTotal: m(tot.tax),
        grandTotal: m(tot.total),
      },
      placedAt: new Date(o.createdAt).toISOString(),
      region: this.region,
    };
  }

  orderCreated(o: OrderRecord, channel: 'web' | 'mobile'): CloudEvent {
    const order = this.orderFromShopify(o, channel);
    return makeEvent(
      'order.created',
      order,
      this.envelope(
        `${this.commerce}:order:${o.id.toString()}`,
        order.placedAt,
        `/sandbox/${this.commerce}`,
      ),
    );
  }

  customerFromShopify(c: CustomerRecord): CustomerV1 {
    return {
      id: `${this.commerce}-${c.id.toString()}`,
      sourceIds: [{ system: this.commerce, id: c.id.toString() }],
      givenName: c.firstName,
      familyName: c.lastName,
      emails: [{ address: c.email, primary: true, verified: c.verifiedEmail }],
      phones: c.address.phone ? [{ number: c.address.phone, kind: 'mobile', primary: true }] : [],
      addresses: [{ kind: 'shipping', address: address(c.address), default: true }],
      consents: [],
      region: this.region,
      createdAt: new Date(c.createdAt).toISOString(),
      updatedAt: new Date(c.updatedAt).toISOString(),
    };
  }

  customerCreated(c: CustomerRecord): CloudEvent {
    const customer = this.customerFromShopify(c);
    return makeEvent(
      'customer.created',
      customer,
      this.envelope(
        `${this.commerce}:customer:${c.id.toString()}`,
        customer.createdAt as string,
        `/sandbox/${this.commerce}`,
      ),
    );
  }

  returnFromRefund(r: RefundRecord, o: OrderRecord): ReturnV1 {
    const cur = o.currency;
    const at = new Date(r.createdAt).toISOString();
    const lines = r.lines.map((rl) => {
      const unit = rl.line.priceMinor - Math.round(rl.line.discountMinor / rl.line.quantity);
      const tax = Math.round((rl.line.taxMinor * rl.quantity) / rl.line.quantity);
      return {
        orderLineId: rl.line.id.toString(),
        sku: rl.line.variant.sku,
        quantity: rl.quantity,
        reason: 'no_longer_needed' as const,
        refundAmount: { amount: unit * rl.quantity + tax, currency: cur },
      };
    });
    return {
      id: `${this.commerce}-refund-${r.id.toString()}`,
      orderId: `${this.commerce}-${o.id.toString()}`,
      status: 'completed',
      lines,
      refundMethod: 'original_payment',
      currency: cur,
      refundTotal: { amount: r.amountMinor, currency: cur },
      returnLocation: { kind: 'warehouse', location: 'DC-EU-1' },
      requestedAt: at,
      completedAt: at,
    };
  }

  /**
   * A refund issued by the commerce platform, as the return Middlemart must process: the money
   * is refunded at the source, so it arrives as `return.requested` with status completed, like
   * the platform's own webhooks and the stores' returns (the returns process posts the credit,
   * restocks and reverses loyalty).
   */
  returnCompleted(r: RefundRecord, o: OrderRecord): CloudEvent {
    const ret = this.returnFromRefund(r, o);
    return makeEvent(
      'return.requested',
      ret,
      this.envelope(
        `${this.commerce}:refund:${r.id.toString()}`,
        ret.requestedAt,
        `/sandbox/${this.commerce}`,
      ),
    );
  }

  orderFromPos(tx: PosTransaction): OrderV1 {
    const m = (amount: number) => ({ amount, currency: tx.currency });
    return {
      id: `${this.pos}-${tx.transactionId}`,
      channel: 'store',
      externalIds: [{ system: this.pos, id: tx.transactionId }],
      customer: tx.customerEmail
        ? { email: tx.customerEmail }
        : { sourceRef: { system: this.pos, id: `${tx.storeId}/walk-in` } },
      currency: tx.currency,
      pricesIncludeTax: true,
      lines: tx.lines.map((l) => ({
        lineId: l.lineId,
        sku: l.sku,
        quantity: l.quantity,
        unitPrice: m(l.unitPrice),
        discounts: [],
        taxes: [],
      })),
      fulfilment: { method: 'store_sale', storeLocation: tx.storeId },
      totals: {
        subtotal: m(tx.total),
        discountTotal: m(0),
        shippingTotal: m(0),
        taxTotal: m(0),
        grandTotal: m(tx.total),
      },
      placedAt: tx.occurredAt,
      region: this.region,
    };
  }

  returnFromPos(tx: PosTransaction): ReturnV1 {
    return {
      id: `${this.pos}-${tx.transactionId}`,
      orderId: `${this.pos}-${tx.originalTransactionId ?? tx.transactionId}`,
      status: 'completed',
      lines: tx.lines.map((l) => ({
        orderLineId: l.lineId,
        sku: l.sku,
        quantity: l.quantity,
        reason: tx.returnReason ?? 'other',
        refundAmount: { amount: l.quantity * l.unitPrice, currency: tx.currency },
      })),
      refundMethod: tx.tender === 'cash' ? 'cash' : 'original_payment',
      currency: tx.currency,
      refundTotal: { amount: tx.total, currency: tx.currency },
      returnLocation: { kind: 'store', location: tx.storeId },
      requestedAt: tx.occurredAt,
      completedAt: tx.occurredAt,
    };
  }

  /** A POS transaction as its canonical event: order.created for a sale, return.requested for a return. */
  posTransaction(tx: PosTransaction): CloudEvent {
    const env = this.envelope(
      `${this.pos}:${tx.transactionId}`,
      tx.occurredAt,
      `/sandbox/${this.pos}/${tx.storeId}`,
    );
    return tx.kind === 'sale'
      ? makeEvent('order.created', this.orderFromPos(tx), env)
      : makeEvent('return.requested', this.returnFromPos(tx), env);
  }

  stockAdjusted(input: {
    sku: string;
    location: string;
    delta: number;
    reason:
      'receipt' | 'sale' | 'return' | 'cycle_count' | 'damage' | 'transfer_in' | 'transfer_out';
    sourceSystem: string;
    sourceSequence: number;
    at: string;
    /** Names the feed the movement belongs to in its idempotency key. */
    feed?: string;
  }): CloudEvent {
    return makeEvent(
      'inventory.adjusted',
      {
        sku: input.sku,
        location: input.location,
        reason: input.reason,
        delta: input.delta,
        sourceSystem: input.sourceSystem,
        sourceSequence: input.sourceSequence,
        sourceTimestamp: input.at,
      },
      this.envelope(
        `${input.sourceSystem}:${input.feed ?? 'stock'}:${input.sku}@${input.location}:${input.sourceSequence}`,
        input.at,
        `/sandbox/${input.sourceSystem}`,
      ),
    );
  }

  priceChanged(price: PriceV1, key: string, source: string): CloudEvent {
    return makeEvent('price.changed', price, this.envelope(key, price.effectiveFrom, source));
  }
}

function address(a: AddressRecord): Address {
  return {
    name: `${a.firstName} ${a.lastName}`,
    ...(a.company ? { company: a.company } : {}),
    lines: a.address2 ? [a.address1, a.address2] : [a.address1],
    city: a.city,
    ...(a.provinceCode ? { region: a.provinceCode } : {}),
    postalCode: a.zip,
    country: a.countryCode,
    ...(a.phone ? { phone: a.phone } : {}),
  };
}
