// POST /v1/orders over HTTP against the real app: a canonical order is accepted as order.created
// (partition key = order id, critical class, the caller's trace), answered 202 with the order id
// and trace id only once committed; Idempotency-Key is required and has Stripe's semantics;
// validation errors name the field and store nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../../src/app.js';
import { createApiKey } from '../../src/api/auth/api-keys.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { priorityRank } from '../../src/runtime/queue.js';
import { ingressModule } from '../../src/wiring/ingress.js';
import { startTestApp, type TestApp } from './app-helpers.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

function mobileOrder(id = 'app-1001') {
  const m = (amount: number) => ({ amount, currency: 'EUR' });
  return {
    id,
    channel: 'mobile',
    externalIds: [{ system: 'mobile-app', id: id.toUpperCase() }],
    customer: { email: 'ada@example.com' },
    currency: 'EUR',
    pricesIncludeTax: true,
    lines: [
      { lineId: '1', sku: 'MM-00001', quantity: 2, unitPrice: m(1999), discounts: [], taxes: [] },
      {
        lineId: '2',
        sku: 'MM-00002',
        quantity: 1,
        unitPrice: m(500),
        discounts: [{ amount: m(100) }],
        taxes: [],
      },
    ],
    fulfilment: { method: 'pickup', pickupLocation: 'STORE-BER-01' },
    totals: {
      subtotal: m(4498),
      discountTotal: m(100),
      shippingTotal: m(0),
      taxTotal: m(0),
      grandTotal: m(4398),
    },
    placedAt: '2026-11-28T07:00:00Z',
    region: 'eu',
  };
}

async function storedMessages(api: TestApp) {
  return api.app.store.query<{
    id: string;
    source: string;
    idempotency_key: string;
    type: string;
    partition_key: string;
    priority: number;
    payload: string;
    traceparent: string | null;
  }>(
    'SELECT id, source, idempotency_key, type, partition_key, priority, payload, traceparent FROM messages ORDER BY seq',
  );
}

void test('a canonical order is accepted durably as order.created with its partition key, class and trace', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const order = mobileOrder();
  const res = await api.call('POST', '/v1/orders', {
    key,
    body: order,
    headers: { 'idempotency-key': 'order:app-1001', traceparent: TRACEPARENT },
  });
  assert.equal(res.status, 202, res.text);
  const answer = res.json() as { id: string; orderId: string; traceId: string; acceptedAt: string };
  assert.equal(answer.orderId, 'app-1001');
  assert.equal(answer.traceId, TRACE_ID);
  assert.ok(!Number.isNaN(Date.parse(answer.acceptedAt)));

  const rows = await storedMessages(api);
  assert.equal(rows.length, 1);
  const row = rows[0]!;
  assert.equal(row.id, answer.id);
  assert.equal(row.type, 'com.middlemart.order.created.v1');
  assert.equal(row.partition_key, 'app-1001');
  assert.equal(row.priority, priorityRank('critical'));
  assert.equal(row.idempotency_key, 'order:app-1001');
  assert.match(row.traceparent ?? '', new RegExp(`^00-${TRACE_ID}-`));
  const event = api.app.engine.readPayload(row.payload) as {
    type: string;
    partitionkey: string;
    priority: string;
    traceparent: string;
    data: unknown;
  };
  assert.equal(event.type, 'com.middlemart.order.created.v1');
  assert.equal(event.partitionkey, 'app-1001');
  assert.equal(event.priority, 'critical');
  assert.match(event.traceparent, new RegExp(`^00-${TRACE_ID}-`));
  assert.deepEqual(event.data, order);
});

void test('Idempotency-Key: required; same key and body replay the answer; another body is 409', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);

  const none = await api.call('POST', '/v1/orders', { key, body: mobileOrder() });
  assert.equal(none.status, 400);
  const noneProblem = none.json() as { type: string; errors: Array<{ path: string }> };
  assert.equal(noneProblem.type, 'https://middlemart.dev/problems/invalid-idempotency-key');
  assert.equal(noneProblem.errors[0]?.path, 'headers["idempotency-key"]');

  const headers = { 'idempotency-key': 'k-1' };
  const first = await api.call('POST', '/v1/orders', { key, body: mobileOrder(), headers });
  const again = await api.call('POST', '/v1/orders', { key, body: mobileOrder(), headers });
  assert.equal(first.status, 202);
  assert.equal(again.status, 202);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(again.json(), first.json());

  const other = await api.call('POST', '/v1/orders', {
    key,
    body: mobileOrder('app-1002'),
    headers,
  });
  assert.equal(other.status, 409);
  assert.equal(
    (other.json() as { type: string }).type,
    'https://middlemart.dev/problems/idempotency-key-reused',
  );
  assert.equal((await storedMessages(api)).length, 1);
});

void test('an invalid order is a 400 naming each field, and nothing is stored', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const bad = mobileOrder();
  bad.lines[0]!.quantity = 0;
  bad.totals.grandTotal.amount = 1;
  const res = await api.call('POST', '/v1/orders', {
    key,
    body: bad,
    headers: { 'idempotency-key': 'bad-1' },
  });
  assert.equal(res.status, 400, res.text);
  const problem = res.json() as { type: string; errors: Array<{ path: string; message: string }> };
  assert.equal(problem.type, 'https://middlemart.dev/problems/validation-error');
  assert.ok(
    problem.errors.some((e) => e.path === 'lines[0].quantity'),
    JSON.stringify(problem.errors),
  );

  const withStatus = { ...mobileOrder(), status: 'posted' };
  const res2 = await api.call('POST', '/v1/orders', {
    key,
    body: withStatus,
    headers: { 'idempotency-key': 'bad-2' },
  });
  assert.equal(res2.status, 400);
  assert.equal((res2.json() as { errors: Array<{ path: string }> }).errors[0]?.path, 'status');

  const notJson = await fetch(`${api.url}/v1/orders`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      'idempotency-key': 'bad-3',
    },
    body: '{"id": ',
  });
  assert.equal(notJson.status, 400);
  assert.equal((await storedMessages(api)).length, 0);
});

void test('only channel keys (and admins) may place orders', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const res = await api.call('POST', '/v1/orders', {
    key: await api.key(['operator']),
    body: mobileOrder(),
    headers: { 'idempotency-key': 'op-1' },
  });
  assert.equal(res.status, 403);
  const anonymous = await api.call('POST', '/v1/orders', {
    body: mobileOrder(),
    headers: { 'idempotency-key': 'anon-1' },
  });
  assert.equal(anonymous.status, 401);
});

void test('the estate config’s priority override applies to orders taken through the intake', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-orders-'));
  const parsed = parseConfig(
    `version: 1
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
priorities:
  order.created: standard
`,
    'test.yaml',
    {},
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const app = await startApp({
    config: { ...parsed.config, engine: { ...parsed.config.engine, roles: ['api'] } },
    port: 0,
    storeUrl: `sqlite:${join(dir, 'mm.db')}`,
    modules: [ingressModule],
    logger: createLogger({ level: 'silent' }),
  });
  t.after(async () => {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const key = (await createApiKey(app.store, { name: 'app', roles: ['channel'] })).key;
  const res = await fetch(`${app.url}/v1/orders`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      'idempotency-key': 'prio-1',
    },
    body: JSON.stringify(mobileOrder('app-2001')),
  });
  assert.equal(res.status, 202, await res.text());
  const rows = await app.store.query<{ priority: number; payload: string }>(
    'SELECT priority, payload FROM messages',
  );
  assert.equal(rows[0]?.priority, priorityRank('standard'));
  assert.equal(
    (app.engine.readPayload(rows[0]!.payload) as { priority: string }).priority,
    'standard',
  );
});
