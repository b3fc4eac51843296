// Shopify resources (as webhook bodies, read by `parseShopifyJson` so ids stay exact) mapped to
// the canonical model: an order to `OrderV1`, a refund to `ReturnV1`, a customer to
// `CustomerV1`, a cancellation to `OrderCancelledV1`. Every refusal names the Shopify field that
// caused it (`line_items[2].sku`); what the canonical schema refuses after mapping is named by
// its canonical path, prefixed `canonical.`.
import {
  CustomerV1,
  E164_PATTERN,
  OrderCancelledV1,
  OrderV1,
  ReturnV1,
  formatPath,
  isCountryCode,
  isCurrencyCode,
  minorUnitsOf,
  toValidationIssues,
} from '../../canonical/index.js';
import type {
  Address,
  Consent,
  CustomerV1 as Customer,
  OrderLine,
  OrderV1 as Order,
  ReturnV1 as Return,
  SalesChannel,
  TaxLine,
} from '../../canonical/index.js';
import type { z } from 'zod';
import { shopifyIdOf } from './json.js';

export interface MappingIssue {
  /** Field path in the Shopify body (`line_items[0].price`) or `canonical.<path>`. */
  path: string;
  message: string;
}

export type Mapped<T> = { ok: true; value: T } | { ok: false; issues: MappingIssue[] };

/** Where a mapped resource comes from and what the estate config says about that shop. */
export interface ShopContext {
  /** The shop's system id in the estate config (e.g. `commerce`). */
  systemId: string;
  /** The region orders and customers of this shop belong to. */
  region: string;
  /** Middlemart location goods refunded through this shop come back to. */
  returnLocation: string;
}

/** Canonical id of a Shopify order: `<systemId>-<shopify order id>`. */
export function orderIdOf(systemId: string, shopifyOrderId: string): string {
  return `${systemId}-${shopifyOrderId}`;
}

type Rec = Record<string, unknown>;
type Path = Array<string | number>;

function isRec(v: unknown): v is Rec {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

/** Collects issues while reading one body. */
class Reader {
  readonly issues: MappingIssue[] = [];

  fail(path: Path, message: string): undefined {
    this.issues.push({ path: formatPath(path), message });
    return undefined;
  }

  /** A Shopify id, checked against its `admin_graphql_api_id` twin when both are present. */
  id(obj: Rec, path: Path, gidType?: string): string | undefined {
    const raw = obj.id;
    const id = shopifyIdOf(raw);
    if (id === undefined) {
      return this.fail(
        [...path, 'id'],
        typeof raw === 'number'
          ? `id ${raw} is not an exact integer id (a JSON number above 2^53 was rounded upstream)`
          : 'expected a Shopify id (a positive integer)',
      );
    }
    const gid = str(obj.admin_graphql_api_id);
    if (gidType && gid) {
      const m = new RegExp(`^gid://shopify/${gidType}/(\\d+)$`).exec(gid);
      if (m && m[1] !== id) {
        return this.fail(
          [...path, 'id'],
          `id ${id} differs from admin_graphql_api_id ${gid}: the id was rounded by a JSON number conversion before it was sent; ids must travel as exact integers`,
        );
      }
    }
    return id;
  }

  /** A decimal amount (Shopify's "12.34", or a number) in minor units of `currency`. */
  money(value: unknown, currency: string, path: Path): number | undefined {
    const digits = minorUnitsOf(currency) ?? 2;
    let text: string | undefined;
    if (typeof value === 'string') text = value.trim();
    else if (typeof value === 'number' && Number.isFinite(value)) text = value.toFixed(digits);
    const m = text === undefined ? null : /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
    if (!m) return this.fail(path, `expected a decimal amount such as "12.34", got ${show(value)}`);
    const [, sign = '', whole = '0', frac = ''] = m;
    if (frac.length > digits && /[1-9]/.test(frac.slice(digits))) {
      return this.fail(
        path,
        `${text} has more decimals than ${currency} has minor units (${digits})`,
      );
    }
    const minor = Number(whole) * 10 ** digits + Number(frac.slice(0, digits).padEnd(digits, '0'));
    if (!Number.isSafeInteger(minor)) return this.fail(path, `${text} is too large`);
    return sign === '-' ? -minor : minor;
  }

  /** The shop-money amount of a `_set` twin when present, else the plain field. */
  moneyOf(obj: Rec, field: string, currency: string, path: Path): number | undefined {
    const set = obj[`${field}_set`];
    if (isRec(set) && isRec(set.shop_money) && set.shop_money.amount !== undefined) {
      return this.money(set.shop_money.amount, currency, [
        ...path,
        `${field}_set`,
        'shop_money',
        'amount',
      ]);
    }
    return this.money(obj[field], currency, [...path, field]);
  }

  /** RFC 3339 with offset → UTC `…Z`. */
  time(value: unknown, path: Path): string | undefined {
    if (
      typeof value !== 'string' ||
      !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value) ||
      Number.isNaN(Date.parse(value))
    ) {
      return this.fail(
        path,
        `expected an RFC 3339 time such as 2026-01-05T09:00:00+00:00, got ${show(value)}`,
      );
    }
    return new Date(value).toISOString();
  }

  currency(value: unknown, path: Path): string | undefined {
    if (typeof value === 'string' && isCurrencyCode(value)) return value;
    return this.fail(path, `expected an ISO 4217 currency code, got ${show(value)}`);
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function canonicalIssues(error: z.ZodError): MappingIssue[] {
  return toValidationIssues(error.issues, ['canonical']).map((i) => ({
    path: i.path,
    message: i.message,
  }));
}

/** A Shopify address; a phone that is not E.164 is left out (Shopify does not validate them). */
function mapAddress(r: Reader, a: unknown, path: Path): Address | undefined {
  if (!isRec(a)) return r.fail(path, 'expected an address object');
  const line1 = str(a.address1);
  const city = str(a.city);
  const country = str(a.country_code);
  if (!line1) r.fail([...path, 'address1'], 'an address needs a street line');
  if (!city) r.fail([...path, 'city'], 'an address needs a city');
  if (!country || !isCountryCode(country)) {
    r.fail(
      [...path, 'country_code'],
      `expected an ISO 3166-1 alpha-2 country code, got ${show(a.country_code)}`,
    );
  }
  if (!line1 || !city || !country || !isCountryCode(country)) return undefined;
  const name =
    str(a.name) ?? ([str(a.first_name), str(a.last_name)].filter(Boolean).join(' ') || undefined);
  const phone = str(a.phone)?.replace(/[\s().-]/g, '');
  const line2 = str(a.address2);
  return {
    ...(name ? { name } : {}),
    ...(str(a.company) ? { company: str(a.company) } : {}),
    lines: line2 ? [line1, line2] : [line1],
    city,
    ...(str(a.province_code) ? { region: str(a.province_code) } : {}),
    ...(str(a.zip) ? { postalCode: str(a.zip) } : {}),
    country,
    ...(phone && E164_PATTERN.test(phone) ? { phone } : {}),
  };
}

function mapTaxLines(r: Reader, lines: unknown, currency: string, path: Path): TaxLine[] {
  const out: TaxLine[] = [];
  arr(lines).forEach((t, i) => {
    if (!isRec(t)) return void r.fail([...path, i], 'expected a tax line object');
    const amount = r.moneyOf(t, 'price', currency, [...path, i]);
    const rate = typeof t.rate === 'number' ? Math.round(t.rate * 10000) : undefined;
    if (rate === undefined || rate < 0 || rate > 10000) {
      return void r.fail(
        [...path, i, 'rate'],
        `expected a rate between 0 and 1, got ${show(t.rate)}`,
      );
    }
    if (amount === undefined) return;
    const kind = str(t.title)?.toLowerCase().slice(0, 32);
    out.push({ amount: { amount, currency }, rateBasisPoints: rate, ...(kind ? { kind } : {}) });
  });
  return out;
}

const MOBILE_SOURCES = new Set(['iphone', 'android', 'mobile_app', 'shopify_mobile']);

function channelOf(sourceName: string | undefined): SalesChannel {
  return sourceName && MOBILE_SOURCES.has(sourceName) ? 'mobile' : 'web';
}

/** A Shopify order (`orders/create`, `orders/updated`) as a canonical order. */
export function mapShopifyOrder(body: unknown, ctx: ShopContext): Mapped<Order> {
  const r = new Reader();
  if (!isRec(body))
    return { ok: false, issues: [{ path: '', message: 'an order webhook body is a JSON object' }] };
  const o = body;
  const shopifyId = r.id(o, [], 'Order');
  const currency = r.currency(o.currency, ['currency']);
  const sourceName = str(o.source_name);
  if (sourceName === 'pos') {
    r.fail(
      ['source_name'],
      'point-of-sale orders are not taken from commerce webhooks: stores upload them through POST /v1/stores/{storeId}/batches',
    );
  }
  const placedAt = r.time(o.processed_at ?? o.created_at, [
    o.processed_at ? 'processed_at' : 'created_at',
  ]);

  // Customer: the shop's customer id when there is one, and the order's email.
  let customer: Order['customer'] | undefined;
  const email = str(o.email) ?? str(o.contact_email);
  if (isRec(o.customer)) {
    const customerId = r.id(o.customer, ['customer'], 'Customer');
    const customerEmail = str(o.customer.email) ?? email;
    if (customerId) {
      customer = {
        sourceRef: { system: ctx.systemId, id: customerId },
        ...(customerEmail ? { email: customerEmail } : {}),
      };
    }
  } else if (email) {
    customer = { email };
  } else {
    r.fail(['customer'], 'an order names a customer or an email; this one has neither');
  }

  const items = arr(o.line_items);
  if (items.length === 0) r.fail(['line_items'], 'an order has at least one line item');
  const lines: OrderLine[] = [];
  let requiresShipping = false;
  /** Some line's `current_quantity` is below its `quantity` (edited, or refunded with restock). */
  let reduced = false;
  if (currency) {
    items.forEach((raw, i) => {
      const path: Path = ['line_items', i];
      if (!isRec(raw)) return void r.fail(path, 'expected a line item object');
      const lineId = r.id(raw, path, 'LineItem');
      const sku = str(raw.sku);
      if (!sku) {
        r.fail(
          [...path, 'sku'],
          'the line item has no SKU: an item without a SKU cannot be reserved or booked',
        );
      } else if (/\s/.test(sku) || sku.length > 64) {
        r.fail([...path, 'sku'], `SKU ${show(sku)} has whitespace or is longer than 64 characters`);
      }
      const quantity = raw.quantity;
      if (typeof quantity !== 'number' || !Number.isSafeInteger(quantity) || quantity <= 0) {
        r.fail([...path, 'quantity'], `expected a whole quantity above 0, got ${show(quantity)}`);
      }
      const unitPrice = r.moneyOf(raw, 'price', currency, path);
      const allocations = arr(raw.discount_allocations);
      let discount: number | undefined = 0;
      if (allocations.length > 0) {
        for (const [j, a] of allocations.entries()) {
          const amount = isRec(a)
            ? r.money(a.amount, currency, [...path, 'discount_allocations', j, 'amount'])
            : undefined;
          discount = amount === undefined || discount === undefined ? undefined : discount + amount;
        }
      } else if (raw.total_discount !== undefined || raw.total_discount_set !== undefined) {
        discount = r.moneyOf(raw, 'total_discount', currency, path);
      }
      const taxes = mapTaxLines(r, raw.tax_lines, currency, [...path, 'tax_lines']);
      if (raw.requires_shipping !== false) requiresShipping = true;
      // What is left of the line after edits and restocking refunds: `current_quantity`.
      const current = raw.current_quantity;
      if (
        current !== undefined &&
        current !== null &&
        (typeof current !== 'number' ||
          !Number.isSafeInteger(current) ||
          current < 0 ||
          (typeof quantity === 'number' && current > quantity))
      ) {
        r.fail(
          [...path, 'current_quantity'],
          `expected a whole quantity from 0 to the line's quantity, got ${show(current)}`,
        );
      }
      if (
        !lineId ||
        !sku ||
        unitPrice === undefined ||
        discount === undefined ||
        typeof quantity !== 'number'
      )
        return;
      const kept = typeof current === 'number' && current < quantity ? current : quantity;
      if (kept < quantity) reduced = true;
      if (kept === 0) return; // removed from the order: no canonical line any more
      // Discounts and taxes of a reduced line, in proportion to what is left of it.
      const share = (amount: number) =>
        kept === quantity ? amount : Math.round((amount * kept) / quantity);
      const title = str(raw.title) ?? str(raw.name);
      lines.push({
        lineId,
        sku,
        ...(title ? { title: title.slice(0, 500) } : {}),
        quantity: kept,
        unitPrice: { amount: unitPrice, currency },
        discounts: discount > 0 ? [{ amount: { amount: share(discount), currency } }] : [],
        taxes:
          kept === quantity
            ? taxes
            : taxes.map((t) => ({ ...t, amount: { ...t.amount, amount: share(t.amount.amount) } })),
      });
    });
  }

  // Shipping: what the customer pays for delivery (after shipping discounts), before tax.
  let shippingAmount = 0;
  const shippingTaxes: TaxLine[] = [];
  let serviceLevel: string | undefined;
  if (currency) {
    arr(o.shipping_lines).forEach((raw, i) => {
      const path: Path = ['shipping_lines', i];
      if (!isRec(raw)) return void r.fail(path, 'expected a shipping line object');
      const field =
        raw.discounted_price !== undefined || raw.discounted_price_set !== undefined
          ? 'discounted_price'
          : 'price';
      const amount = r.moneyOf(raw, field, currency, path);
      if (amount !== undefined) shippingAmount += amount;
      shippingTaxes.push(...mapTaxLines(r, raw.tax_lines, currency, [...path, 'tax_lines']));
      serviceLevel ??= str(raw.code)?.toLowerCase().slice(0, 64);
    });
  }

  const shippingAddress = o.shipping_address
    ? mapAddress(r, o.shipping_address, ['shipping_address'])
    : undefined;
  if (!o.shipping_address && requiresShipping) {
    r.fail(
      ['shipping_address'],
      'line items require shipping but the order has no shipping address',
    );
  }
  const billingAddress = o.billing_address
    ? mapAddress(r, o.billing_address, ['billing_address'])
    : undefined;
  const note = str(o.note);
  if (note && note.length > 2000) r.fail(['note'], 'the note is longer than 2,000 characters');

  if (items.length > 0 && lines.length === 0 && reduced && r.issues.length === 0) {
    r.fail(
      ['line_items'],
      'every line item has current_quantity 0: nothing is left of the order (a whole cancellation carries cancelled_at)',
    );
  }
  if (r.issues.length > 0 || !shopifyId || !currency || !customer || !placedAt) {
    return { ok: false, issues: r.issues };
  }

  const m = (amount: number) => ({ amount, currency });
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const subtotal = sum(lines.map((l) => l.quantity * l.unitPrice.amount));
  const discountTotal = sum(lines.flatMap((l) => l.discounts.map((d) => d.amount.amount)));
  const taxTotal = sum([
    ...lines.flatMap((l) => l.taxes.map((t) => t.amount.amount)),
    ...shippingTaxes.map((t) => t.amount.amount),
  ]);
  const pricesIncludeTax = o.taxes_included === true;
  const grandTotal = subtotal - discountTotal + shippingAmount + (pricesIncludeTax ? 0 : taxTotal);

  // Shopify's own total must be what the lines add up to: an order-level discount, tax or charge
  // that is not allocated to lines cannot be booked line by line, so it is refused, not guessed.
  // After edits the order's total is `current_total_price` (`total_price` stays the original).
  const totalField = reduced ? 'current_total_price' : 'total_price';
  if (o[totalField] !== undefined || o[`${totalField}_set`] !== undefined) {
    const shopifyTotal = r.moneyOf(o, totalField, currency, []);
    if (shopifyTotal !== undefined && shopifyTotal !== grandTotal) {
      r.fail(
        [totalField],
        `${totalField} is ${fmt(shopifyTotal, currency)} but the line items, their discount allocations and tax lines and the shipping lines add up to ${fmt(grandTotal, currency)}: a discount, tax or charge not allocated to lines cannot be mapped to canonical order lines`,
      );
      return { ok: false, issues: r.issues };
    }
  }

  const order: Order = {
    id: orderIdOf(ctx.systemId, shopifyId),
    channel: channelOf(sourceName),
    externalIds: [{ system: ctx.systemId, id: shopifyId }],
    customer,
    currency,
    pricesIncludeTax,
    lines,
    fulfilment: { method: 'ship', ...(serviceLevel ? { serviceLevel } : {}) },
    shipping: { amount: m(shippingAmount), taxes: shippingTaxes },
    ...(billingAddress ? { billingAddress } : {}),
    ...(shippingAddress ? { shippingAddress } : {}),
    totals: {
      subtotal: m(subtotal),
      discountTotal: m(discountTotal),
      shippingTotal: m(shippingAmount),
      taxTotal: m(taxTotal),
      grandTotal: m(grandTotal),
    },
    placedAt,
    region: ctx.region,
    ...(note ? { notes: note } : {}),
  };
  const parsed = OrderV1.safeParse(order);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, issues: canonicalIssues(parsed.error) };
}

function fmt(minor: number, currency: string): string {
  const digits = minorUnitsOf(currency) ?? 2;
  return `${(minor / 10 ** digits).toFixed(digits)} ${currency}`;
}

const CANCEL_REASONS: Record<string, z.infer<typeof OrderCancelledV1>['reason']> = {
  customer: 'customer_request',
  fraud: 'fraud',
  inventory: 'out_of_stock',
  declined: 'payment_failed',
  staff: 'other',
  other: 'other',
};

/** A Shopify `orders/cancelled` body as a canonical cancellation of the whole order. */
export function mapShopifyCancellation(
  body: unknown,
  ctx: ShopContext,
): Mapped<z.infer<typeof OrderCancelledV1>> {
  const r = new Reader();
  if (!isRec(body))
    return { ok: false, issues: [{ path: '', message: 'an order webhook body is a JSON object' }] };
  const shopifyId = r.id(body, [], 'Order');
  const cancelledAt =
    body.cancelled_at === null || body.cancelled_at === undefined
      ? r.fail(
          ['cancelled_at'],
          'orders/cancelled without cancelled_at: the order is not cancelled',
        )
      : r.time(body.cancelled_at, ['cancelled_at']);
  const reason = CANCEL_REASONS[str(body.cancel_reason) ?? 'other'] ?? 'other';
  if (r.issues.length > 0 || !shopifyId || !cancelledAt) return { ok: false, issues: r.issues };
  const parsed = OrderCancelledV1.safeParse({
    orderId: orderIdOf(ctx.systemId, shopifyId),
    reason,
    cancelledAt,
  });
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, issues: canonicalIssues(parsed.error) };
}

/**
 * A Shopify refund (`refunds/create`) as a canonical return: the goods of its refund line items,
 * refunded already (status `completed`, `refundTotal` = the successful refund transactions).
 */
export function mapShopifyRefund(body: unknown, ctx: ShopContext): Mapped<Return> {
  const r = new Reader();
  if (!isRec(body))
    return { ok: false, issues: [{ path: '', message: 'a refund webhook body is a JSON object' }] };
  const refundId = r.id(body, [], 'Refund');
  const orderId = shopifyIdOf(body.order_id);
  if (!orderId) r.fail(['order_id'], 'expected the id of the refunded order (a positive integer)');
  const requestedAt = r.time(body.created_at, ['created_at']);
  const completedAt = body.processed_at ? r.time(body.processed_at, ['processed_at']) : requestedAt;
  const refundLines = arr(body.refund_line_items);
  const transactions = arr(body.transactions).filter(
    (t) => isRec(t) && t.kind === 'refund' && (t.status === undefined || t.status === 'success'),
  ) as Rec[];

  // The refund's currency: the shop money of its lines, else its transactions'.
  let currencyRaw: unknown;
  for (const l of refundLines) {
    if (isRec(l) && isRec(l.subtotal_set) && isRec(l.subtotal_set.shop_money)) {
      currencyRaw = l.subtotal_set.shop_money.currency_code;
      break;
    }
  }
  currencyRaw ??= transactions[0]?.currency;
  if (refundLines.length === 0) {
    r.fail(
      ['refund_line_items'],
      'the refund returns no goods (no refund line items): a refund of shipping or an order adjustment alone is not a return',
    );
  }
  const currency =
    refundLines.length > 0
      ? r.currency(currencyRaw, [
          'refund_line_items',
          0,
          'subtotal_set',
          'shop_money',
          'currency_code',
        ])
      : undefined;
  const lines: Return['lines'] = [];
  if (currency) {
    refundLines.forEach((raw, i) => {
      const path: Path = ['refund_line_items', i];
      if (!isRec(raw)) return void r.fail(path, 'expected a refund line item object');
      const item = isRec(raw.line_item) ? raw.line_item : undefined;
      const lineId = shopifyIdOf(raw.line_item_id) ?? (item ? shopifyIdOf(item.id) : undefined);
      if (!lineId) r.fail([...path, 'line_item_id'], 'expected the id of the refunded line item');
      const sku = str(item?.sku);
      if (!sku)
        r.fail(
          [...path, 'line_item', 'sku'],
          'the refunded line item has no SKU: goods without a SKU cannot be credited or restocked',
        );
      const quantity = raw.quantity;
      if (typeof quantity !== 'number' || !Number.isSafeInteger(quantity) || quantity <= 0) {
        r.fail([...path, 'quantity'], `expected a whole quantity above 0, got ${show(quantity)}`);
      }
      // Older refunds carry no per-line amounts: the line's refund is then left open (the
      // refund's transactions still give its total) rather than guessed from prices.
      const hasAmount = raw.subtotal !== undefined || raw.subtotal_set !== undefined;
      const subtotal = hasAmount ? r.moneyOf(raw, 'subtotal', currency, path) : 0;
      const tax =
        raw.total_tax === undefined && raw.total_tax_set === undefined
          ? 0
          : r.moneyOf(raw, 'total_tax', currency, path);
      if (
        !lineId ||
        !sku ||
        typeof quantity !== 'number' ||
        subtotal === undefined ||
        tax === undefined
      ) {
        return;
      }
      lines.push({
        orderLineId: lineId,
        sku,
        quantity,
        reason: 'other',
        ...(hasAmount ? { refundAmount: { amount: subtotal + tax, currency } } : {}),
      });
    });
  }
  let refundTotal = 0;
  if (currency) {
    transactions.forEach((t, i) => {
      const amount = r.money(t.amount, currency, ['transactions', i, 'amount']);
      if (amount !== undefined) refundTotal += amount;
    });
    if (transactions.length === 0)
      refundTotal = lines.reduce((s, l) => s + (l.refundAmount?.amount ?? 0), 0);
  }
  if (r.issues.length > 0 || !refundId || !orderId || !currency || !requestedAt || !completedAt) {
    return { ok: false, issues: r.issues };
  }
  const note = str(body.note);
  const ret: Return = {
    id: `${ctx.systemId}-refund-${refundId}`,
    orderId: orderIdOf(ctx.systemId, orderId),
    status: 'completed',
    lines,
    ...(note ? { reasonNote: note.slice(0, 2000) } : {}),
    refundMethod: 'original_payment',
    currency,
    refundTotal: { amount: refundTotal, currency },
    returnLocation: { kind: 'warehouse', location: ctx.returnLocation },
    requestedAt,
    completedAt,
  };
  const parsed = ReturnV1.safeParse(ret);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, issues: canonicalIssues(parsed.error) };
}

const CONSENT_STATUS: Record<string, Consent['status']> = {
  subscribed: 'granted',
  unsubscribed: 'withdrawn',
  not_subscribed: 'denied',
};

/** A Shopify customer (`customers/create`, `customers/update`) as a canonical customer. */
export function mapShopifyCustomer(body: unknown, ctx: ShopContext): Mapped<Customer> {
  const r = new Reader();
  if (!isRec(body))
    return {
      ok: false,
      issues: [{ path: '', message: 'a customer webhook body is a JSON object' }],
    };
  const c = body;
  const id = r.id(c, [], 'Customer');
  const createdAt = c.created_at ? r.time(c.created_at, ['created_at']) : undefined;
  const updatedAt = c.updated_at ? r.time(c.updated_at, ['updated_at']) : undefined;
  const email = str(c.email);
  const phone = str(c.phone)?.replace(/[\s().-]/g, '');

  const addresses: Customer['addresses'] = [];
  const rawAddresses =
    arr(c.addresses).length > 0 ? arr(c.addresses) : c.default_address ? [c.default_address] : [];
  const field = arr(c.addresses).length > 0 ? 'addresses' : 'default_address';
  rawAddresses.forEach((a, i) => {
    const address = mapAddress(r, a, field === 'addresses' ? [field, i] : [field]);
    if (address)
      addresses.push({ kind: 'shipping', address, default: isRec(a) && a.default === true });
  });

  const consents: Consent[] = [];
  for (const [key, channel] of [
    ['email_marketing_consent', 'email'],
    ['sms_marketing_consent', 'sms'],
  ] as const) {
    const consent = c[key];
    if (!isRec(consent)) continue;
    const status = CONSENT_STATUS[str(consent.state) ?? ''];
    if (!status) continue;
    const at = consent.consent_updated_at
      ? r.time(consent.consent_updated_at, [key, 'consent_updated_at'])
      : (updatedAt ?? createdAt);
    if (at) consents.push({ purpose: 'marketing', channel, status, at, source: ctx.systemId });
  }
  if (r.issues.length > 0 || !id) return { ok: false, issues: r.issues };

  const customer: Customer = {
    id: `${ctx.systemId}-${id}`,
    sourceIds: [{ system: ctx.systemId, id }],
    ...(str(c.first_name) ? { givenName: str(c.first_name) } : {}),
    ...(str(c.last_name) ? { familyName: str(c.last_name) } : {}),
    emails: email
      ? [
          {
            address: email,
            primary: true,
            ...(typeof c.verified_email === 'boolean' ? { verified: c.verified_email } : {}),
          },
        ]
      : [],
    phones: phone && E164_PATTERN.test(phone) ? [{ number: phone, primary: true }] : [],
    addresses,
    consents,
    region: ctx.region,
    ...(createdAt ? { createdAt } : {}),
    ...(updatedAt ? { updatedAt } : {}),
  };
  const parsed = CustomerV1.safeParse(customer);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, issues: canonicalIssues(parsed.error) };
}
