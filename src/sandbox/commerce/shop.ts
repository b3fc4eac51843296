// The commerce simulator's shop: catalogue, locations, inventory levels, customers, orders and
// refunds, all generated from an injected random source so a seed reproduces the same shop.
import { skuOf } from '../cloud-erp/catalogue.js';
import { makeIdSource } from './wire.js';
import type { ShopifyId } from './wire.js';
import type {
  AddressRecord,
  CustomerRecord,
  FulfillmentRecord,
  InventoryLevelRecord,
  LocationRecord,
  OrderLineRecord,
  OrderRecord,
  ProductRecord,
  RefundRecord,
  VariantRecord,
} from './payloads.js';

export interface ShopOptions {
  random: () => number;
  /** Epoch ms of the catalogue's creation (fixed by default, so a seed gives identical records). */
  createdAt?: number;
  currency?: string;
  /** SKUs of the catalogue; default the estate's first 60 (MM-00001 … MM-00060). */
  skus?: readonly string[];
  /** Variants per product (sizes); default 3. */
  variantsPerProduct?: number;
  /** Location names; the first is the online warehouse. */
  locations?: readonly string[];
  /** Starting `available` of every inventory level. */
  initialStock?: number;
  /** Issue 18–19 digit ids (above 2^53, as in Shopify's own examples) instead of 13-digit ids. */
  largeIds?: boolean;
  /** VAT rate applied to order lines, e.g. 0.2; default 0. */
  taxRate?: number;
}

/**
 * The shop's default catalogue: the first 60 SKUs of the estate's numbered range (the ERP
 * simulators' item master uses the same range, and leaves a few of it out on purpose).
 */
export const SANDBOX_SKUS: readonly string[] = Array.from({ length: 60 }, (_, i) => skuOf(i + 1));

/** Fixed instant the sandbox's generated history starts from: 2026-01-05T09:00:00Z. */
export const SANDBOX_EPOCH = Date.UTC(2026, 0, 5, 9, 0, 0);

const FIRST = [
  'Ada',
  'Ben',
  'Chloé',
  'Dmitri',
  'Elif',
  'Femi',
  'Greta',
  'Hugo',
  'Ines',
  'Jonas',
  'Kaito',
  'Lena',
  'Mateo',
  'Nora',
  'Oskar',
  'Priya',
];
const LAST = [
  'Adler',
  'Bauer',
  'Costa',
  'Dubois',
  'Eriksen',
  'Fischer',
  'García',
  'Hansen',
  'Ivanova',
  'Jensen',
  'Kowalski',
  'Larsen',
  'Moreau',
  'Novak',
  'Okafor',
  'Peters',
];
const CITIES: ReadonlyArray<[string, string, string, string]> = [
  ['Berlin', 'DE', 'Germany', '10115'],
  ['Paris', 'FR', 'France', '75002'],
  ['Amsterdam', 'NL', 'Netherlands', '1012 AB'],
  ['Madrid', 'ES', 'Spain', '28013'],
  ['Milan', 'IT', 'Italy', '20121'],
  ['Vienna', 'AT', 'Austria', '1010'],
  ['Copenhagen', 'DK', 'Denmark', '1050'],
];
const PRODUCTS = [
  'Trail runner',
  'Linen shirt',
  'Wool beanie',
  'Rain jacket',
  'Canvas tote',
  'Merino socks',
  'Denim jeans',
  'Leather belt',
  'Hoodie',
  'Chino shorts',
];
const SIZES = ['S', 'M', 'L', 'XL', 'XXL'];

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)] as T;
}

export function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

function token(random: () => number): string {
  return Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('');
}

export interface OrderLineInput {
  sku: string;
  quantity: number;
  /** Unit price in minor units; default the variant's price. */
  priceMinor?: number;
}

export interface NewOrderInput {
  at: number;
  sourceName?: string;
  customer?: CustomerRecord | null;
  lines?: readonly OrderLineInput[];
  tags?: readonly string[];
  /** POS orders carry the selling location. */
  locationId?: ShopifyId | null;
}

export class Shop {
  readonly currency: string;
  readonly products: ProductRecord[] = [];
  readonly locations: LocationRecord[] = [];
  readonly customers = new Map<bigint, CustomerRecord>();
  readonly orders = new Map<bigint, OrderRecord>();
  readonly refunds = new Map<bigint, RefundRecord>();
  private readonly variantsById = new Map<bigint, VariantRecord>();
  private readonly variantsBySku = new Map<string, VariantRecord>();
  private readonly variantsByItem = new Map<bigint, VariantRecord>();
  private readonly productsById = new Map<bigint, ProductRecord>();
  private readonly levels = new Map<string, InventoryLevelRecord>();
  readonly nextId: () => ShopifyId;
  private orderNumber = 1000;
  private readonly random: () => number;
  private readonly taxRate: number;

  constructor(opts: ShopOptions) {
    this.random = opts.random;
    this.currency = opts.currency ?? 'EUR';
    this.taxRate = opts.taxRate ?? 0;
    this.nextId = makeIdSource(opts.random, opts.largeIds ?? false);
    const createdAt = opts.createdAt ?? SANDBOX_EPOCH;
    const skus = opts.skus ?? SANDBOX_SKUS;
    const perProduct = Math.max(1, Math.min(SIZES.length, opts.variantsPerProduct ?? 3));
    for (const name of opts.locations ?? ['Online warehouse', 'Store 001']) {
      this.locations.push({ id: this.nextId(), name });
    }
    for (let i = 0; i < skus.length; i += perProduct) {
      const title = `${pick(this.random, PRODUCTS)} ${Math.floor(i / perProduct) + 1}`;
      const product: ProductRecord = {
        id: this.nextId(),
        title,
        vendor: 'Middlemart Sandbox',
        productType: 'Apparel',
        handle: title.toLowerCase().replace(/[^a-z0-9]+/g, '-'),
        status: 'active',
        tags: '',
        createdAt,
        updatedAt: createdAt,
        variants: [],
      };
      const priceMinor = randomInt(this.random, 10, 150) * 100 - 1;
      skus.slice(i, i + perProduct).forEach((sku, j) => {
        const v: VariantRecord = {
          id: this.nextId(),
          productId: product.id,
          inventoryItemId: this.nextId(),
          sku,
          title: SIZES[j] ?? `V${j + 1}`,
          priceMinor,
          compareAtPriceMinor: null,
          grams: randomInt(this.random, 1, 20) * 50,
          position: j + 1,
          createdAt,
          updatedAt: createdAt,
        };
        product.variants.push(v);
        this.variantsById.set(v.id, v);
        this.variantsBySku.set(sku, v);
        this.variantsByItem.set(v.inventoryItemId, v);
        for (const loc of this.locations) {
          this.levels.set(levelKey(v.inventoryItemId, loc.id), {
            inventoryItemId: v.inventoryItemId,
            locationId: loc.id,
            available: opts.initialStock ?? 100,
            updatedAt: createdAt,
          });
        }
      });
      this.products.push(product);
      this.productsById.set(product.id, product);
    }
  }

  get skus(): string[] {
    return [...this.variantsBySku.keys()];
  }

  product(id: bigint): ProductRecord | undefined {
    return this.productsById.get(id);
  }

  variant(id: bigint): VariantRecord | undefined {
    return this.variantsById.get(id);
  }

  variantBySku(sku: string): VariantRecord | undefined {
    return this.variantsBySku.get(sku);
  }

  variantByInventoryItem(id: bigint): VariantRecord | undefined {
    return this.variantsByItem.get(id);
  }

  location(id: bigint): LocationRecord | undefined {
    return this.locations.find((l) => l.id === id);
  }

  level(inventoryItemId: bigint, locationId: bigint): InventoryLevelRecord | undefined {
    return this.levels.get(levelKey(inventoryItemId, locationId));
  }

  allLevels(): InventoryLevelRecord[] {
    return [...this.levels.values()];
  }

  /** Total available of a variant over every location. */
  available(v: VariantRecord): number {
    let sum = 0;
    for (const loc of this.locations) sum += this.level(v.inventoryItemId, loc.id)?.available ?? 0;
    return sum;
  }

  setLevel(
    inventoryItemId: bigint,
    locationId: bigint,
    available: number,
    at: number,
  ): InventoryLevelRecord {
    const level: InventoryLevelRecord = { inventoryItemId, locationId, available, updatedAt: at };
    this.levels.set(levelKey(inventoryItemId, locationId), level);
    return level;
  }

  randomAddress(firstName: string, lastName: string): AddressRecord {
    const [city, countryCode, country, zip] = pick(this.random, CITIES);
    return {
      firstName,
      lastName,
      company: null,
      address1: `${randomInt(this.random, 1, 199)} ${pick(this.random, ['Market', 'High', 'Station', 'Park'])} Street`,
      address2: null,
      city,
      province: null,
      provinceCode: null,
      country,
      countryCode,
      zip,
      phone: `+49${randomInt(this.random, 100_000_000, 999_999_999)}`,
    };
  }

  newCustomer(at: number): CustomerRecord {
    const firstName = pick(this.random, FIRST);
    const lastName = pick(this.random, LAST);
    const id = this.nextId();
    const c: CustomerRecord = {
      id,
      addressId: this.nextId(),
      email: `${firstName}.${lastName}.${id.toString().slice(-6)}@example.com`
        .normalize('NFD')
        .replace(/[\u0300-\u036f]/g, '')
        .toLowerCase(),
      firstName,
      lastName,
      phone: null,
      state: 'enabled',
      note: null,
      verifiedEmail: true,
      taxExempt: false,
      currency: this.currency,
      createdAt: at,
      updatedAt: at,
      address: this.randomAddress(firstName, lastName),
    };
    this.customers.set(id, c);
    return c;
  }

  newOrder(input: NewOrderInput): OrderRecord {
    const lineInputs: OrderLineInput[] = input.lines
      ? [...input.lines]
      : Array.from({ length: randomInt(this.random, 1, 3) }, () => ({
          sku: pick(this.random, this.skus),
          quantity: randomInt(this.random, 1, 3),
        }));
    const lines: OrderLineRecord[] = lineInputs.map((li) => {
      const variant = this.variantsBySku.get(li.sku);
      if (variant === undefined) throw new Error(`unknown sku '${li.sku}'`);
      const product = this.productsById.get(variant.productId) as ProductRecord;
      const priceMinor = li.priceMinor ?? variant.priceMinor;
      return {
        id: this.nextId(),
        variant,
        productTitle: product.title,
        vendor: product.vendor,
        quantity: li.quantity,
        priceMinor,
        discountMinor: 0,
        taxMinor: Math.round(priceMinor * li.quantity * this.taxRate),
        fulfilledQuantity: 0,
        refundedQuantity: 0,
      };
    });
    const customer = input.customer === undefined ? this.newCustomer(input.at) : input.customer;
    const pos = input.sourceName === 'pos';
    this.orderNumber += 1;
    const o: OrderRecord = {
      id: this.nextId(),
      number: this.orderNumber - 1000,
      name: `#${this.orderNumber}`,
      token: token(this.random),
      createdAt: input.at,
      updatedAt: input.at,
      processedAt: input.at,
      cancelledAt: null,
      cancelReason: null,
      closedAt: null,
      currency: this.currency,
      email: customer?.email ?? null,
      phone: null,
      sourceName: input.sourceName ?? 'web',
      customer,
      lines,
      shippingLineId: this.nextId(),
      shippingMinor: pos ? 0 : 495,
      taxRate: this.taxRate,
      tags: [...(input.tags ?? [])],
      note: null,
      financialStatus: 'paid',
      fulfillmentStatus: pos ? 'fulfilled' : null,
      locationId: input.locationId ?? null,
      shippingAddress: pos || customer === null ? null : customer.address,
      billingAddress: customer === null ? null : customer.address,
      fulfillments: [],
      refunds: [],
      test: true,
    };
    if (pos) for (const l of lines) l.fulfilledQuantity = l.quantity;
    this.orders.set(o.id, o);
    return o;
  }

  /** Refunds lines of an order (default: one unit of its first refundable line). */
  refund(
    order: OrderRecord,
    opts: {
      at: number;
      lines?: Array<{ lineId: bigint; quantity: number }>;
      restock?: boolean;
      note?: string;
    },
  ): RefundRecord {
    const wanted =
      opts.lines ??
      order.lines
        .filter((l) => l.quantity - l.refundedQuantity > 0)
        .slice(0, 1)
        .map((l) => ({ lineId: l.id, quantity: 1 }));
    const lines = wanted.map((w) => {
      const line = order.lines.find((l) => l.id === w.lineId);
      if (line === undefined) throw new Error(`order ${order.id} has no line ${w.lineId}`);
      if (w.quantity > line.quantity - line.refundedQuantity) {
        throw new Error(
          `line ${w.lineId} has only ${line.quantity - line.refundedQuantity} refundable`,
        );
      }
      return {
        id: this.nextId(),
        line,
        quantity: w.quantity,
        locationId: opts.restock ? (this.locations[0]?.id ?? null) : null,
      };
    });
    let amount = 0;
    for (const rl of lines) {
      rl.line.refundedQuantity += rl.quantity;
      const unit = rl.line.priceMinor - Math.round(rl.line.discountMinor / rl.line.quantity);
      amount +=
        unit * rl.quantity + Math.round((rl.line.taxMinor * rl.quantity) / rl.line.quantity);
    }
    const refund: RefundRecord = {
      id: this.nextId(),
      orderId: order.id,
      note: opts.note ?? null,
      restock: opts.restock ?? false,
      createdAt: opts.at,
      lines,
      transactionId: this.nextId(),
      amountMinor: amount,
    };
    order.refunds.push(refund);
    order.updatedAt = opts.at;
    const refundedAll = order.lines.every((l) => l.refundedQuantity >= l.quantity);
    order.financialStatus = refundedAll ? 'refunded' : 'partially_refunded';
    this.refunds.set(refund.id, refund);
    return refund;
  }

  fulfil(
    order: OrderRecord,
    opts: {
      at: number;
      locationId: bigint;
      trackingCompany?: string | null;
      trackingNumber?: string | null;
      lines?: Array<{ lineId: bigint; quantity: number }>;
    },
  ): FulfillmentRecord {
    const wanted =
      opts.lines ??
      order.lines
        .filter((l) => l.quantity - l.refundedQuantity - l.fulfilledQuantity > 0)
        .map((l) => ({
          lineId: l.id,
          quantity: l.quantity - l.refundedQuantity - l.fulfilledQuantity,
        }));
    const lines = wanted.map((w) => {
      const line = order.lines.find((l) => l.id === w.lineId);
      if (line === undefined) throw new Error(`order has no line ${w.lineId}`);
      return { line, quantity: w.quantity };
    });
    for (const { line, quantity } of lines) line.fulfilledQuantity += quantity;
    const f: FulfillmentRecord = {
      id: this.nextId(),
      orderId: order.id,
      locationId: opts.locationId,
      status: 'success',
      trackingCompany: opts.trackingCompany ?? null,
      trackingNumber: opts.trackingNumber ?? null,
      createdAt: opts.at,
      lines,
    };
    order.fulfillments.push(f);
    order.updatedAt = opts.at;
    const all = order.lines.every((l) => l.fulfilledQuantity >= l.quantity - l.refundedQuantity);
    order.fulfillmentStatus = all ? 'fulfilled' : 'partial';
    return f;
  }
}

function levelKey(item: bigint, location: bigint): string {
  return `${item.toString()}@${location.toString()}`;
}
