// The traffic scenarios: deterministic generators of traffic items from a seed. The same options
// always produce byte-identical traffic (ids, trace ids and times all come from the seed and a
// fixed virtual clock), so runs can be compared and failures replayed.
import { ESTATE_LOCATIONS, skuOf } from '../cloud-erp/catalogue.js';
import { mulberry32 } from '../kit.js';
import { customerPayload, orderPayload, refundPayload } from '../commerce/payloads.js';
import type { OrderRecord, PayloadContext } from '../commerce/payloads.js';
import { SANDBOX_EPOCH, Shop } from '../commerce/shop.js';
import { seededUuid } from '../commerce/wire.js';
import type { OrderV1, PriceV1 } from '../../canonical/index.js';
import { batchOf, ringUpReturn, ringUpSale, sessionOf, storeIdOf } from '../pos/transactions.js';
import type { PosCatalogueEntry, PosTransaction } from '../pos/transactions.js';
import { CanonicalEvents } from './canonical.js';
import type { TrafficItem } from './traffic.js';

export interface ScenarioOptions {
  seed?: number;
  /** Occurrences (or, for bulk-price-update, requests) per second of scenario time. */
  rate?: number;
  /** Seconds of scenario time. */
  duration?: number;
  /** Number of occurrences; overrides rate × duration. */
  size?: number;
  /** Epoch ms the scenario's virtual clock starts at (default 2026-01-05T09:00:00Z). */
  start?: number;
  /** Estate id of the commerce platform (default 'commerce'). */
  commerceSystem?: string;
  /** Stores of the POS estate (steady, return-surge: 10; store-reconnect: 20). */
  stores?: number;
  /** store-reconnect: seconds the stores stay offline (default 60). */
  offlineSeconds?: number;
  /** store-reconnect: most transactions per uploaded batch (default 500). */
  maxBatchSize?: number;
  /** flash-sale: how many SKUs are on sale (default 3). */
  hotSkus?: number;
  /** bulk-price-update: price changes per native price-feed request (default 500). */
  batchSize?: number;
}

export interface ResolvedScenarioOptions {
  seed: number;
  rate: number;
  duration: number;
  size: number;
  start: number;
  commerceSystem: string;
  stores: number;
  offlineSeconds: number;
  maxBatchSize: number;
  hotSkus: number;
  batchSize: number;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** What `size` counts. */
  readonly unit: string;
  readonly defaults: { rate: number; duration: number };
  /** Resolves options (defaults, size from rate × duration) and validates them. */
  resolve(opts?: ScenarioOptions): ResolvedScenarioOptions;
  /** The scenario's traffic, in sending order. */
  generate(opts?: ScenarioOptions): TrafficItem[];
}

export class ScenarioOptionError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(`--${option}: ${message}`);
    this.name = 'ScenarioOptionError';
  }
}

/** Everything a generator draws on: seeded sources, the shop, the stores, a virtual clock. */
class World {
  readonly random: () => number;
  readonly shop: Shop;
  readonly events: CanonicalEvents;
  readonly ctx: PayloadContext = { shopDomain: 'middlemart-sandbox.myshopify.com' };
  readonly posCatalogue: PosCatalogueEntry[];
  readonly storeIds: string[];
  readonly storeSequence = new Map<string, number>();
  readonly storeSales = new Map<string, PosTransaction[]>();
  readonly webOrders: OrderRecord[] = [];
  readonly stockSequence = new Map<string, number>();
  private readonly idRandom: () => number;
  /** Names this run's keys (price calendar, stock feed, till session) apart from other runs'. */
  readonly runId: string;
  readonly session: string;
  seq = 0;

  constructor(
    readonly opts: ResolvedScenarioOptions,
    scenario: string,
  ) {
    // Each scenario and seed draws its own ids, so different runs never reuse a key.
    const base = (opts.seed ^ fnv1a(scenario)) >>> 0;
    this.random = mulberry32(base);
    this.idRandom = mulberry32(base ^ 0x9e3779b9);
    this.runId = sessionOf(this.idRandom) + sessionOf(this.idRandom).slice(0, 2);
    this.session = this.runId.slice(0, 6);
    this.shop = new Shop({ random: mulberry32(base + 0x51ed), createdAt: opts.start });
    this.events = new CanonicalEvents(this.idRandom, { commerceSystem: opts.commerceSystem });
    this.posCatalogue = this.shop.products.flatMap((p) =>
      p.variants.map((v) => ({ sku: v.sku, price: v.priceMinor })),
    );
    this.storeIds = Array.from({ length: opts.stores }, (_, i) => storeIdOf(i + 1));
  }

  at(atMs: number): number {
    return this.opts.start + Math.round(atMs);
  }

  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)] as T;
  }

  item(fields: Omit<TrafficItem, 'seq'>): TrafficItem {
    return { seq: this.seq++, ...fields };
  }

  webhook(topic: string, payload: unknown, atMs: number): TrafficItem['native'] {
    return {
      kind: 'shopify-webhook',
      systemId: this.opts.commerceSystem,
      topic,
      payload,
      webhookId: seededUuid(this.idRandom),
      triggeredAt: new Date(this.at(atMs)).toISOString(),
    };
  }

  onlineOrder(
    atMs: number,
    channel: 'web' | 'mobile',
    lines?: ReadonlyArray<{ sku: string; quantity: number }>,
  ): TrafficItem {
    const known = [...this.shop.customers.values()];
    const returning = known.length > 0 && this.random() < 0.5;
    const o = this.shop.newOrder({
      at: this.at(atMs),
      sourceName: channel === 'web' ? 'web' : 'iphone',
      ...(returning ? { customer: this.pick(known) } : {}),
      ...(lines ? { lines } : {}),
    });
    this.webOrders.push(o);
    const event = this.events.orderCreated(o, channel);
    const native: TrafficItem['native'] =
      channel === 'web'
        ? this.webhook('orders/create', orderPayload(o, this.ctx), atMs)
        : { kind: 'order', order: event.data as OrderV1 };
    return this.item({ kind: 'order', origin: channel, atMs, events: [event], native });
  }

  webReturn(atMs: number): TrafficItem | undefined {
    const candidates = this.webOrders.filter((o) =>
      o.lines.some((l) => l.refundedQuantity < l.quantity),
    );
    if (candidates.length === 0) return undefined;
    const o = this.pick(candidates);
    const r = this.shop.refund(o, { at: this.at(atMs), restock: true });
    return this.item({
      kind: 'return',
      origin: 'web',
      atMs,
      events: [this.events.returnCompleted(r, o)],
      native: this.webhook('refunds/create', refundPayload(r, o, this.ctx), atMs),
    });
  }

  signUp(atMs: number): TrafficItem {
    const c = this.shop.newCustomer(this.at(atMs));
    return this.item({
      kind: 'customer',
      origin: 'web',
      atMs,
      events: [this.events.customerCreated(c)],
      native: this.webhook('customers/create', customerPayload(c, this.ctx), atMs),
    });
  }

  nextSequence(storeId: string): number {
    const next = (this.storeSequence.get(storeId) ?? 0) + 1;
    this.storeSequence.set(storeId, next);
    return next;
  }

  /** A store transaction (sale, or a return of an earlier sale of that store). */
  storeTransaction(storeId: string, atMs: number, kind: 'sale' | 'return'): PosTransaction {
    const sales = this.storeSales.get(storeId) ?? [];
    if (kind === 'return' && sales.length > 0) {
      const sale = this.pick(sales);
      return ringUpReturn(this.random, this.nextSequence(storeId), this.at(atMs), sale);
    }
    const tx = ringUpSale(
      this.random,
      storeId,
      this.session,
      this.nextSequence(storeId),
      this.at(atMs),
      this.posCatalogue,
    );
    sales.push(tx);
    this.storeSales.set(storeId, sales);
    return tx;
  }

  /** An online store uploads each transaction as it happens: a batch of one. */
  storeItem(atMs: number, kind: 'sale' | 'return'): TrafficItem {
    const storeId = this.pick(this.storeIds);
    const tx = this.storeTransaction(storeId, atMs, kind);
    return this.item({
      kind: tx.kind === 'sale' ? 'order' : 'return',
      origin: storeId,
      atMs,
      events: [this.events.posTransaction(tx)],
      native: { kind: 'pos-upload', batches: [batchOf(storeId, [tx], this.at(atMs), false)] },
    });
  }

  stockMovement(atMs: number): TrafficItem {
    const sku = this.pick(this.shop.skus);
    const location = this.pick(ESTATE_LOCATIONS.filter((l) => l.startsWith('DC-')));
    const key = `${sku}@${location}`;
    const sequence = (this.stockSequence.get(key) ?? 0) + 1;
    this.stockSequence.set(key, sequence);
    const roll = this.random();
    const [reason, delta] =
      roll < 0.6
        ? (['receipt', 10 + Math.floor(this.random() * 90)] as const)
        : roll < 0.8
          ? (['transfer_out', -(1 + Math.floor(this.random() * 20))] as const)
          : (['damage', -(1 + Math.floor(this.random() * 3))] as const);
    return this.item({
      kind: 'stock',
      origin: 'wms',
      atMs,
      events: [
        this.events.stockAdjusted({
          sku,
          location,
          delta,
          reason,
          sourceSystem: 'wms',
          feed: this.runId,
          sourceSequence: sequence,
          at: new Date(this.at(atMs)).toISOString(),
        }),
      ],
    });
  }
}

function positive(
  option: string,
  value: number | undefined,
  fallback: number,
  integer = false,
): number {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
    throw new ScenarioOptionError(
      option,
      `expected a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`,
    );
  }
  return v;
}

function resolver(defaults: {
  rate: number;
  duration: number;
  size?: (o: Omit<ResolvedScenarioOptions, 'size'>) => number;
  stores?: number;
}) {
  return (opts: ScenarioOptions = {}): ResolvedScenarioOptions => {
    const seed = opts.seed ?? 1;
    if (!Number.isInteger(seed))
      throw new ScenarioOptionError('seed', `expected an integer, got ${seed}`);
    const base = {
      seed,
      rate: positive('rate', opts.rate, defaults.rate),
      duration: positive('duration', opts.duration, defaults.duration),
      start: opts.start ?? SANDBOX_EPOCH,
      commerceSystem: opts.commerceSystem ?? 'commerce',
      stores: positive('stores', opts.stores, defaults.stores ?? 10, true),
      offlineSeconds: positive('offline-seconds', opts.offlineSeconds, 60),
      maxBatchSize: positive('max-batch-size', opts.maxBatchSize, 500, true),
      hotSkus: positive('hot-skus', opts.hotSkus, 3, true),
      batchSize: positive('batch-size', opts.batchSize, 500, true),
    };
    const size =
      opts.size !== undefined
        ? positive('size', opts.size, 1, true)
        : defaults.size
          ? defaults.size(base)
          : Math.max(1, Math.round(base.rate * base.duration));
    if (size > 1_000_000) throw new ScenarioOptionError('size', `at most 1000000, got ${size}`);
    return { ...base, size };
  };
}

const gap = (o: ResolvedScenarioOptions) => 1000 / o.rate;

/** FNV-1a hash of a string (32 bit). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const steady: Scenario = {
  name: 'steady',
  description:
    'Everyday trading: web, mobile and store orders, returns, customer sign-ups and warehouse stock movements.',
  unit: 'occurrences',
  defaults: { rate: 20, duration: 60 },
  resolve: resolver({ rate: 20, duration: 60 }),
  generate(opts) {
    const o = this.resolve(opts);
    const w = new World(o, this.name);
    const items: TrafficItem[] = [];
    for (let i = 0; i < o.size; i++) {
      const atMs = i * gap(o);
      const roll = w.random();
      let item: TrafficItem | undefined;
      if (roll < 0.35) item = w.onlineOrder(atMs, 'web');
      else if (roll < 0.5) item = w.onlineOrder(atMs, 'mobile');
      else if (roll < 0.7) item = w.storeItem(atMs, 'sale');
      else if (roll < 0.74) item = w.webReturn(atMs);
      else if (roll < 0.78) item = w.storeItem(atMs, 'return');
      else if (roll < 0.88) item = w.signUp(atMs);
      else item = w.stockMovement(atMs);
      items.push(item ?? w.onlineOrder(atMs, 'web'));
    }
    return items;
  },
};

const flashSale: Scenario = {
  name: 'flash-sale',
  description:
    'A burst of web and mobile orders for a few discounted SKUs, opened by their sale prices.',
  unit: 'orders',
  defaults: { rate: 100, duration: 30 },
  resolve: resolver({ rate: 100, duration: 30 }),
  generate(opts) {
    const o = this.resolve(opts);
    const w = new World(o, this.name);
    const hot = w.shop.products
      .flatMap((p) => p.variants)
      .slice(0, Math.min(o.hotSkus, w.shop.skus.length));
    const startIso = new Date(w.at(0)).toISOString();
    const prices: PriceV1[] = hot.map((v) => ({
      sku: v.sku,
      channel: 'web',
      currency: w.shop.currency,
      listPrice: { amount: v.priceMinor, currency: w.shop.currency },
      salePrice: { amount: Math.round(v.priceMinor * 0.6), currency: w.shop.currency },
      pricesIncludeTax: true,
      effectiveFrom: startIso,
      effectiveUntil: new Date(w.at(o.duration * 1000 + 3_600_000)).toISOString(),
    }));
    const items: TrafficItem[] = [
      w.item({
        kind: 'price',
        origin: 'erp',
        atMs: 0,
        events: prices.map((p) =>
          w.events.priceChanged(p, `erp:${w.runId}:flash-sale:${p.sku}`, '/sandbox/cloud-erp'),
        ),
        native: { kind: 'price-changes', changes: prices },
      }),
    ];
    for (let i = 0; i < o.size; i++) {
      const atMs = i * gap(o);
      const v = w.pick(hot);
      const sale = Math.round(v.priceMinor * 0.6);
      const lines = [{ sku: v.sku, quantity: w.random() < 0.85 ? 1 : 2, priceMinor: sale }];
      items.push(w.onlineOrder(atMs, w.random() < 0.7 ? 'web' : 'mobile', lines));
    }
    return items;
  },
};

const STORE_GROUPS = ['eu-stores', 'us-stores', 'outlets', 'airports', 'franchise'];

const bulkPriceUpdate: Scenario = {
  name: 'bulk-price-update',
  description:
    'The ERP publishes a price calendar: tens of thousands of price changes across SKUs and store groups.',
  unit: 'price changes',
  defaults: { rate: 500, duration: 40 },
  resolve: resolver({ rate: 500, duration: 40, size: () => 20_000 }),
  generate(opts) {
    const o = this.resolve(opts);
    const w = new World(o, this.name);
    const skuCount = 200;
    const items: TrafficItem[] = [];
    for (let from = 0; from < o.size; from += o.batchSize) {
      const changes: PriceV1[] = [];
      for (let i = from; i < Math.min(o.size, from + o.batchSize); i++) {
        const sku = skuOf(1 + (i % skuCount));
        const group = STORE_GROUPS[Math.floor(i / skuCount) % STORE_GROUPS.length] as string;
        const round = Math.floor(i / (skuCount * STORE_GROUPS.length));
        const list = (10 + Math.floor(w.random() * 140)) * 100 - 1;
        const onSale = w.random() < 0.2;
        const currency = group === 'us-stores' ? 'USD' : 'EUR';
        changes.push({
          sku,
          storeGroup: group,
          currency,
          listPrice: { amount: list, currency },
          ...(onSale ? { salePrice: { amount: Math.round(list * 0.8), currency } } : {}),
          pricesIncludeTax: currency !== 'USD',
          effectiveFrom: new Date(w.at(round * 86_400_000)).toISOString(),
        });
      }
      const atMs = from * gap(o);
      items.push(
        w.item({
          kind: 'price',
          origin: 'erp',
          atMs,
          events: changes.map((p) =>
            w.events.priceChanged(
              p,
              `erp:${w.runId}:price:${p.sku}:${p.storeGroup ?? ''}:${p.effectiveFrom}`,
              '/sandbox/cloud-erp',
            ),
          ),
          native: { kind: 'price-changes', changes },
        }),
      );
    }
    return items;
  },
};

const returnSurge: Scenario = {
  name: 'return-surge',
  description:
    'After-holiday returns: orders (web and store) followed by a wave of returns of them.',
  unit: 'returns',
  defaults: { rate: 50, duration: 30 },
  resolve: resolver({ rate: 50, duration: 30 }),
  generate(opts) {
    const o = this.resolve(opts);
    const w = new World(o, this.name);
    const items: TrafficItem[] = [];
    const originals: Array<{ web: OrderRecord } | { storeId: string; sale: PosTransaction }> = [];
    for (let i = 0; i < o.size; i++) {
      const atMs = i * gap(o);
      if (w.random() < 0.6) {
        const item = w.onlineOrder(atMs, 'web');
        items.push(item);
        originals.push({ web: w.webOrders[w.webOrders.length - 1] as OrderRecord });
      } else {
        const item = w.storeItem(atMs, 'sale');
        items.push(item);
        const storeId = item.origin;
        const sales = w.storeSales.get(storeId) ?? [];
        originals.push({ storeId, sale: sales[sales.length - 1] as PosTransaction });
      }
    }
    // Returns come back in a different order than the sales went out.
    for (let i = originals.length - 1; i > 0; i--) {
      const j = Math.floor(w.random() * (i + 1));
      [originals[i], originals[j]] = [
        originals[j] as (typeof originals)[number],
        originals[i] as (typeof originals)[number],
      ];
    }
    originals.forEach((orig, i) => {
      const atMs = (o.size + i) * gap(o);
      if ('web' in orig) {
        const r = w.shop.refund(orig.web, { at: w.at(atMs), restock: true });
        items.push(
          w.item({
            kind: 'return',
            origin: 'web',
            atMs,
            events: [w.events.returnCompleted(r, orig.web)],
            native: w.webhook('refunds/create', refundPayload(r, orig.web, w.ctx), atMs),
          }),
        );
      } else {
        const tx = ringUpReturn(w.random, w.nextSequence(orig.storeId), w.at(atMs), orig.sale);
        items.push(
          w.item({
            kind: 'return',
            origin: orig.storeId,
            atMs,
            events: [w.events.posTransaction(tx)],
            native: {
              kind: 'pos-upload',
              batches: [batchOf(orig.storeId, [tx], w.at(atMs), false)],
            },
          }),
        );
      }
    });
    return items;
  },
};

const storeReconnect: Scenario = {
  name: 'store-reconnect',
  description:
    'M stores lose their connection for T seconds, keep selling into local buffers, then all reconnect at once and upload.',
  unit: 'buffered store transactions',
  defaults: { rate: 200, duration: 60 },
  resolve: resolver({
    rate: 200,
    duration: 60,
    stores: 20,
    size: (b) => Math.max(b.stores, Math.round(b.stores * b.offlineSeconds * 0.5)),
  }),
  generate(opts) {
    const o = this.resolve(opts);
    const w = new World(o, this.name);
    const offlineMs = o.offlineSeconds * 1000;
    const buffers = new Map<string, PosTransaction[]>(w.storeIds.map((s) => [s, []]));
    for (let i = 0; i < o.size; i++) {
      const atMs = Math.floor((i * offlineMs) / o.size);
      const storeId = i < w.storeIds.length ? (w.storeIds[i] as string) : w.pick(w.storeIds);
      const tx = w.storeTransaction(storeId, atMs, w.random() < 0.1 ? 'return' : 'sale');
      buffers.get(storeId)?.push(tx);
    }
    const items: TrafficItem[] = [];
    for (const storeId of w.storeIds) {
      const buffered = buffers.get(storeId) ?? [];
      if (buffered.length === 0) continue;
      const batches = [];
      for (let from = 0; from < buffered.length; from += o.maxBatchSize) {
        batches.push(
          batchOf(storeId, buffered.slice(from, from + o.maxBatchSize), w.at(offlineMs), true),
        );
      }
      // A store with several batches uploads them one after another, in sequence order.
      items.push(
        w.item({
          kind: 'store-batch',
          origin: storeId,
          atMs: offlineMs,
          events: buffered.map((tx) => w.events.posTransaction(tx)),
          native: { kind: 'pos-upload', batches },
        }),
      );
    }
    return items;
  },
};

export const SCENARIOS: Readonly<Record<string, Scenario>> = Object.freeze({
  steady,
  'flash-sale': flashSale,
  'bulk-price-update': bulkPriceUpdate,
  'return-surge': returnSurge,
  'store-reconnect': storeReconnect,
});

export const SCENARIO_NAMES = Object.keys(SCENARIOS);

export function scenarioByName(name: string): Scenario | undefined {
  return Object.hasOwn(SCENARIOS, name) ? SCENARIOS[name] : undefined;
}
