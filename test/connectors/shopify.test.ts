// The Shopify-compatible ingress: signatures against the published vectors, exact 64-bit ids,
// every shared payload sample mapped or refused with a precise reason, and the webhook route
// over HTTP against the real app, fed by the sandbox commerce simulator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { eventByName } from '../../src/canonical/index.js';
import type { App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import {
  interpretShopifyWebhook,
  parseShopifyJson,
  signShopifyBody,
  verifyShopifySignature,
} from '../../src/connectors/shopify/index.js';
import { priorityRank } from '../../src/runtime/queue.js';
import { createCommerce } from '../../src/sandbox/commerce/index.js';
import { createApiKey } from '../../src/api/auth/api-keys.js';
import { CanonicalEvents } from '../../src/sandbox/scenarios/canonical.js';
import { nativeTransport, runScenario } from '../../src/sandbox/scenarios/index.js';
import { startQuietApp } from '../support/app.js';

const SHARED = resolve(
  process.env.MIDDLEMART_SHARED_DATA ?? join(process.cwd(), '..', 'shared', 'data'),
);
const WEBHOOKS = join(SHARED, 'webhooks');
const SHOP = { systemId: 'commerce', region: 'eu', returnLocation: 'DC-EU-1' };

// --- signatures --------------------------------------------------------------------------------

interface Vector {
  id: string;
  scheme: string;
  secret?: string;
  raw_body: string;
  expected_header_value?: string;
  valid: boolean;
}

void test('the published Shopify signature vectors verify (and fail when anything changes)', () => {
  const { vectors } = JSON.parse(
    readFileSync(join(WEBHOOKS, 'signature_vectors.json'), 'utf8'),
  ) as {
    vectors: Vector[];
  };
  const shopify = vectors.filter((v) => v.scheme === 'shopify');
  assert.ok(shopify.length >= 2, 'the shared vectors hold Shopify cases');
  for (const v of shopify) {
    const secret = v.secret!;
    const header = v.expected_header_value!;
    assert.equal(verifyShopifySignature(secret, v.raw_body, header), v.valid, v.id);
    if (v.valid) assert.equal(signShopifyBody(secret, v.raw_body), header, v.id);
    // One byte more in the body, another secret, a truncated header: all refused.
    assert.equal(verifyShopifySignature(secret, `${v.raw_body} `, header), false, v.id);
    assert.equal(verifyShopifySignature(`${secret}x`, v.raw_body, header), false, v.id);
    assert.equal(verifyShopifySignature(secret, v.raw_body, header.slice(0, -2)), false, v.id);
    assert.equal(verifyShopifySignature(secret, v.raw_body, undefined), false, v.id);
    assert.equal(verifyShopifySignature(secret, v.raw_body, ''), false, v.id);
  }
});

void test('ids above 2^53 survive parsing exactly, as strings', () => {
  const text =
    '{"id": 820982911946154508, "small": 42, "price": "12.34", "n": 1.5, "list": [-9007199254740993]}';
  const parsed = parseShopifyJson(text) as Record<string, unknown>;
  assert.equal(parsed.id, '820982911946154508');
  assert.ok(BigInt(parsed.id as string) > BigInt(Number.MAX_SAFE_INTEGER));
  assert.equal(parsed.small, 42);
  assert.equal(parsed.price, '12.34');
  assert.equal(parsed.n, 1.5);
  assert.deepEqual(parsed.list, ['-9007199254740993']);
  // An id inside a string is left alone.
  assert.deepEqual(parseShopifyJson('{"s": "820982911946154508 is big"}'), {
    s: '820982911946154508 is big',
  });
});

// --- every shared sample ------------------------------------------------------------------------

type Expected =
  | { outcome: 'event'; event: string }
  | { outcome: 'ignored' }
  | { outcome: 'rejected'; paths: string[]; message?: RegExp };

const ROUNDED = /rounded by a JSON number conversion/;
// Every sample (REST fixtures unwrapped: a webhook body is the bare resource), what it must become.
const EXPECTED: Record<string, Expected> = {
  'doc_examples/2024-01/orders_updated.json#0': {
    outcome: 'rejected',
    paths: ['id', 'customer.id', 'line_items[0].id'],
    message: ROUNDED,
  },
  'doc_examples/2024-04/inventory_levels_update.json#0': { outcome: 'ignored' },
  'doc_examples/2026-04/customers_create.json#0': {
    outcome: 'rejected',
    paths: ['id'],
    message: ROUNDED,
  },
  'doc_examples/2026-04/customers_update.json#0': {
    outcome: 'rejected',
    paths: ['id'],
    message: ROUNDED,
  },
  'doc_examples/2026-04/fulfillments_create.json#0': { outcome: 'ignored' },
  'doc_examples/2026-04/inventory_items_update.json#0': { outcome: 'ignored' },
  'doc_examples/2026-04/orders_cancelled.json#0': {
    outcome: 'rejected',
    paths: ['id'],
    message: ROUNDED,
  },
  'doc_examples/2026-04/orders_create.json#0': {
    outcome: 'rejected',
    paths: ['id', 'customer.id'],
    message: ROUNDED,
  },
  'doc_examples/2026-04/orders_paid.json#0': { outcome: 'ignored' },
  'doc_examples/2026-04/orders_updated.json#0': {
    outcome: 'rejected',
    paths: ['id', 'customer.id'],
    message: ROUNDED,
  },
  'doc_examples/2026-04/products_update.json#0': { outcome: 'ignored' },
  'doc_examples/2026-04/refunds_create.json#0': {
    outcome: 'rejected',
    paths: ['id'],
    message: ROUNDED,
  },
  'exemplars_anonymized/2024-01/orders_1.json#0': {
    outcome: 'rejected',
    paths: ['currency', 'processed_at', 'shipping_address.country_code'],
  },
  'exemplars_anonymized/2025-04/orders_3.json#0': {
    outcome: 'rejected',
    paths: ['id', 'currency', 'customer', 'line_items'],
  },
  'rest_fixtures/python_api/customer.json#0': { outcome: 'event', event: 'customer.created' },
  'rest_fixtures/python_api/fulfillment.json#0': { outcome: 'ignored' },
  'rest_fixtures/python_api/inventory_level.json#0': { outcome: 'ignored' },
  'rest_fixtures/python_api/inventory_levels.json#0': { outcome: 'ignored' },
  'rest_fixtures/python_api/inventory_levels.json#1': { outcome: 'ignored' },
  'rest_fixtures/python_api/inventory_levels.json#2': { outcome: 'ignored' },
  'rest_fixtures/python_api/inventory_levels.json#3': { outcome: 'ignored' },
  'rest_fixtures/python_api/order.json#0': {
    outcome: 'rejected',
    paths: ['total_price'],
    message: /409\.94 USD.*597\.00 USD/,
  },
  'rest_fixtures/python_api/orders.json#0': { outcome: 'rejected', paths: ['line_items'] },
  'rest_fixtures/python_api/refund.json#0': { outcome: 'event', event: 'return.requested' },
  'rest_fixtures/python_api/transaction.json#0': { outcome: 'ignored' },
  'rest_fixtures/ruby_api_v9/order_with_properties.json#0': {
    outcome: 'rejected',
    paths: ['line_items[0].sku', 'line_items[1].sku'],
    message: /no SKU/,
  },
};

/** The webhook topic a REST fixture's resource would arrive under. */
const REST_TOPICS: Record<string, string> = {
  order: 'orders/create',
  orders: 'orders/create',
  customer: 'customers/create',
  refund: 'refunds/create',
  fulfillment: 'fulfillments/create',
  inventory_level: 'inventory_levels/update',
  inventory_levels: 'inventory_levels/update',
  transaction: 'order_transactions/create',
};

function jsonFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const p = join(dir, name);
      return statSync(p).isDirectory() ? jsonFiles(p) : p.endsWith('.json') ? [p] : [];
    })
    .sort();
}

/** Every sample as (label, topic, raw body). */
function samples(): Array<{ label: string; topic: string; body: string }> {
  const root = join(WEBHOOKS, 'shopify');
  const out: Array<{ label: string; topic: string; body: string }> = [];
  for (const file of jsonFiles(root)) {
    const rel = relative(root, file).split('\\').join('/');
    const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    let bodies: Array<[string, unknown]>;
    if (rel.startsWith('doc_examples/')) {
      const name = rel
        .split('/')
        .pop()!
        .replace(/\.json$/, '');
      const cut = name.lastIndexOf('_');
      bodies = [[`${name.slice(0, cut)}/${name.slice(cut + 1)}`, doc.response]];
    } else if (rel.startsWith('exemplars_anonymized/')) {
      bodies = [['orders/create', doc]];
    } else {
      const [resource, value] = Object.entries(doc)[0]!;
      const topic = REST_TOPICS[resource] ?? `${resource}/create`;
      bodies = Array.isArray(value) ? value.map((v) => [topic, v]) : [[topic, value]];
    }
    bodies.forEach(([topic, body], i) =>
      out.push({ label: `${rel}#${i}`, topic, body: JSON.stringify(body) }),
    );
  }
  return out;
}

void test('every shared Shopify sample maps to a valid canonical event or is refused with a precise reason', () => {
  const all = samples();
  assert.deepEqual(
    all.map((s) => s.label).sort(),
    Object.keys(EXPECTED).sort(),
    'every sample has an expectation',
  );
  for (const s of all) {
    const expected = EXPECTED[s.label]!;
    const got = interpretShopifyWebhook(s.topic, s.body, SHOP);
    assert.equal(got.outcome, expected.outcome, `${s.label}: ${JSON.stringify(got).slice(0, 400)}`);
    if (got.outcome === 'event' && expected.outcome === 'event') {
      assert.equal(got.event, expected.event, s.label);
      const schema = eventByName(got.event as 'order.created').data;
      assert.ok(schema.safeParse(got.data).success, `${s.label} maps to valid ${got.event} data`);
    }
    if (got.outcome === 'rejected' && expected.outcome === 'rejected') {
      const paths = got.issues.map((i) => i.path);
      for (const p of expected.paths)
        assert.ok(paths.includes(p), `${s.label}: ${p} named in ${paths.join(', ')}`);
      for (const issue of got.issues)
        assert.ok(issue.message.length > 10, `${s.label}: ${issue.path} says why`);
      if (expected.message) {
        assert.ok(
          got.issues.some((i) => expected.message!.test(i.message)),
          `${s.label}: ${JSON.stringify(got.issues)}`,
        );
      }
    }
    if (got.outcome === 'ignored')
      assert.match(got.reason, new RegExp(`topic ${s.topic} is not taken`));
  }
});

void test('the mapped samples carry the shop’s exact ids and amounts', () => {
  const refund = samples().find((s) => s.label === 'rest_fixtures/python_api/refund.json#0')!;
  const r = interpretShopifyWebhook('refunds/create', refund.body, SHOP);
  assert.equal(r.outcome, 'event');
  const data = (r as { data: Record<string, unknown> }).data;
  assert.equal(data.id, 'commerce-refund-509562969');
  assert.equal(data.orderId, 'commerce-450789469');
  assert.deepEqual(data.refundTotal, { amount: 20900, currency: 'USD' });
  assert.deepEqual(
    (data.lines as Array<{ orderLineId: string; sku: string }>).map((l) => [l.orderLineId, l.sku]),
    [
      ['703073504', 'IPOD2008BLACK'],
      ['466157049', 'IPOD2008GREEN'],
    ],
  );
  // The doc example's exact ids (its gids) map when the body carries them exactly.
  const doc = readFileSync(
    join(WEBHOOKS, 'shopify/doc_examples/2026-04/customers_create.json'),
    'utf8',
  );
  const body = JSON.stringify((JSON.parse(doc) as { response: unknown }).response).replace(
    '"id":706405506930370000',
    '"id":706405506930370084',
  );
  const c = interpretShopifyWebhook('customers/create', body, SHOP);
  assert.equal(c.outcome, 'event', JSON.stringify(c));
  const customer = (c as { data: { id: string; sourceIds: unknown; phones: unknown[] } }).data;
  assert.equal(customer.id, 'commerce-706405506930370084');
  assert.deepEqual(customer.sourceIds, [{ system: 'commerce', id: '706405506930370084' }]);
});

// --- over HTTP, fed by the sandbox shop ---------------------------------------------------------

const SECRET = 'whsec_test_shop_secret';

async function startShopApp(): Promise<{ app: App; url: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-shopify-'));
  const yaml = `version: 1
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
  - id: commerce
    kind: shopify
    baseUrl: http://127.0.0.1:9
    region: eu
    credentials:
      webhookSecret: \${SHOP_WEBHOOK_SECRET}
`;
  const parsed = parseConfig(yaml, 'shop.yaml', { SHOP_WEBHOOK_SECRET: SECRET });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const config = {
    ...parsed.config,
    engine: { ...parsed.config.engine, roles: ['api'] },
  } as typeof parsed.config;
  const app = await startQuietApp({ config, dir });
  return {
    app,
    url: app.url!,
    close: async () => {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Row = {
  id: string;
  source: string;
  idempotency_key: string;
  type: string;
  partition_key: string;
  priority: number;
  payload: string;
  traceparent: string | null;
};

async function messages(app: App): Promise<Row[]> {
  return app.store.query<Row>(
    'SELECT id, source, idempotency_key, type, partition_key, priority, payload, traceparent FROM messages ORDER BY seq',
  );
}

async function postWebhook(
  url: string,
  topic: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${url}/v1/webhooks/shopify/commerce`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-shopify-topic': topic,
      'x-shopify-hmac-sha256': signShopifyBody(SECRET, body),
      'x-shopify-webhook-id': `wh-${topic}-${body.length}`,
      'x-shopify-shop-domain': 'middlemart-sandbox.myshopify.com',
      ...headers,
    },
    body,
  });
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
  };
}

void test('the sandbox shop’s webhooks (ids above 2^53) become canonical events in the engine', async (t) => {
  const mm = await startShopApp();
  t.after(() => mm.close());
  const shop = createCommerce({
    seed: 7,
    webhookSecret: SECRET,
    webhookUrl: `${mm.url}/v1/webhooks/shopify/commerce`,
    shop: { largeIds: true },
    delivery: { attempts: 1, baseDelayMs: 10, timeoutMs: 5000 },
  });
  await shop.listen();
  t.after(() => shop.close());

  const order = await shop.createOrder();
  await shop.idle();
  assert.ok(order.id > BigInt(Number.MAX_SAFE_INTEGER), 'the shop issues ids above 2^53');
  const refund = await shop.refundOrder(order.id);
  await shop.idle();

  const deliveries = shop.deliveries();
  const byTopic = (topic: string) => deliveries.filter((d) => d.topic === topic);
  for (const d of deliveries) {
    assert.ok(d.delivered, `${d.topic}: ${JSON.stringify(d.attempts)}`);
  }
  assert.equal(byTopic('orders/create')[0]?.attempts[0]?.status, 202);
  assert.equal(byTopic('refunds/create')[0]?.attempts[0]?.status, 202);
  assert.equal(byTopic('inventory_levels/update')[0]?.attempts[0]?.status, 200);

  const rows = await messages(mm.app);
  const orderId = `commerce-${order.id.toString()}`;
  const created = rows.find((r) => r.type === 'com.middlemart.order.created.v1');
  assert.ok(created, rows.map((r) => r.type).join());
  assert.equal(created.partition_key, orderId);
  assert.equal(created.priority, priorityRank('critical'));
  assert.equal(created.source, '/middlemart/webhooks/shopify/commerce');
  assert.equal(created.idempotency_key, byTopic('orders/create')[0]!.webhookId);
  const event = mm.app.engine.readPayload(created.payload) as {
    data: { id: string; externalIds: unknown; lines: Array<{ lineId: string }> };
  };
  assert.equal(event.data.id, orderId);
  assert.deepEqual(event.data.externalIds, [{ system: 'commerce', id: order.id.toString() }]);
  assert.deepEqual(
    event.data.lines.map((l) => l.lineId),
    order.lines.map((l) => l.id.toString()),
  );
  // The webhook carries the order the sandbox's canonical transport sends (Shopify times have
  // whole seconds).
  const canonical = new CanonicalEvents(() => 0.5).orderFromShopify(order, 'web');
  assert.deepEqual(event.data, {
    ...canonical,
    placedAt: canonical.placedAt.replace(/\.\d{3}Z$/, '.000Z'),
  });

  const ret = rows.find((r) => r.type === 'com.middlemart.return.requested.v1');
  assert.ok(ret);
  assert.equal(ret.partition_key, orderId, 'a refund queues behind its order');
  assert.equal(
    (mm.app.engine.readPayload(ret.payload) as { data: { id: string } }).data.id,
    `commerce-refund-${refund.id.toString()}`,
  );
  assert.ok(rows.some((r) => r.type === 'com.middlemart.customer.created.v1'));
  assert.ok(
    rows.some((r) => r.type === 'com.middlemart.order.updated.v1' && r.partition_key === orderId),
  );
  assert.ok(!rows.some((r) => r.type.includes('inventory')), 'ignored topics are stored nowhere');
});

void test('a bad or missing signature is 401 and nothing is stored; replays are duplicates', async (t) => {
  const mm = await startShopApp();
  t.after(() => mm.close());
  const body = readFileSync(
    join(WEBHOOKS, 'shopify/rest_fixtures/python_api/customer.json'),
    'utf8',
  );
  const customer = JSON.stringify((JSON.parse(body) as { customer: unknown }).customer);

  const forged = await postWebhook(mm.url, 'customers/create', customer, {
    'x-shopify-hmac-sha256': signShopifyBody('another-secret', customer),
  });
  assert.equal(forged.status, 401);
  assert.equal(forged.json.type, 'https://middlemart.dev/problems/unauthorized');
  const missing = await postWebhook(mm.url, 'customers/create', customer, {
    'x-shopify-hmac-sha256': '',
  });
  assert.equal(missing.status, 401);
  const tampered = await fetch(`${mm.url}/v1/webhooks/shopify/commerce`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-shopify-topic': 'customers/create',
      'x-shopify-hmac-sha256': signShopifyBody(SECRET, customer),
      'x-shopify-webhook-id': 'wh-tampered',
    },
    body: customer.replace('Bob', 'Rob'),
  });
  assert.equal(tampered.status, 401);
  assert.equal((await messages(mm.app)).length, 0, 'nothing stored for unverified webhooks');

  const traceId = '11111111111111111111111111111111';
  const first = await postWebhook(mm.url, 'customers/create', customer, {
    'x-shopify-webhook-id': 'wh-1',
    traceparent: `00-${traceId}-2222222222222222-01`,
  });
  assert.equal(first.status, 202, JSON.stringify(first.json));
  assert.equal(first.json.event, 'customer.created');
  assert.equal(first.json.traceId, traceId);
  const again = await postWebhook(mm.url, 'customers/create', customer, {
    'x-shopify-webhook-id': 'wh-1',
  });
  assert.equal(again.status, 202);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal(again.json.id, first.json.id);
  const rows = await messages(mm.app);
  assert.equal(rows.length, 1);
  assert.match(rows[0]!.traceparent ?? '', new RegExp(`^00-${traceId}-`));
  assert.equal(rows[0]!.priority, priorityRank(eventByName('customer.created').priority));

  const noId = await postWebhook(mm.url, 'customers/create', customer, {
    'x-shopify-webhook-id': '',
  });
  assert.equal(noId.status, 400);
  const unknown = await fetch(`${mm.url}/v1/webhooks/shopify/nowhere`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(unknown.status, 404);
});

void test('an unmappable webhook is a 422 naming the Shopify fields, and nothing is stored', async (t) => {
  const mm = await startShopApp();
  t.after(() => mm.close());
  const doc = readFileSync(
    join(WEBHOOKS, 'shopify/rest_fixtures/ruby_api_v9/order_with_properties.json'),
    'utf8',
  );
  const order = JSON.stringify((JSON.parse(doc) as { order: unknown }).order);
  const res = await postWebhook(mm.url, 'orders/create', order);
  assert.equal(res.status, 422);
  const errors = res.json.errors as Array<{ path: string; message: string }>;
  assert.deepEqual(
    errors.map((e) => e.path),
    ['line_items[0].sku', 'line_items[1].sku'],
  );
  const ignored = await postWebhook(mm.url, 'products/update', '{"id": 1}');
  assert.equal(ignored.status, 200);
  assert.equal(ignored.json.status, 'ignored');
  assert.equal((await messages(mm.app)).length, 0);
});

void test('the sandbox’s native traffic (webhooks, app orders, store uploads) is taken whole, and a replay adds nothing', async (t) => {
  const mm = await startShopApp();
  t.after(() => mm.close());
  const apiKey = (await createApiKey(mm.app.store, { name: 'traffic', roles: ['channel'] })).key;
  const run = () =>
    runScenario(
      'steady',
      { seed: 5, size: 120, rate: 1000 },
      {
        target: mm.url,
        transport: nativeTransport({ webhookSecret: SECRET }),
        apiKey,
        concurrency: 4,
      },
    );
  const first = await run();
  assert.equal(first.summary.rejected, 0, JSON.stringify(first.summary.rejectedByReason));
  assert.equal(first.summary.accepted, first.summary.sent);
  for (const label of [
    'webhook:orders/create',
    'webhook:customers/create',
    'api:orders',
    'pos:batch',
  ]) {
    assert.ok((first.summary.byLabel[label]?.accepted ?? 0) > 0, `${label} in the traffic`);
  }
  const count = async () =>
    Number(
      (await mm.app.store.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM messages'))[0]!
        .n,
    );
  const stored = await count();
  assert.ok(stored >= first.summary.sent);
  const again = await run();
  assert.equal(again.summary.rejected, 0, JSON.stringify(again.summary.rejectedByReason));
  assert.equal(await count(), stored, 'the replayed run was taken as duplicates');
});
