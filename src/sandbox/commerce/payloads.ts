// Shopify webhook and REST payloads built from the commerce simulator's records. The shapes
// follow Shopify's documented webhook examples (field names, order and JSON types): ids are
// 64-bit integers, every id has its `admin_graphql_api_id`, money is a decimal string with a
// `_set` twin in shop and presentment currency.
import { gid, money, moneySet, shopifyTime } from './wire.js';
import type { ShopifyId } from './wire.js';

export interface AddressRecord {
  firstName: string;
  lastName: string;
  company: string | null;
  address1: string;
  address2: string | null;
  city: string;
  province: string | null;
  provinceCode: string | null;
  country: string;
  countryCode: string;
  zip: string;
  phone: string | null;
}

export interface CustomerRecord {
  id: ShopifyId;
  addressId: ShopifyId;
  email: string;
  firstName: string;
  lastName: string;
  phone: string | null;
  state: 'disabled' | 'invited' | 'enabled' | 'declined';
  note: string | null;
  verifiedEmail: boolean;
  taxExempt: boolean;
  currency: string;
  createdAt: number;
  updatedAt: number;
  address: AddressRecord;
}

export interface VariantRecord {
  id: ShopifyId;
  productId: ShopifyId;
  inventoryItemId: ShopifyId;
  sku: string;
  title: string;
  priceMinor: number;
  compareAtPriceMinor: number | null;
  grams: number;
  position: number;
  createdAt: number;
  updatedAt: number;
}

export interface ProductRecord {
  id: ShopifyId;
  title: string;
  vendor: string;
  productType: string;
  handle: string;
  status: 'active' | 'draft' | 'archived';
  tags: string;
  createdAt: number;
  updatedAt: number;
  variants: VariantRecord[];
}

export interface LocationRecord {
  id: ShopifyId;
  name: string;
}

export interface InventoryLevelRecord {
  inventoryItemId: ShopifyId;
  locationId: ShopifyId;
  available: number;
  updatedAt: number;
}

export interface OrderLineRecord {
  id: ShopifyId;
  variant: VariantRecord;
  productTitle: string;
  vendor: string | null;
  quantity: number;
  priceMinor: number;
  discountMinor: number;
  taxMinor: number;
  fulfilledQuantity: number;
  refundedQuantity: number;
}

export interface FulfillmentRecord {
  id: ShopifyId;
  orderId: ShopifyId;
  locationId: ShopifyId;
  status: 'pending' | 'open' | 'success' | 'cancelled' | 'error' | 'failure';
  trackingCompany: string | null;
  trackingNumber: string | null;
  createdAt: number;
  lines: Array<{ line: OrderLineRecord; quantity: number }>;
}

export interface RefundRecord {
  id: ShopifyId;
  orderId: ShopifyId;
  note: string | null;
  restock: boolean;
  createdAt: number;
  lines: Array<{
    id: ShopifyId;
    line: OrderLineRecord;
    quantity: number;
    locationId: ShopifyId | null;
  }>;
  transactionId: ShopifyId;
  amountMinor: number;
}

export interface OrderRecord {
  id: ShopifyId;
  number: number;
  name: string;
  token: string;
  createdAt: number;
  updatedAt: number;
  processedAt: number;
  cancelledAt: number | null;
  cancelReason: string | null;
  closedAt: number | null;
  currency: string;
  email: string | null;
  phone: string | null;
  /** Shopify's channel: web, pos, iphone, android, shopify_draft_order … */
  sourceName: string;
  customer: CustomerRecord | null;
  lines: OrderLineRecord[];
  shippingLineId: ShopifyId;
  shippingMinor: number;
  taxRate: number;
  tags: string[];
  note: string | null;
  financialStatus: string;
  fulfillmentStatus: 'fulfilled' | 'partial' | 'restocked' | null;
  locationId: ShopifyId | null;
  shippingAddress: AddressRecord | null;
  billingAddress: AddressRecord | null;
  fulfillments: FulfillmentRecord[];
  refunds: RefundRecord[];
  test: boolean;
}

export interface PayloadContext {
  shopDomain: string;
  /** Minutes east of UTC in which timestamps are written. */
  utcOffsetMinutes?: number;
}

const t = (ctx: PayloadContext, ms: number): string => shopifyTime(ms, ctx.utcOffsetMinutes ?? 0);
const tn = (ctx: PayloadContext, ms: number | null): string | null =>
  ms === null ? null : t(ctx, ms);

export function addressPayload(a: AddressRecord) {
  return {
    first_name: a.firstName,
    address1: a.address1,
    phone: a.phone,
    city: a.city,
    zip: a.zip,
    province: a.province,
    country: a.country,
    last_name: a.lastName,
    address2: a.address2,
    company: a.company,
    latitude: null,
    longitude: null,
    name: `${a.firstName} ${a.lastName}`,
    country_code: a.countryCode,
    province_code: a.provinceCode,
  };
}

function customerDefaultAddress(c: CustomerRecord) {
  const a = c.address;
  return {
    id: c.addressId,
    customer_id: c.id,
    first_name: a.firstName,
    last_name: a.lastName,
    company: a.company,
    address1: a.address1,
    address2: a.address2,
    city: a.city,
    province: a.province,
    country: a.country,
    zip: a.zip,
    phone: a.phone,
    name: `${a.firstName} ${a.lastName}`,
    province_code: a.provinceCode,
    country_code: a.countryCode,
    country_name: a.country,
    default: true,
  };
}

/** The `customers/create` and `customers/update` webhook body (and REST `customer`). */
export function customerPayload(c: CustomerRecord, ctx: PayloadContext) {
  return {
    id: c.id,
    created_at: t(ctx, c.createdAt),
    updated_at: t(ctx, c.updatedAt),
    first_name: c.firstName,
    last_name: c.lastName,
    state: c.state,
    note: c.note,
    verified_email: c.verifiedEmail,
    multipass_identifier: null,
    tax_exempt: c.taxExempt,
    email: c.email,
    phone: c.phone,
    currency: c.currency,
    addresses: [customerDefaultAddress(c)],
    tax_exemptions: [],
    admin_graphql_api_id: gid('Customer', c.id),
    default_address: customerDefaultAddress(c),
  };
}

/** The customer as embedded in an order (Shopify leaves out `addresses` there). */
function orderCustomerPayload(c: CustomerRecord, ctx: PayloadContext) {
  const { addresses: _addresses, ...embedded } = customerPayload(c, ctx);
  return embedded;
}

function taxLines(taxMinor: number, rate: number, currency: string) {
  if (taxMinor === 0) return [];
  return [
    {
      channel_liable: false,
      price: money(taxMinor),
      price_set: moneySet(taxMinor, currency),
      rate,
      title: 'VAT',
    },
  ];
}

function fulfillmentStatusOfLine(l: OrderLineRecord): string | null {
  if (l.fulfilledQuantity >= l.quantity) return 'fulfilled';
  return l.fulfilledQuantity > 0 ? 'partial' : null;
}

function lineItemPayload(l: OrderLineRecord, order: OrderRecord) {
  const cur = order.currency;
  const current = l.quantity - l.refundedQuantity;
  return {
    id: l.id,
    admin_graphql_api_id: gid('LineItem', l.id),
    attributed_staffs: [],
    current_quantity: current,
    fulfillable_quantity: Math.max(0, current - l.fulfilledQuantity),
    fulfillment_service: 'manual',
    fulfillment_status: fulfillmentStatusOfLine(l),
    gift_card: false,
    grams: l.variant.grams,
    name: `${l.productTitle} - ${l.variant.title}`,
    price: money(l.priceMinor),
    price_set: moneySet(l.priceMinor, cur),
    product_exists: true,
    product_id: l.variant.productId,
    properties: [],
    quantity: l.quantity,
    requires_shipping: true,
    sales_line_item_group_id: null,
    sku: l.variant.sku,
    taxable: true,
    title: l.productTitle,
    total_discount: money(l.discountMinor),
    total_discount_set: moneySet(l.discountMinor, cur),
    variant_id: l.variant.id,
    variant_inventory_management: 'shopify',
    variant_title: l.variant.title,
    vendor: l.vendor,
    tax_lines: taxLines(l.taxMinor, order.taxRate, cur),
    duties: [],
    discount_allocations: [],
  };
}

/** Money totals of an order in minor units. */
export function orderTotals(o: OrderRecord) {
  const lineItems = o.lines.reduce((s, l) => s + l.priceMinor * l.quantity, 0);
  const discounts = o.lines.reduce((s, l) => s + l.discountMinor, 0);
  const tax = o.lines.reduce((s, l) => s + l.taxMinor, 0);
  const subtotal = lineItems - discounts;
  const total = subtotal + o.shippingMinor + tax;
  const refunded = o.refunds.reduce((s, r) => s + r.amountMinor, 0);
  const refundedLines = o.lines.reduce(
    (s, l) => s + (l.priceMinor - Math.round(l.discountMinor / l.quantity)) * l.refundedQuantity,
    0,
  );
  return { lineItems, discounts, tax, subtotal, total, refunded, refundedLines };
}

/** The `orders/create` / `orders/updated` webhook body (and REST `order`). */
export function orderPayload(o: OrderRecord, ctx: PayloadContext) {
  const cur = o.currency;
  const tot = orderTotals(o);
  const currentSubtotal = tot.subtotal - tot.refundedLines;
  const currentTotal = tot.total - tot.refunded;
  const zero = moneySet(0, cur);
  return {
    id: o.id,
    admin_graphql_api_id: gid('Order', o.id),
    app_id: null,
    browser_ip: null,
    buyer_accepts_marketing: false,
    cancel_reason: o.cancelReason,
    cancelled_at: tn(ctx, o.cancelledAt),
    cart_token: null,
    checkout_token: null,
    client_details: null,
    closed_at: tn(ctx, o.closedAt),
    confirmation_number: o.token.slice(0, 9).toUpperCase(),
    confirmed: true,
    contact_email: o.email,
    created_at: t(ctx, o.createdAt),
    currency: cur,
    current_shipping_price_set: moneySet(o.shippingMinor, cur),
    current_subtotal_price: money(currentSubtotal),
    current_subtotal_price_set: moneySet(currentSubtotal, cur),
    current_total_additional_fees_set: null,
    current_total_discounts: money(tot.discounts),
    current_total_discounts_set: moneySet(tot.discounts, cur),
    current_total_duties_set: null,
    current_total_price: money(currentTotal),
    current_total_price_set: moneySet(currentTotal, cur),
    current_total_tax: money(tot.tax),
    current_total_tax_set: moneySet(tot.tax, cur),
    customer_locale: 'en',
    device_id: null,
    discount_codes: [],
    duties_included: false,
    email: o.email,
    estimated_taxes: false,
    financial_status: o.financialStatus,
    fulfillment_status: o.fulfillmentStatus,
    landing_site: null,
    landing_site_ref: null,
    location_id: o.locationId,
    merchant_business_entity_id: 'MTAwMDAwMDAwMQ',
    merchant_of_record_app_id: null,
    name: o.name,
    note: o.note,
    note_attributes: [],
    number: o.number,
    order_number: o.number + 1000,
    order_status_url: `https://${ctx.shopDomain}/orders/${o.token}/authenticate?key=${o.token.slice(0, 16)}`,
    original_total_additional_fees_set: null,
    original_total_duties_set: null,
    payment_gateway_names: ['bogus'],
    phone: o.phone,
    po_number: null,
    presentment_currency: cur,
    processed_at: t(ctx, o.processedAt),
    reference: null,
    referring_site: null,
    source_identifier: null,
    source_name: o.sourceName,
    source_url: null,
    subtotal_price: money(tot.subtotal),
    subtotal_price_set: moneySet(tot.subtotal, cur),
    tags: o.tags.join(', '),
    tax_exempt: false,
    tax_lines: taxLines(tot.tax, o.taxRate, cur),
    taxes_included: false,
    test: o.test,
    token: o.token,
    total_cash_rounding_payment_adjustment_set: zero,
    total_cash_rounding_refund_adjustment_set: zero,
    total_discounts: money(tot.discounts),
    total_discounts_set: moneySet(tot.discounts, cur),
    total_line_items_price: money(tot.lineItems),
    total_line_items_price_set: moneySet(tot.lineItems, cur),
    total_outstanding: money(o.financialStatus === 'paid' ? 0 : currentTotal),
    total_price: money(tot.total),
    total_price_set: moneySet(tot.total, cur),
    total_shipping_price_set: moneySet(o.shippingMinor, cur),
    total_tax: money(tot.tax),
    total_tax_set: moneySet(tot.tax, cur),
    total_tip_received: '0.00',
    total_weight: o.lines.reduce((s, l) => s + l.variant.grams * l.quantity, 0),
    updated_at: t(ctx, o.updatedAt),
    user_id: null,
    billing_address: o.billingAddress ? addressPayload(o.billingAddress) : null,
    customer: o.customer ? orderCustomerPayload(o.customer, ctx) : null,
    discount_applications: [],
    fulfillments: o.fulfillments.map((f) => fulfillmentPayload(f, o, ctx)),
    line_items: o.lines.map((l) => lineItemPayload(l, o)),
    payment_terms: null,
    refunds: o.refunds.map((r) => refundPayload(r, o, ctx)),
    shipping_address: o.shippingAddress ? addressPayload(o.shippingAddress) : null,
    shipping_lines:
      o.shippingMinor > 0 || o.sourceName !== 'pos'
        ? [
            {
              id: o.shippingLineId,
              carrier_identifier: null,
              code: 'Standard',
              current_discounted_price_set: moneySet(o.shippingMinor, cur),
              discounted_price: money(o.shippingMinor),
              discounted_price_set: moneySet(o.shippingMinor, cur),
              is_removed: false,
              phone: null,
              price: money(o.shippingMinor),
              price_set: moneySet(o.shippingMinor, cur),
              requested_fulfillment_service_id: null,
              source: 'shopify',
              title: 'Standard Shipping',
              tax_lines: [],
              discount_allocations: [],
            },
          ]
        : [],
    returns: [],
    line_item_groups: [],
  };
}

function refundLineItemPayload(l: OrderLineRecord, order: OrderRecord) {
  const cur = order.currency;
  return {
    id: l.id,
    variant_id: l.variant.id,
    title: l.productTitle,
    quantity: l.quantity,
    sku: l.variant.sku,
    variant_title: l.variant.title,
    vendor: l.vendor,
    fulfillment_service: 'manual',
    product_id: l.variant.productId,
    requires_shipping: true,
    taxable: true,
    gift_card: false,
    name: `${l.productTitle} - ${l.variant.title}`,
    variant_inventory_management: 'shopify',
    properties: [],
    product_exists: true,
    fulfillable_quantity: Math.max(0, l.quantity - l.refundedQuantity - l.fulfilledQuantity),
    grams: l.variant.grams,
    price: money(l.priceMinor),
    total_discount: money(l.discountMinor),
    fulfillment_status: fulfillmentStatusOfLine(l),
    price_set: moneySet(l.priceMinor, cur),
    total_discount_set: moneySet(l.discountMinor, cur),
    discount_allocations: [],
    duties: [],
    admin_graphql_api_id: gid('LineItem', l.id),
    tax_lines: taxLines(l.taxMinor, order.taxRate, cur),
  };
}

/** The `refunds/create` webhook body (and REST `refund`). */
export function refundPayload(r: RefundRecord, o: OrderRecord, ctx: PayloadContext) {
  const cur = o.currency;
  return {
    id: r.id,
    order_id: r.orderId,
    created_at: t(ctx, r.createdAt),
    note: r.note,
    user_id: null,
    processed_at: t(ctx, r.createdAt),
    duties: [],
    total_duties_set: moneySet(0, cur),
    return: null,
    restock: r.restock,
    refund_shipping_lines: [],
    admin_graphql_api_id: gid('Refund', r.id),
    order_adjustments: [],
    refund_line_items: r.lines.map((rl) => {
      const unit = rl.line.priceMinor - Math.round(rl.line.discountMinor / rl.line.quantity);
      const subtotal = unit * rl.quantity;
      const tax = Math.round((rl.line.taxMinor * rl.quantity) / rl.line.quantity);
      return {
        id: rl.id,
        quantity: rl.quantity,
        line_item_id: rl.line.id,
        location_id: rl.locationId,
        restock_type: r.restock ? 'return' : 'no_restock',
        subtotal: subtotal / 100,
        total_tax: tax / 100,
        subtotal_set: moneySet(subtotal, cur),
        total_tax_set: moneySet(tax, cur),
        line_item: refundLineItemPayload(rl.line, o),
      };
    }),
    transactions: [
      {
        id: r.transactionId,
        order_id: r.orderId,
        kind: 'refund',
        gateway: 'bogus',
        status: 'success',
        message: 'Refund processed',
        created_at: t(ctx, r.createdAt),
        test: o.test,
        authorization: null,
        location_id: null,
        user_id: null,
        parent_id: null,
        processed_at: t(ctx, r.createdAt),
        device_id: null,
        error_code: null,
        source_name: o.sourceName,
        receipt: {},
        amount: money(r.amountMinor),
        currency: cur,
        payment_id: `${o.name}.${r.id.toString().slice(-4)}`,
        total_unsettled_set: {
          presentment_money: { amount: '0.0', currency: cur },
          shop_money: { amount: '0.0', currency: cur },
        },
        manual_payment_gateway: false,
        amount_rounding: null,
        admin_graphql_api_id: gid('OrderTransaction', r.transactionId),
      },
    ],
  };
}

/** The `inventory_levels/update` webhook body (REST `inventory_level` lacks the gid). */
export function inventoryLevelPayload(level: InventoryLevelRecord, ctx: PayloadContext) {
  return {
    inventory_item_id: level.inventoryItemId,
    location_id: level.locationId,
    available: level.available,
    updated_at: t(ctx, level.updatedAt),
    admin_graphql_api_id: `gid://shopify/InventoryLevel/${level.locationId.toString()}?inventory_item_id=${level.inventoryItemId.toString()}`,
  };
}

export function fulfillmentPayload(f: FulfillmentRecord, o: OrderRecord, ctx: PayloadContext) {
  return {
    id: f.id,
    admin_graphql_api_id: gid('Fulfillment', f.id),
    created_at: t(ctx, f.createdAt),
    location_id: f.locationId,
    name: `${o.name}.${o.fulfillments.indexOf(f) + 1}`,
    order_id: f.orderId,
    origin_address: {},
    receipt: {},
    service: 'manual',
    shipment_status: null,
    status: f.status,
    tracking_company: f.trackingCompany,
    tracking_number: f.trackingNumber,
    tracking_numbers: f.trackingNumber ? [f.trackingNumber] : [],
    tracking_url: null,
    tracking_urls: [],
    updated_at: t(ctx, f.createdAt),
    line_items: f.lines.map(({ line, quantity }) => ({
      ...lineItemPayload(line, o),
      quantity,
    })),
  };
}

export function variantPayload(v: VariantRecord, available: number, ctx: PayloadContext) {
  return {
    id: v.id,
    product_id: v.productId,
    title: v.title,
    price: money(v.priceMinor),
    position: v.position,
    inventory_policy: 'deny',
    compare_at_price: v.compareAtPriceMinor === null ? null : money(v.compareAtPriceMinor),
    option1: v.title,
    option2: null,
    option3: null,
    created_at: t(ctx, v.createdAt),
    updated_at: t(ctx, v.updatedAt),
    taxable: true,
    barcode: null,
    fulfillment_service: 'manual',
    grams: v.grams,
    inventory_management: 'shopify',
    requires_shipping: true,
    sku: v.sku,
    weight: v.grams / 1000,
    weight_unit: 'kg',
    inventory_item_id: v.inventoryItemId,
    inventory_quantity: available,
    old_inventory_quantity: available,
    admin_graphql_api_id: gid('ProductVariant', v.id),
    image_id: null,
  };
}

export function productPayload(
  p: ProductRecord,
  availableOf: (v: VariantRecord) => number,
  ctx: PayloadContext,
) {
  return {
    id: p.id,
    title: p.title,
    body_html: null,
    vendor: p.vendor,
    product_type: p.productType,
    created_at: t(ctx, p.createdAt),
    handle: p.handle,
    updated_at: t(ctx, p.updatedAt),
    published_at: t(ctx, p.createdAt),
    template_suffix: null,
    published_scope: 'global',
    tags: p.tags,
    status: p.status,
    admin_graphql_api_id: gid('Product', p.id),
    variants: p.variants.map((v) => variantPayload(v, availableOf(v), ctx)),
    options: [
      {
        id: p.id + 1n,
        product_id: p.id,
        name: 'Size',
        position: 1,
        values: p.variants.map((v) => v.title),
      },
    ],
    images: [],
    image: null,
  };
}
