// The commerce simulator against Shopify's own material: signature vectors, documented webhook
// payloads (read from ../shared at test time), the leaky bucket and the 422 error shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { resolve } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import {
  createCommerce,
  parseShopifyJson,
  signShopifyWebhook,
  toShopifyJson,
  verifyShopifyWebhook,
  LeakyBucket,
} from '../../src/sandbox/commerce/index.js';

// The project's shared test data sits beside the checkout (../shared); CI always has it.
const SHARED = resolve(process.env.MIDDLEMART_SHARED_DATA ?? '../shared/data', 'webhooks');
const hasShared = existsSync(`${SHARED}/signature_vectors.json`) || process.env.CI === 'true';
if (!hasShared) console.log(`# skipping Shopify payload tests: ${SHARED} not found`);

interface Vector {
  scheme: string;
  secret?: string;
  raw_body: string;
  expected_header_value?: string;
  valid: boolean;
  id: string;
}

void test('Shopify signature vectors verify', { skip: !hasShared && 'shared data absent' }, () => {
  const doc = JSON.parse(readFileSync(`${SHARED}/signature_vectors.json`, 'utf8')) as {
    vectors: Vector[];
  };
  const shopify = doc.vectors.filter((v) => v.scheme === 'shopify');
  assert.ok(shopify.length >= 1, 'there are Shopify vectors');
  for (const v of shopify) {
    const secret = v.secret as string;
    const expected = v.expected_header_value as string;
    if (v.valid) {
      assert.equal(signShopifyWebhook(secret, v.raw_body), expected, v.id);
      assert.ok(verifyShopifyWebhook(secret, v.raw_body, expected), v.id);
      assert.ok(!verifyShopifyWebhook(`${secret}x`, v.raw_body, expected), `${v.id}: wrong secret`);
      assert.ok(!verifyShopifyWebhook(secret, `${v.raw_body} `, expected), `${v.id}: altered body`);
    } else {
      assert.ok(!verifyShopifyWebhook(secret, v.raw_body, expected), v.id);
    }
  }
});

void test('large ids survive a JSON round trip as bigints', () => {
  const text = '{"id": 820982911946154508, "n": 12, "s": "820982911946154508", "p": "1.50"}';
  const parsed = parseShopifyJson(text) as Record<string, unknown>;
  assert.equal(parsed.id, 820982911946154508n);
  assert.equal(parsed.n, 12);
  assert.equal(parsed.s, '820982911946154508');
  assert.equal(toShopifyJson({ id: 820982911946154508n }), '{"id":820982911946154508}');
});

/** JSON type of a value, with integers and floats both 'number'. */
function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * Compares a generated payload with a documented one: same keys in every object, same JSON type
 * wherever both sides are non-null; arrays compare their first elements.
 */
function compareShape(doc: unknown, got: unknown, path: string, problems: string[]): void {
  const dt = jsonType(doc);
  const gt = jsonType(got);
  if (dt === 'null' || gt === 'null') return;
  if (dt !== gt) {
    problems.push(`${path}: documented ${dt}, generated ${gt}`);
    return;
  }
  if (dt === 'array') {
    const [d0] = doc as unknown[];
    const [g0] = got as unknown[];
    if (d0 !== undefined && g0 !== undefined) compareShape(d0, g0, `${path}[0]`, problems);
    return;
  }
  if (dt !== 'object') return;
  const d = doc as Record<string, unknown>;
  const g = got as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (!(key in g)) problems.push(`${path}.${key}: missing`);
    else compareShape(d[key], g[key], `${path}.${key}`, problems);
  }
  // Keys in empty documented objects (receipt: {}) are free-form.
  if (Object.keys(d).length === 0) return;
  for (const key of Object.keys(g))
    if (!(key in d)) problems.push(`${path}.${key}: not in Shopify's example`);
}

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

async function receiver(
  answer: (n: number) => number = () => 200,
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = answer(received.length);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks`, received, server };
}

const DOC_EXAMPLES: Record<string, string> = {
  'orders/create': 'shopify/doc_examples/2026-04/orders_create.json',
  'orders/updated': 'shopify/doc_examples/2026-04/orders_updated.json',
  'refunds/create': 'shopify/doc_examples/2026-04/refunds_create.json',
  'customers/create': 'shopify/doc_examples/2026-04/customers_create.json',
  'customers/update': 'shopify/doc_examples/2026-04/customers_update.json',
  'inventory_levels/update': 'shopify/doc_examples/2024-04/inventory_levels_update.json',
};

void test(
  'webhooks have Shopify headers, signatures and payload shapes',
  { skip: !hasShared && 'shared data absent' },
  async () => {
    const hook = await receiver();
    const secret = 'shape-test-secret';
    const commerce = createCommerce({
      seed: 3,
      webhookSecret: secret,
      webhookUrl: hook.url,
      shop: { largeIds: true },
    });
    await commerce.listen();
    try {
      const order = await commerce.createOrder({ sourceName: 'web' });
      await commerce.refundOrder(order.id);
      await commerce.createCustomer();
      const res = await fetch(`${commerce.url}/admin/api/2024-04/inventory_levels/set.json`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-shopify-access-token': 'shpat_sandbox_token',
        },
        body: toShopifyJson({
          location_id: commerce.shop.locations[0]?.id,
          inventory_item_id: order.lines[0]?.variant.inventoryItemId,
          available: 7,
        }),
      });
      assert.equal(res.status, 200);
      const customer = [...commerce.shop.customers.values()][0];
      assert.ok(customer);
      const changed = await fetch(`${commerce.url}/_sandbox/customers/${customer.id}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ phone: '+4930123456', note: 'prefers pickup' }),
      });
      assert.equal(changed.status, 200);
      await commerce.idle();

      const byTopic = new Map<string, Received>();
      for (const r of hook.received) byTopic.set(String(r.headers['x-shopify-topic']), r);
      for (const [topic, file] of Object.entries(DOC_EXAMPLES)) {
        const r = byTopic.get(topic);
        assert.ok(r, `a ${topic} webhook was sent`);
        assert.equal(r.headers['content-type'], 'application/json');
        assert.equal(r.headers['x-shopify-shop-domain'], commerce.shopDomain);
        assert.equal(r.headers['x-shopify-api-version'], '2024-04');
        assert.match(String(r.headers['x-shopify-webhook-id']), /^[0-9a-f-]{36}$/);
        assert.ok(!Number.isNaN(Date.parse(String(r.headers['x-shopify-triggered-at']))));
        const hmac = String(r.headers['x-shopify-hmac-sha256']);
        assert.ok(verifyShopifyWebhook(secret, r.body, hmac), `${topic} signature verifies`);
        const doc = (JSON.parse(readFileSync(`${SHARED}/${file}`, 'utf8')) as { response: unknown })
          .response;
        const problems: string[] = [];
        compareShape(doc, JSON.parse(r.body), topic, problems);
        assert.deepEqual(problems, [], `${topic} matches Shopify's documented shape`);
      }
      // Ids are bare JSON integers and agree with their admin_graphql_api_id.
      const orderBody = byTopic.get('orders/create')?.body ?? '';
      const m = /^\{"id":(\d+),"admin_graphql_api_id":"gid:\/\/shopify\/Order\/(\d+)"/.exec(
        orderBody,
      );
      assert.ok(m, 'order id is a JSON integer followed by its gid');
      assert.equal(m[1], m[2]);
      assert.ok(BigInt(m[1] ?? '0') > BigInt(Number.MAX_SAFE_INTEGER), 'large ids exceed 2^53');
      assert.equal((parseShopifyJson(orderBody) as { id: bigint }).id, order.id);
      const parsed = JSON.parse(orderBody) as {
        total_price: string;
        line_items: Array<{ sku: string }>;
      };
      assert.match(parsed.total_price, /^\d+\.\d{2}$/);
      assert.match(parsed.line_items[0]?.sku ?? '', /^MM-\d{5}$/);
      assert.ok(commerce.deliveries().every((d) => d.delivered));
    } finally {
      await commerce.close();
      hook.server.close();
    }
  },
);

void test('emit retries a failing target and records the delivery', async () => {
  const hook = await receiver((n) => (n < 3 ? 503 : 200));
  const commerce = createCommerce({ seed: 4, delivery: { attempts: 4, baseDelayMs: 5 } });
  try {
    const d = await commerce.emit('orders/create', { id: 1n }, hook.url);
    assert.equal(d.delivered, true);
    assert.deepEqual(
      d.attempts.map((a) => a.status),
      [503, 503, 200],
    );
    assert.equal(hook.received.length, 3);
    assert.equal(hook.received[0]?.headers['x-shopify-webhook-id'], d.webhookId);
    assert.equal(commerce.counters()['webhooks.delivered'], 1);
    const failing = await receiver(() => 500);
    const lost = await commerce.emit('orders/create', { id: 2n }, failing.url);
    assert.equal(lost.delivered, false);
    assert.equal(lost.attempts.length, 4);
    failing.server.close();
  } finally {
    await commerce.close();
    hook.server.close();
  }
});

void test('the Admin API leaky bucket refuses the 41st call of a burst', async () => {
  const fixedNow = 1_760_000_000_000;
  const commerce = createCommerce({ seed: 5, now: () => fixedNow });
  await commerce.listen();
  try {
    const headers = { 'x-shopify-access-token': 'shpat_sandbox_token' };
    const url = `${commerce.url}/admin/api/2024-04/products.json?limit=1`;
    for (let i = 1; i <= 40; i++) {
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      assert.equal(res.status, 200, `call ${i}`);
      assert.equal(res.headers.get('x-shopify-shop-api-call-limit'), `${i}/40`);
    }
    const res = await fetch(url, { headers });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get('retry-after')) >= 1);
    assert.equal(res.headers.get('x-shopify-shop-api-call-limit'), '40/40');
    assert.ok(typeof ((await res.json()) as { errors: unknown }).errors === 'string');
    assert.equal(commerce.counters()['admin.throttled'], 1);
    const unauth = await fetch(url, { headers: { 'x-shopify-access-token': 'wrong' } });
    assert.equal(unauth.status, 401);
  } finally {
    await commerce.close();
  }
});

void test('the leaky bucket drains at its leak rate', () => {
  let now = 0;
  const bucket = new LeakyBucket({ capacity: 40, leakPerSecond: 2, now: () => now });
  for (let i = 0; i < 40; i++) assert.equal(bucket.take().allowed, true);
  assert.equal(bucket.take().allowed, false);
  now += 500; // one unit drained
  assert.deepEqual(bucket.take(), { allowed: true, used: 40, capacity: 40 });
  now += 10_000;
  assert.equal(bucket.used, 20);
});

void test('Admin API writes validate Shopify-style and read back', async () => {
  const commerce = createCommerce({ seed: 6 });
  await commerce.listen();
  const headers = {
    'x-shopify-access-token': 'shpat_sandbox_token',
    'content-type': 'application/json',
  };
  const api = `${commerce.url}/admin/api/2024-04`;
  try {
    const variant = commerce.shop.products[0]?.variants[0];
    assert.ok(variant);
    const bad = await fetch(`${api}/variants/${variant.id}.json`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ variant: { id: Number(variant.id), price: 'abc' } }),
    });
    assert.equal(bad.status, 422);
    assert.deepEqual(await bad.json(), { errors: { price: ['is not a number'] } });

    const badLevel = await fetch(`${api}/inventory_levels/set.json`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ inventory_item_id: 1, location_id: 'x', available: 1.5 }),
    });
    assert.equal(badLevel.status, 422);
    const errs = ((await badLevel.json()) as { errors: Record<string, unknown> }).errors;
    assert.deepEqual(Object.keys(errs).sort(), ['available', 'inventory_item_id', 'location_id']);
    for (const v of Object.values(errs)) assert.ok(Array.isArray(v) && typeof v[0] === 'string');

    const ok = await fetch(`${api}/variants/${variant.id}.json`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ variant: { id: Number(variant.id), price: '19.95' } }),
    });
    assert.equal(ok.status, 200);
    const back = await fetch(`${api}/variants/${variant.id}.json`, { headers });
    const vb = (await back.json()) as { variant: { price: string; sku: string } };
    assert.equal(vb.variant.price, '19.95');
    assert.equal(vb.variant.sku, variant.sku);

    const order = await commerce.createOrder({});
    const tagged = await fetch(`${api}/orders/${order.id}.json`, {
      method: 'PUT',
      headers,
      body: JSON.stringify({ order: { id: Number(order.id), tags: 'erp-posted, vip' } }),
    });
    assert.equal(tagged.status, 200);
    assert.equal(
      ((await tagged.json()) as { order: { tags: string } }).order.tags,
      'erp-posted, vip',
    );

    const fulfil = await fetch(`${api}/orders/${order.id}/fulfillments.json`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ fulfillment: { tracking_number: '1Z999', tracking_company: 'UPS' } }),
    });
    assert.equal(fulfil.status, 201);
    const f = (await fulfil.json()) as { fulfillment: { status: string; tracking_number: string } };
    assert.equal(f.fulfillment.tracking_number, '1Z999');
    const again = await fetch(`${api}/orders/${order.id}/fulfillments.json`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ fulfillment: {} }),
    });
    assert.equal(again.status, 422);
    const readOrder = await fetch(`${api}/orders/${order.id}.json`, { headers });
    assert.equal(
      ((await readOrder.json()) as { order: { fulfillment_status: string } }).order
        .fulfillment_status,
      'fulfilled',
    );
    const missing = await fetch(`${api}/orders/999.json`, { headers });
    assert.equal(missing.status, 404);
  } finally {
    await commerce.close();
  }
});
