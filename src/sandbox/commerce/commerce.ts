// The commerce simulator: a Shopify-compatible shop. It sends signed webhooks (orders/create,
// orders/updated, refunds/create, customers/create, customers/update, inventory_levels/update …)
// with Shopify's headers and payload shapes, and serves a slice of the REST Admin API
// (`/admin/api/{version}/…`, `X-Shopify-Access-Token`) behind Shopify's leaky-bucket limit.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createSimulator, mulberry32 } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';
import { LeakyBucket } from './leaky-bucket.js';
import {
  customerPayload,
  fulfillmentPayload,
  inventoryLevelPayload,
  orderPayload,
  productPayload,
  refundPayload,
  variantPayload,
} from './payloads.js';
import type { CustomerRecord, OrderRecord, PayloadContext, RefundRecord } from './payloads.js';
import { Shop } from './shop.js';
import type { NewOrderInput, ShopOptions } from './shop.js';
import {
  buildShopifyWebhook,
  parseMoney,
  parseShopifyJson,
  seededUuid,
  toShopifyId,
  toShopifyJson,
} from './wire.js';

export const SHOPIFY_WEBHOOK_TOPICS = [
  'orders/create',
  'orders/updated',
  'orders/cancelled',
  'refunds/create',
  'customers/create',
  'customers/update',
  'inventory_levels/update',
  'fulfillments/create',
  'products/update',
] as const;
export type ShopifyWebhookTopic = (typeof SHOPIFY_WEBHOOK_TOPICS)[number];

export interface WebhookDeliveryOptions {
  /** Attempts per webhook, the first included (default 3). */
  attempts?: number;
  /** Delay before the first retry; doubles each retry (default 200 ms). */
  baseDelayMs?: number;
  /** Per-attempt timeout (default 5000 ms). */
  timeoutMs?: number;
}

export interface CommerceOptions extends SimulatorOptions {
  /** Seeds the catalogue, ids and customers (default 1). */
  seed?: number;
  /** Expected `X-Shopify-Access-Token` of Admin API calls. */
  accessToken?: string;
  /** Secret webhooks are signed with. */
  webhookSecret?: string;
  shopDomain?: string;
  /** API version written in `X-Shopify-API-Version` (the Admin API answers any YYYY-MM). */
  apiVersion?: string;
  /** Leaky bucket of the Admin API (default Shopify standard: 40, 2/s). */
  bucket?: { capacity?: number; leakPerSecond?: number };
  /** Subscribes this address to every topic (like a shop with an app installed). */
  webhookUrl?: string;
  delivery?: WebhookDeliveryOptions;
  shop?: Partial<Omit<ShopOptions, 'random'>>;
}

export interface WebhookAttempt {
  status?: number;
  error?: string;
  ms: number;
}

export interface WebhookDelivery {
  webhookId: string;
  topic: string;
  target: string;
  delivered: boolean;
  attempts: WebhookAttempt[];
}

export interface CommerceControls {
  readonly shop: Shop;
  readonly shopDomain: string;
  readonly apiVersion: string;
  /** Signs and POSTs a webhook to `targetUrl`, retrying failures; resolves the delivery record. */
  emit(topic: string, payload: unknown, targetUrl: string): Promise<WebhookDelivery>;
  /** Subscribes an address to a topic ('*' for every topic). */
  subscribe(topic: string, address: string): void;
  /** Every delivery so far (retained, newest last). */
  deliveries(): WebhookDelivery[];
  /** Creates an order (and sends orders/create to subscribers). */
  createOrder(input?: Partial<NewOrderInput>): Promise<OrderRecord>;
  /** Creates a customer (and sends customers/create to subscribers). */
  createCustomer(): Promise<CustomerRecord>;
  /** Changes a customer's profile (and sends customers/update to subscribers). */
  updateCustomer(
    id: bigint,
    changes: { firstName?: string; lastName?: string; phone?: string | null; note?: string | null },
  ): Promise<CustomerRecord>;
  /** Refunds lines of an order (and sends refunds/create + orders/updated to subscribers). */
  refundOrder(orderId: bigint, opts?: { restock?: boolean }): Promise<RefundRecord>;
  /** Waits for every webhook delivery in flight. */
  idle(): Promise<void>;
  /** Payload context (shop domain, time offset) the payload builders use. */
  readonly payloadContext: PayloadContext;
}

export type Commerce = Simulator & CommerceControls;

const DELIVERY_RETENTION = 1000;

export function createCommerce(opts: CommerceOptions = {}): Commerce {
  const random = opts.random ?? mulberry32(opts.seed ?? 1);
  const now = opts.now ?? Date.now;
  const sim = createSimulator('commerce', { ...opts, random, now });
  const app = sim.app;
  const shop = new Shop({ random: mulberry32((opts.seed ?? 1) + 7), ...opts.shop });
  const accessToken = opts.accessToken ?? 'shpat_sandbox_token';
  const webhookSecret = opts.webhookSecret ?? 'sandbox_webhook_secret';
  const shopDomain = opts.shopDomain ?? 'middlemart-sandbox.myshopify.com';
  const apiVersion = opts.apiVersion ?? '2024-04';
  const bucket = new LeakyBucket({ ...opts.bucket, now });
  const ctx: PayloadContext = { shopDomain };
  const deliveryOpts = {
    attempts: opts.delivery?.attempts ?? 3,
    baseDelayMs: opts.delivery?.baseDelayMs ?? 200,
    timeoutMs: opts.delivery?.timeoutMs ?? 5000,
  };
  const subscriptions: Array<{ topic: string; address: string }> = [];
  if (opts.webhookUrl) subscriptions.push({ topic: '*', address: opts.webhookUrl });
  const deliveries: WebhookDelivery[] = [];
  const inFlight = new Set<Promise<unknown>>();
  const webhookRandom = mulberry32((opts.seed ?? 1) + 13);

  async function emit(
    topic: string,
    payload: unknown,
    targetUrl: string,
  ): Promise<WebhookDelivery> {
    const webhookId = seededUuid(webhookRandom);
    const request = buildShopifyWebhook({
      topic,
      payload,
      secret: webhookSecret,
      shopDomain,
      apiVersion,
      webhookId,
      triggeredAt: new Date(now()).toISOString(),
    });
    const delivery: WebhookDelivery = {
      webhookId,
      topic,
      target: targetUrl,
      delivered: false,
      attempts: [],
    };
    deliveries.push(delivery);
    if (deliveries.length > DELIVERY_RETENTION)
      deliveries.splice(0, deliveries.length - DELIVERY_RETENTION);
    for (let attempt = 0; attempt < deliveryOpts.attempts; attempt++) {
      if (attempt > 0) await sleep(deliveryOpts.baseDelayMs * 2 ** (attempt - 1));
      const started = performance.now();
      try {
        const res = await fetch(targetUrl, {
          method: 'POST',
          headers: { ...request.headers },
          body: request.body,
          signal: AbortSignal.timeout(deliveryOpts.timeoutMs),
        });
        await res.arrayBuffer();
        delivery.attempts.push({ status: res.status, ms: Math.round(performance.now() - started) });
        if (res.ok) {
          delivery.delivered = true;
          break;
        }
      } catch (err) {
        delivery.attempts.push({
          error: errorText(err),
          ms: Math.round(performance.now() - started),
        });
      }
    }
    sim.count(delivery.delivered ? 'webhooks.delivered' : 'webhooks.failed');
    sim.record('webhooks', { ...delivery, attempts: delivery.attempts.length });
    return delivery;
  }

  /** Sends a topic to its subscribers in the background (as Shopify does after a change). */
  function notify(topic: string, payload: unknown): void {
    for (const s of subscriptions) {
      if (s.topic !== '*' && s.topic !== topic) continue;
      const p = emit(topic, payload, s.address).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
  }

  // Shopify ids exceed 2^53: parse JSON bodies keeping large integers exact.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, parseShopifyJson(text));
    } catch {
      const err = new Error('body is not valid JSON') as Error & { statusCode: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });
  // Replies may carry bigint ids.
  app.setReplySerializer((payload) => toShopifyJson(payload));

  // Admin API: authentication, then the leaky bucket.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.url.startsWith('/admin/')) return;
    if (request.headers['x-shopify-access-token'] !== accessToken) {
      sim.count('admin.unauthorized');
      return reply.code(401).send({
        errors: '[API] Invalid API key or access token (unrecognized login or wrong password)',
      });
    }
    const decision = bucket.take();
    reply.header('x-shopify-shop-api-call-limit', `${decision.used}/${decision.capacity}`);
    if (!decision.allowed) {
      sim.count('admin.throttled');
      return reply.code(429).header('retry-after', decision.retryAfterSeconds.toFixed(1)).send({
        errors:
          'Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.',
      });
    }
    sim.count('admin.calls');
  });

  const base = '/admin/api/:version';
  type VersionParams = { version: string };
  type IdParams = VersionParams & { id: string };

  const notFound = (reply: FastifyReply) => reply.code(404).send({ errors: 'Not Found' });
  const unprocessable = (reply: FastifyReply, errors: Record<string, string[]>) => {
    sim.count('admin.unprocessable');
    return reply.code(422).send({ errors });
  };
  const missingRoot = (reply: FastifyReply, root: string) =>
    reply.code(400).send({ errors: { [root]: 'Required parameter missing or invalid' } });
  /** `123.json` → 123n. */
  const idOf = (segment: string): bigint | undefined => {
    const m = /^(\d+)\.json$/.exec(segment);
    return m ? toShopifyId(m[1]) : undefined;
  };
  const versionOk = (v: string) => /^\d{4}-\d{2}$/.test(v) || v === 'unstable';

  app.get<{
    Params: VersionParams;
    Querystring: { limit?: string; ids?: string; since_id?: string };
  }>(`${base}/products.json`, async (request, reply) => {
    if (!versionOk(request.params.version)) return notFound(reply);
    const limit = Math.min(250, Math.max(1, Number(request.query.limit ?? 50) || 50));
    const ids = request.query.ids?.split(',').map((s) => toShopifyId(s.trim()));
    // `since_id`: products with a greater id, in id order (how a client pages past 250).
    const since = request.query.since_id ? toShopifyId(request.query.since_id) : undefined;
    const list = shop.products
      .filter((p) => ids === undefined || ids.includes(p.id))
      .filter((p) => since === undefined || p.id > since)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, limit);
    return { products: list.map((p) => productPayload(p, (v) => shop.available(v), ctx)) };
  });

  app.get<{ Params: IdParams }>(`${base}/products/:id`, async (request, reply) => {
    const id = idOf(request.params.id);
    const p = id === undefined ? undefined : shop.product(id);
    if (!p) return notFound(reply);
    return { product: productPayload(p, (v) => shop.available(v), ctx) };
  });

  app.get<{ Params: IdParams }>(`${base}/variants/:id`, async (request, reply) => {
    const id = idOf(request.params.id);
    const v = id === undefined ? undefined : shop.variant(id);
    if (!v) return notFound(reply);
    return { variant: variantPayload(v, shop.available(v), ctx) };
  });

  app.put<{ Params: IdParams; Body: unknown }>(`${base}/variants/:id`, async (request, reply) => {
    const id = idOf(request.params.id);
    const v = id === undefined ? undefined : shop.variant(id);
    if (!v) return notFound(reply);
    const body = asRecord(asRecord(request.body)?.variant);
    if (!body) return missingRoot(reply, 'variant');
    const errors: Record<string, string[]> = {};
    let price: number | undefined;
    let compareAt: number | null | undefined;
    if (body.price !== undefined) {
      price = parseMoney(body.price);
      if (price === undefined) errors.price = ['is not a number'];
      else if (price < 0) errors.price = ['must be greater than or equal to 0'];
    }
    if (body.compare_at_price !== undefined) {
      if (body.compare_at_price === null || body.compare_at_price === '') compareAt = null;
      else {
        compareAt = parseMoney(body.compare_at_price);
        if (compareAt === undefined) errors.compare_at_price = ['is not a number'];
      }
    }
    if (body.sku !== undefined && (typeof body.sku !== 'string' || body.sku.length > 255)) {
      errors.sku = ['is invalid'];
    }
    if (Object.keys(errors).length > 0) return unprocessable(reply, errors);
    if (price !== undefined) v.priceMinor = price;
    if (compareAt !== undefined) v.compareAtPriceMinor = compareAt;
    v.updatedAt = now();
    sim.record('priceUpdates', { variantId: v.id.toString(), sku: v.sku, price: v.priceMinor });
    const product = shop.product(v.productId);
    if (product) {
      product.updatedAt = v.updatedAt;
      notify(
        'products/update',
        productPayload(product, (x) => shop.available(x), ctx),
      );
    }
    return { variant: variantPayload(v, shop.available(v), ctx) };
  });

  app.get<{
    Params: VersionParams;
    Querystring: { inventory_item_ids?: string; location_ids?: string };
  }>(`${base}/inventory_levels.json`, async (request, reply) => {
    const items = parseIdList(request.query.inventory_item_ids);
    const locations = parseIdList(request.query.location_ids);
    if (items === undefined && locations === undefined) {
      return unprocessable(reply, {
        base: ['Must specify at least one of inventory_item_ids or location_ids'],
      });
    }
    const levels = shop
      .allLevels()
      .filter(
        (l) =>
          (items === undefined || items.includes(l.inventoryItemId)) &&
          (locations === undefined || locations.includes(l.locationId)),
      );
    return { inventory_levels: levels.map((l) => inventoryLevelPayload(l, ctx)) };
  });

  app.post<{ Params: VersionParams; Body: unknown }>(
    `${base}/inventory_levels/set.json`,
    async (request, reply) => {
      const body = asRecord(request.body);
      if (!body) return missingRoot(reply, 'inventory_item_id');
      const errors: Record<string, string[]> = {};
      const item = toShopifyId(body.inventory_item_id);
      const location = toShopifyId(body.location_id);
      if (item === undefined) errors.inventory_item_id = ['expected Integer to be a id'];
      else if (!shop.variantByInventoryItem(item))
        errors.inventory_item_id = ['Inventory item does not exist'];
      if (location === undefined) errors.location_id = ['expected Integer to be a id'];
      else if (!shop.location(location)) errors.location_id = ['Location does not exist'];
      const available = body.available;
      if (typeof available !== 'number' || !Number.isInteger(available)) {
        errors.available = ['must be an integer'];
      } else if (Math.abs(available) > 1_000_000_000) {
        errors.available = ['must be less than or equal to 1000000000'];
      }
      if (Object.keys(errors).length > 0) return unprocessable(reply, errors);
      const level = shop.setLevel(item as bigint, location as bigint, available as number, now());
      sim.record('inventorySets', {
        inventoryItemId: level.inventoryItemId.toString(),
        locationId: level.locationId.toString(),
        available: level.available,
      });
      notify('inventory_levels/update', inventoryLevelPayload(level, ctx));
      const { admin_graphql_api_id: _gid, ...rest } = inventoryLevelPayload(level, ctx);
      return { inventory_level: rest };
    },
  );

  app.get<{ Params: VersionParams }>(`${base}/locations.json`, async () => ({
    locations: shop.locations.map((l) => ({
      id: l.id,
      name: l.name,
      active: true,
      admin_graphql_api_id: `gid://shopify/Location/${l.id.toString()}`,
    })),
  }));

  app.get<{ Params: VersionParams; Querystring: { limit?: string } }>(
    `${base}/orders.json`,
    async (request) => {
      const limit = Math.min(250, Math.max(1, Number(request.query.limit ?? 50) || 50));
      return { orders: [...shop.orders.values()].slice(-limit).map((o) => orderPayload(o, ctx)) };
    },
  );

  app.get<{ Params: IdParams }>(`${base}/orders/:id`, async (request, reply) => {
    const id = idOf(request.params.id);
    const o = id === undefined ? undefined : shop.orders.get(id);
    if (!o) return notFound(reply);
    return { order: orderPayload(o, ctx) };
  });

  app.put<{ Params: IdParams; Body: unknown }>(`${base}/orders/:id`, async (request, reply) => {
    const id = idOf(request.params.id);
    const o = id === undefined ? undefined : shop.orders.get(id);
    if (!o) return notFound(reply);
    const body = asRecord(asRecord(request.body)?.order);
    if (!body) return missingRoot(reply, 'order');
    const errors: Record<string, string[]> = {};
    if (body.tags !== undefined && typeof body.tags !== 'string' && !isStringArray(body.tags)) {
      errors.tags = ['is invalid'];
    }
    if (body.note !== undefined && body.note !== null && typeof body.note !== 'string') {
      errors.note = ['is invalid'];
    }
    if (
      body.email !== undefined &&
      (typeof body.email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(body.email))
    ) {
      errors.email = ['is invalid'];
    }
    if (Object.keys(errors).length > 0) return unprocessable(reply, errors);
    if (body.tags !== undefined) {
      const tags = typeof body.tags === 'string' ? body.tags.split(',') : (body.tags as string[]);
      o.tags = tags.map((s) => s.trim()).filter((s) => s !== '');
    }
    if (body.note !== undefined) o.note = body.note as string | null;
    if (body.email !== undefined) o.email = body.email as string;
    o.updatedAt = now();
    sim.record('orderUpdates', { orderId: o.id.toString(), tags: o.tags, note: o.note });
    notify('orders/updated', orderPayload(o, ctx));
    return { order: orderPayload(o, ctx) };
  });

  app.post<{ Params: IdParams & { action: string } }>(
    `${base}/orders/:id/:action`,
    async (request, reply) => {
      const id = toShopifyId(request.params.id);
      const o = id === undefined ? undefined : shop.orders.get(id);
      if (!o) return notFound(reply);
      const action = request.params.action;
      if (action === 'close.json') {
        o.closedAt = now();
      } else if (action === 'open.json') {
        o.closedAt = null;
      } else if (action === 'cancel.json') {
        if (o.fulfillmentStatus === 'fulfilled') {
          return unprocessable(reply, { base: ['Cannot cancel a fulfilled order'] });
        }
        o.cancelledAt = now();
        o.cancelReason = 'other';
        o.closedAt = o.cancelledAt;
      } else if (action === 'fulfillments.json') {
        return createFulfillment(o, request.body, reply);
      } else return notFound(reply);
      o.updatedAt = now();
      sim.record('orderUpdates', { orderId: o.id.toString(), action: action.replace('.json', '') });
      notify(
        action === 'cancel.json' ? 'orders/cancelled' : 'orders/updated',
        orderPayload(o, ctx),
      );
      return { order: orderPayload(o, ctx) };
    },
  );

  function createFulfillment(o: OrderRecord, rawBody: unknown, reply: FastifyReply) {
    const body = asRecord(asRecord(rawBody)?.fulfillment);
    if (!body) return missingRoot(reply, 'fulfillment');
    const errors: Record<string, string[]> = {};
    const locationId =
      body.location_id === undefined ? shop.locations[0]?.id : toShopifyId(body.location_id);
    if (locationId === undefined || !shop.location(locationId)) errors.location_id = ['is invalid'];
    let lines: Array<{ lineId: bigint; quantity: number }> | undefined;
    if (body.line_items !== undefined) {
      if (!Array.isArray(body.line_items)) errors.line_items = ['is invalid'];
      else {
        lines = [];
        for (const raw of body.line_items) {
          const li = asRecord(raw);
          const lineId = toShopifyId(li?.id);
          const line = o.lines.find((l) => l.id === lineId);
          if (!line || lineId === undefined) {
            errors.line_items = ['contains an unknown line item'];
            break;
          }
          const open = line.quantity - line.refundedQuantity - line.fulfilledQuantity;
          const quantity = li?.quantity === undefined ? open : li.quantity;
          if (
            typeof quantity !== 'number' ||
            !Number.isInteger(quantity) ||
            quantity < 1 ||
            quantity > open
          ) {
            errors.line_items = [`quantity must be between 1 and ${open} for line item ${lineId}`];
            break;
          }
          lines.push({ lineId, quantity });
        }
      }
    }
    const openTotal = o.lines.reduce(
      (s, l) => s + l.quantity - l.refundedQuantity - l.fulfilledQuantity,
      0,
    );
    if (openTotal === 0) errors.base = ['All line items are already fulfilled'];
    if (o.cancelledAt !== null) errors.base = ['Cannot fulfill a cancelled order'];
    if (Object.keys(errors).length > 0) return unprocessable(reply, errors);
    const f = shop.fulfil(o, {
      at: now(),
      locationId: locationId as bigint,
      trackingCompany: typeof body.tracking_company === 'string' ? body.tracking_company : null,
      trackingNumber: typeof body.tracking_number === 'string' ? body.tracking_number : null,
      ...(lines ? { lines } : {}),
    });
    sim.record('fulfillments', { orderId: o.id.toString(), fulfillmentId: f.id.toString() });
    notify('fulfillments/create', fulfillmentPayload(f, o, ctx));
    notify('orders/updated', orderPayload(o, ctx));
    return reply.code(201).send({ fulfillment: fulfillmentPayload(f, o, ctx) });
  }

  // Sandbox controls: make the shop do things, as shoppers and staff would.
  async function createOrder(input: Partial<NewOrderInput> = {}): Promise<OrderRecord> {
    const o = shop.newOrder({ ...input, at: input.at ?? now() });
    if (input.customer === undefined && o.customer)
      notify('customers/create', customerPayload(o.customer, ctx));
    notify('orders/create', orderPayload(o, ctx));
    sim.count('orders.created');
    // Selling commits stock: the online warehouse's levels go down, as Shopify reports them.
    const location = o.locationId ?? shop.locations[0]?.id;
    if (location !== undefined) {
      for (const line of o.lines) {
        const level = shop.level(line.variant.inventoryItemId, location);
        if (!level) continue;
        const next = shop.setLevel(
          level.inventoryItemId,
          location,
          level.available - line.quantity,
          o.createdAt,
        );
        notify('inventory_levels/update', inventoryLevelPayload(next, ctx));
      }
    }
    return o;
  }

  async function updateCustomer(
    id: bigint,
    changes: { firstName?: string; lastName?: string; phone?: string | null; note?: string | null },
  ): Promise<CustomerRecord> {
    const c = shop.customers.get(id);
    if (!c) throw new Error(`no customer ${id}`);
    if (changes.firstName !== undefined) c.firstName = changes.firstName;
    if (changes.lastName !== undefined) c.lastName = changes.lastName;
    if (changes.phone !== undefined) c.phone = changes.phone;
    if (changes.note !== undefined) c.note = changes.note;
    c.updatedAt = now();
    notify('customers/update', customerPayload(c, ctx));
    return c;
  }

  async function createCustomer(): Promise<CustomerRecord> {
    const c = shop.newCustomer(now());
    notify('customers/create', customerPayload(c, ctx));
    return c;
  }

  async function refundOrder(
    orderId: bigint,
    o2: { restock?: boolean } = {},
  ): Promise<RefundRecord> {
    const o = shop.orders.get(orderId);
    if (!o) throw new Error(`no order ${orderId}`);
    const r = shop.refund(o, { at: now(), restock: o2.restock ?? true });
    notify('refunds/create', refundPayload(r, o, ctx));
    notify('orders/updated', orderPayload(o, ctx));
    return r;
  }

  app.post<{ Body: unknown }>('/_sandbox/orders', async (request, reply) => {
    const body = asRecord(request.body) ?? {};
    const lines = Array.isArray(body.lines)
      ? body.lines.map((l) => ({
          sku: String(asRecord(l)?.sku),
          quantity: Number(asRecord(l)?.quantity ?? 1),
        }))
      : undefined;
    const unknown = lines?.find((l) => !shop.variantBySku(l.sku));
    if (unknown) return unprocessable(reply, { lines: [`unknown sku '${unknown.sku}'`] });
    const o = await createOrder({
      sourceName: typeof body.sourceName === 'string' ? body.sourceName : 'web',
      ...(lines ? { lines } : {}),
    });
    return reply.code(201).send({ order: orderPayload(o, ctx) });
  });

  app.post('/_sandbox/customers', async (_request, reply) => {
    const c = await createCustomer();
    return reply.code(201).send({ customer: customerPayload(c, ctx) });
  });

  app.put<{ Params: { id: string }; Body: unknown }>(
    '/_sandbox/customers/:id',
    async (request, reply) => {
      const id = toShopifyId(request.params.id);
      if (id === undefined || !shop.customers.has(id)) return notFound(reply);
      const body = asRecord(request.body) ?? {};
      const errors: Record<string, string[]> = {};
      for (const key of ['firstName', 'lastName'] as const) {
        if (body[key] !== undefined && (typeof body[key] !== 'string' || body[key] === '')) {
          errors[key] = ['is invalid'];
        }
      }
      if (
        body.phone !== undefined &&
        body.phone !== null &&
        !/^\+[1-9]\d{1,14}$/.test(String(body.phone))
      ) {
        errors.phone = ['is invalid'];
      }
      if (Object.keys(errors).length > 0) return unprocessable(reply, errors);
      const c = await updateCustomer(id, {
        ...(typeof body.firstName === 'string' ? { firstName: body.firstName } : {}),
        ...(typeof body.lastName === 'string' ? { lastName: body.lastName } : {}),
        ...(body.phone !== undefined
          ? { phone: body.phone === null ? null : String(body.phone) }
          : {}),
        ...(body.note !== undefined ? { note: body.note === null ? null : String(body.note) } : {}),
      });
      return { customer: customerPayload(c, ctx) };
    },
  );

  app.post<{ Params: { id: string } }>('/_sandbox/orders/:id/refunds', async (request, reply) => {
    const id = toShopifyId(request.params.id);
    const o = id === undefined ? undefined : shop.orders.get(id);
    if (!o) return notFound(reply);
    if (o.lines.every((l) => l.refundedQuantity >= l.quantity)) {
      return unprocessable(reply, { base: ['Nothing left to refund'] });
    }
    const r = await refundOrder(o.id);
    return reply.code(201).send({ refund: refundPayload(r, o, ctx) });
  });

  app.post<{ Body: unknown }>('/_sandbox/webhooks', async (request, reply) => {
    const body = asRecord(request.body);
    const address = typeof body?.address === 'string' ? body.address : undefined;
    const topic = typeof body?.topic === 'string' ? body.topic : '*';
    if (!address || !/^https?:\/\//.test(address))
      return unprocessable(reply, { address: ['is invalid'] });
    subscriptions.push({ topic, address });
    return reply.code(201).send({ webhook: { topic, address } });
  });

  sim.setStateProvider(() => ({
    shopDomain,
    apiVersion,
    products: shop.products.length,
    variants: shop.skus.length,
    locations: shop.locations.map((l) => ({ id: l.id.toString(), name: l.name })),
    orders: shop.orders.size,
    customers: shop.customers.size,
    refunds: shop.refunds.size,
    apiCallLimit: `${bucket.used}/${bucket.capacity}`,
    subscriptions: subscriptions.map((s) => ({ ...s })),
    deliveries: deliveries.slice(-100),
  }));

  const controls: CommerceControls = {
    shop,
    shopDomain,
    apiVersion,
    payloadContext: ctx,
    emit,
    subscribe(topic, address) {
      subscriptions.push({ topic, address });
    },
    deliveries: () => deliveries.map((d) => ({ ...d, attempts: [...d.attempts] })),
    createOrder,
    createCustomer,
    updateCustomer,
    refundOrder,
    async idle() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
  const close = sim.close.bind(sim);
  return Object.assign(sim, controls, {
    async close() {
      await controls.idle();
      await close();
    },
  });
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

function parseIdList(value: string | undefined): bigint[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  return value
    .split(',')
    .map((s) => toShopifyId(s.trim()))
    .filter((id): id is bigint => id !== undefined);
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: { code?: string } }).cause;
    return cause?.code ?? err.name ?? err.message;
  }
  return String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
