// The cloud ERP connector against the real cloud ERP simulator over HTTP: booking (money in minor
// units → decimals), deduplication after an answer lost to a truncated body, error
// classification, token caching and renewal, the item master, inventory, status changes, and the
// status poller with its watermark in the store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudErpClient } from '../../src/connectors/cloud-erp/client.js';
import {
  cloudErpCustomerSyncPerformer,
  postCreditPerformer,
  postSalesOrderPerformer,
} from '../../src/connectors/cloud-erp/performers.js';
import {
  ERP_STATUS_MIGRATIONS,
  ErpStatusPoller,
} from '../../src/connectors/cloud-erp/status-poller.js';
import { minorToDecimalString } from '../../src/connectors/cloud-erp/money.js';
import { ErpError, type ErpPort, type ErpSalesOrder } from '../../src/ports/erp.js';
import type { SystemAction } from '../../src/ports/system-actions.js';
import type { AcceptRequest } from '../../src/runtime/index.js';
import { createCloudErp, type CloudErp } from '../../src/sandbox/cloud-erp/index.js';
import { openStore } from '../../src/store/index.js';
import { createDeliveryGate } from '../../src/runtime/delivery/index.js';

const SECRET = 'cloud-erp-connector-secret';

async function startErp(
  extra: Partial<Parameters<typeof createCloudErp>[0]> = {},
): Promise<{ erp: CloudErp; url: string; client: CloudErpClient }> {
  const erp = createCloudErp({ clientSecret: SECRET, ...extra });
  const url = await erp.listen();
  const client = new CloudErpClient({
    system: 'cloud-erp',
    baseUrl: url,
    clientId: 'middlemart',
    clientSecret: SECRET,
  });
  return { erp, url, client };
}

async function state(
  url: string,
): Promise<Record<string, unknown> & { received: Record<string, unknown[]> }> {
  const res = await fetch(`${url}/_sandbox/state`);
  return (await res.json()) as Record<string, unknown> & { received: Record<string, unknown[]> };
}

async function inject(url: string, fault: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${url}/_sandbox/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  });
  assert.equal(res.status, 201, await res.text());
}

async function clearFaults(url: string): Promise<void> {
  await fetch(`${url}/_sandbox/faults`, { method: 'DELETE' });
}

function order(erp: CloudErp, ref: string, extra: Partial<ErpSalesOrder> = {}): ErpSalesOrder {
  const [a, b] = erp.catalogue.items;
  return {
    externalReference: ref,
    channelOrderNumber: '#1001',
    currency: 'EUR',
    orderDate: '2026-01-05T09:00:00Z',
    location: 'DC-EU-1',
    lines: [
      { sku: a!.itemId, quantity: 2, unitPriceMinor: 1234 },
      { sku: b!.itemId, quantity: 3, unitPriceMinor: 1000, discountMinor: 300 },
    ],
    ...extra,
  };
}

async function rejection(p: Promise<unknown>): Promise<ErpError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ErpError, `expected an ErpError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

const ctx = (attempt: number) => ({
  signal: new AbortController().signal,
  idempotencyKey: 'delivery-1',
  attempt,
});

void test('money converts from minor units exactly', () => {
  assert.equal(minorToDecimalString(1234, 'EUR'), '12.34');
  assert.equal(minorToDecimalString(5, 'EUR'), '0.05');
  assert.equal(minorToDecimalString(-5, 'EUR'), '-0.05');
  assert.equal(minorToDecimalString(500, 'JPY'), '500');
  assert.equal(minorToDecimalString(1234, 'KWD'), '1.234');
});

void test('books a sales order once, with decimals, SKUs resolved to item ids, and reads it back', async (t) => {
  const { erp, url, client } = await startErp();
  t.after(() => erp.close());
  const booking = await client.postSalesOrder(order(erp, 'order-1'));
  assert.equal(booking.duplicate, false);
  assert.match(booking.erpOrderId, /^\d+$/);
  assert.match(booking.erpOrderNumber ?? '', /^SO-/);
  assert.equal(booking.state, 'pendingFulfillment');

  const s = await state(url);
  assert.equal(s.salesOrders, 1);
  const posted = s.received.salesOrders![0] as {
    body: {
      lines: Array<{ item: { id: string }; rate: number; quantity: number }>;
      orderDate: string;
    };
  };
  assert.equal(posted.body.lines[0]!.item.id, erp.catalogue.items[0]!.id);
  assert.equal(posted.body.lines[0]!.rate, 12.34);
  // 3 × 10.00 − 3.00 discount = 27.00 → 9.00 a unit
  assert.equal(posted.body.lines[1]!.rate, 9);
  assert.equal(posted.body.orderDate, '2026-01-05');

  const found = await client.findSalesOrder('order-1');
  assert.deepEqual(found, { ...booking, duplicate: true });
  assert.equal(await client.findSalesOrder('no-such-order'), undefined);

  // Posting the same external reference again answers the same booking.
  const again = await client.postSalesOrder(order(erp, 'order-1'));
  assert.equal(again.erpOrderId, booking.erpOrderId);
  assert.equal(again.duplicate, true);
  assert.equal((await state(url)).salesOrders, 1);
});

void test('a truncated answer is transient, and the retry finds the booking instead of booking twice', async (t) => {
  const { erp, url, client } = await startErp();
  t.after(() => erp.close());
  const perform = postSalesOrderPerformer(client, { lookUpOnRetry: true });
  const action: SystemAction = {
    action: 'erp.post-sales-order',
    correlation: { process: 'order', id: 'order-7' },
    order: order(erp, 'order-7'),
  };
  await inject(url, { kind: 'malformed', rate: 1, route: '/api/v1/sales-orders', method: 'POST' });
  const err = await rejection(perform(action, ctx(1)));
  assert.equal(err.kind, 'transient');
  assert.equal(err.details.code, 'MALFORMED_RESPONSE');
  assert.equal((await state(url)).salesOrders, 1, 'the ERP did book it');
  await clearFaults(url);

  const result = (await perform(action, ctx(2))) as { erpOrderId: string; duplicate: boolean };
  assert.equal(result.duplicate, true);
  const s = await state(url);
  assert.equal(s.salesOrders, 1);
  const posts = s.received.salesOrders as Array<{ duplicate: boolean }>;
  assert.equal(posts.length, 1, 'the retry looked the booking up instead of posting again');
});

void test('errors are classified: business errors permanent with the ERP text, limits and outages transient', async (t) => {
  const { erp, url, client } = await startErp();
  t.after(() => erp.close());
  const absent = erp.catalogue.absentSkus[0]!;

  const unknownSku = await rejection(
    client.postSalesOrder(
      order(erp, 'bad-1', { lines: [{ sku: absent, quantity: 1, unitPriceMinor: 100 }] }),
    ),
  );
  assert.equal(unknownSku.kind, 'permanent');
  assert.equal(unknownSku.details.code, 'INVALID_KEY_OR_REF');
  assert.match(unknownSku.message, new RegExp(absent));

  const badItem = await rejection(
    client.postSalesOrder(
      order(erp, 'bad-2', {
        lines: [{ sku: 'X', erpItemId: '999999', quantity: 1, unitPriceMinor: 100 }],
      }),
    ),
  );
  assert.equal(badItem.kind, 'permanent');
  assert.equal(badItem.details.code, 'INVALID_KEY_OR_REF');
  assert.match(badItem.message, /Invalid item reference key 999999/);

  const badQuantity = await rejection(
    client.postCredit({
      externalReference: 'return-bad',
      currency: 'EUR',
      lines: [{ sku: erp.catalogue.items[0]!.itemId, quantity: 0, unitPriceMinor: 100 }],
    }),
  );
  assert.equal(badQuantity.kind, 'permanent');
  assert.equal(badQuantity.details.code, 'INVALID_FLD_VALUE');
  assert.match(badQuantity.message, /quantity/);

  const badCurrency = await rejection(
    client.postSalesOrder(order(erp, 'bad-3', { currency: 'euro' })),
  );
  assert.equal(badCurrency.kind, 'permanent');
  assert.equal(badCurrency.details.code, 'INVALID_FLD_VALUE');

  await inject(url, { kind: 'rateLimitStorm', rate: 1, retryAfterSeconds: 3, route: '/api/v1/' });
  const limited = await rejection(client.findSalesOrder('order-x'));
  assert.equal(limited.kind, 'transient');
  assert.equal(limited.details.status, 429);
  assert.equal(limited.details.retryAfterSeconds, 3);
  await clearFaults(url);

  await inject(url, { kind: 'errorRate', rate: 1, status: 503, route: '/api/v1/' });
  const unavailable = await rejection(client.findSalesOrder('order-x'));
  assert.equal(unavailable.kind, 'transient');
  assert.equal(unavailable.details.status, 503);
  await clearFaults(url);

  await inject(url, { kind: 'outage', durationMs: 60_000, route: '/api/v1/' });
  const outage = await rejection(client.findSalesOrder('order-x'));
  assert.equal(outage.kind, 'transient');
  assert.equal(outage.details.status, undefined);
  await clearFaults(url);

  assert.equal((await state(url)).salesOrders, 0, 'nothing was booked');

  const wrongSecret = new CloudErpClient({
    system: 'cloud-erp',
    baseUrl: url,
    clientId: 'middlemart',
    clientSecret: 'wrong',
  });
  const refused = await rejection(wrongSecret.findSalesOrder('x'));
  assert.equal(refused.kind, 'permanent');
  assert.equal(refused.details.code, 'invalid_client');
});

void test('the ERP concurrency limit answer is transient with its Retry-After', async (t) => {
  const { erp, client } = await startErp({ concurrencyLimit: 1, processingDelayMs: 200 });
  t.after(() => erp.close());
  await client.findItems([erp.catalogue.items[0]!.itemId]); // token first
  const results = await Promise.allSettled([
    client.findSalesOrder('a'),
    client.findSalesOrder('b'),
    client.findSalesOrder('c'),
  ]);
  const refused = results
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => r.reason as ErpError);
  assert.ok(refused.length >= 1, 'at least one call was over the limit');
  for (const err of refused) {
    assert.equal(err.kind, 'transient');
    assert.equal(err.details.code, 'CONCURRENCY_LIMIT_EXCEEDED');
    assert.equal(err.details.retryAfterSeconds, 1);
  }
});

void test('the access token is cached and renewed when the ERP says it expired', async (t) => {
  let erpNow = Date.now();
  const { erp, url, client } = await startErp({ tokenTtlSeconds: 600, now: () => erpNow });
  t.after(() => erp.close());
  await client.findSalesOrder('a');
  await client.findSalesOrder('b');
  assert.equal((await state(url)).tokensIssued, 1, 'one token for both calls');
  erpNow += 601_000; // the ERP's clock passes the token's expiry; ours does not know
  assert.equal(await client.findSalesOrder('c'), undefined);
  const s = await state(url);
  assert.equal(s.tokensIssued, 2, 'renewed once after the 401');
  assert.equal((s.counters as Record<string, number>).unauthorizedRequests, 1);
});

void test('item master: SKUs map to the ERP item ids; unknown SKUs are absent', async (t) => {
  const { erp, client } = await startErp();
  t.after(() => erp.close());
  const [a, b] = erp.catalogue.items;
  const absent = erp.catalogue.absentSkus[0]!;
  const few = await client.findItems([a!.itemId, b!.itemId, absent]);
  assert.deepEqual(
    few.map((i) => [i.sku, i.erpItemId]).sort(),
    [
      [a!.itemId, a!.id],
      [b!.itemId, b!.id],
    ].sort(),
  );
  // Many SKUs: read the whole item master instead of one query per SKU.
  const many = erp.catalogue.allSkus.slice(0, 60);
  const items = await client.findItems(many);
  const known = many.filter((s) => !erp.catalogue.absentSkus.includes(s));
  assert.equal(items.length, known.length);
  assert.ok(
    items.every(
      (i) =>
        many.includes(i.sku) &&
        i.active === !erp.catalogue.items.find((c) => c.itemId === i.sku)!.isInactive,
    ),
  );
});

void test('stock levels by location, in SKUs and Middlemart location ids', async (t) => {
  const { erp, client } = await startErp();
  t.after(() => erp.close());
  const levels = await client.stockLevels(['DC-EU-1']);
  const expected = erp.catalogue.stock.get('DC-EU-1')!;
  assert.equal(levels.length, expected.size);
  assert.ok(levels.every((l) => l.location === 'DC-EU-1'));
  const first = erp.catalogue.items.find((i) => expected.has(i.id))!;
  assert.equal(
    levels.find((l) => l.sku === first.itemId)?.onHand,
    expected.get(first.id)!.quantityOnHand,
  );
  const all = await client.stockLevels();
  assert.deepEqual(
    [...new Set(all.map((l) => l.location))].sort(),
    [...erp.catalogue.locations].sort(),
  );
  const unknown = await rejection(client.stockLevels(['NOWHERE']));
  assert.equal(unknown.kind, 'permanent');
  assert.equal(unknown.details.code, 'INVALID_KEY_OR_REF');
});

void test('credits reference the original sale by its external reference, once', async (t) => {
  const { erp, url, client } = await startErp();
  t.after(() => erp.close());
  const booking = await client.postSalesOrder(order(erp, 'order-9'));
  const perform = postCreditPerformer(client);
  const action: SystemAction = {
    action: 'erp.post-credit',
    correlation: { process: 'return', id: 'return-9' },
    credit: {
      externalReference: 'return-9',
      orderExternalReference: 'order-9',
      currency: 'EUR',
      lines: [{ sku: erp.catalogue.items[0]!.itemId, quantity: 1, unitPriceMinor: 1234 }],
      reason: 'damaged',
    },
  };
  const first = (await perform(action, ctx(1))) as { erpCreditId: string; duplicate: boolean };
  const second = (await perform(action, ctx(2))) as { erpCreditId: string; duplicate: boolean };
  assert.equal(first.duplicate, false);
  assert.equal(second.duplicate, true);
  assert.equal(second.erpCreditId, first.erpCreditId);
  const s = await state(url);
  assert.equal(s.creditMemos, 1);
  const memo = (
    s.received.creditMemos![0] as {
      body: { createdFrom: { id: string }; lines: Array<{ rate: number }> };
    }
  ).body;
  assert.equal(memo.createdFrom.id, booking.erpOrderId);
  assert.equal(memo.lines[0]!.rate, 12.34);

  const orphan = await rejection(
    client.postCredit({
      ...action.credit,
      externalReference: 'return-10',
      orderExternalReference: 'nope',
    }),
  );
  assert.equal(orphan.kind, 'permanent');
});

void test('customer.sync creates the account once under the golden id', async (t) => {
  const { erp, url, client } = await startErp();
  t.after(() => erp.close());
  const perform = cloudErpCustomerSyncPerformer(client, { currency: 'EUR' });
  const action: SystemAction = {
    action: 'customer.sync',
    correlation: { process: 'customer', id: 'cust-1' },
    customerId: 'cust-1',
    attributes: { firstName: 'Ada', lastName: 'Lovelace', email: 'ada@example.com', country: 'gb' },
  };
  const first = (await perform(action, ctx(1))) as { sourceId: string; created: boolean };
  assert.equal(first.created, true);
  const again = (await perform(action, ctx(1))) as { sourceId: string; created: boolean };
  assert.deepEqual(again, { sourceId: first.sourceId, created: false });
  const res = await fetch(`${url}/api/v1/customers?externalReference=cust-1`, {
    headers: { authorization: `Bearer ${await tokenOf(url)}` },
  });
  const body = (await res.json()) as { items: Array<{ companyName: string; country: string }> };
  assert.equal(body.items.length, 1);
  assert.equal(body.items[0]!.companyName, 'Ada Lovelace');
  assert.equal(body.items[0]!.country, 'GB');

  const incomplete = await rejection(
    perform({ ...action, customerId: 'cust-2', attributes: { firstName: 'No' } }, ctx(1)),
  );
  assert.equal(incomplete.kind, 'permanent');
  assert.match(incomplete.message, /email|country|currency/);
});

async function tokenOf(url: string): Promise<string> {
  const res = await fetch(`${url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=client_credentials&client_id=middlemart&client_secret=${SECRET}`,
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

void test('status changes since a watermark: new sales orders, then invoices of them', async (t) => {
  const { erp, client } = await startErp();
  t.after(() => erp.close());
  const customer = erp.catalogue.customers[0]!;
  await client.postSalesOrder(order(erp, 'order-a', { party: { erpCustomerId: customer.id } }));
  const first = await client.statusChangesSince(undefined);
  const kinds = first.changes.map((c) => [c.externalReference, c.kind]);
  assert.deepEqual(kinds, [
    ['order-a', 'other'],
    ['order-a', 'invoiced'],
  ]);
  const none = await client.statusChangesSince(first.watermark);
  assert.deepEqual(none.changes, []);
  assert.equal(none.watermark, first.watermark);
  await client.postSalesOrder(order(erp, 'order-b'));
  const next = await client.statusChangesSince(first.watermark);
  assert.deepEqual(
    next.changes.map((c) => c.externalReference),
    ['order-b'],
  );
  await assert.rejects(client.statusChangesSince('garbage'), ErpError);

  // A new process (empty reference table) reading invoices of orders it never saw.
  const fresh = new CloudErpClient({
    system: 'cloud-erp',
    baseUrl: erp.url!,
    clientId: 'middlemart',
    clientSecret: SECRET,
  });
  const later = await fresh.statusChangesSince('so:2;inv:0');
  assert.deepEqual(
    later.changes.map((c) => [c.externalReference, c.kind]),
    [['order-a', 'invoiced']],
  );
});

void test('the status poller accepts order.fulfilled for shipped orders and keeps its watermark in the store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-poller-'));
  const store = await openStore(`sqlite:${join(dir, 'poller.db')}`);
  t.after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await store.migrate(ERP_STATUS_MIGRATIONS.map((m) => ({ ...m })));
  const seen: Array<string | undefined> = [];
  const feed = [
    {
      externalReference: 'order-1',
      erpOrderId: '50001',
      kind: 'shipped' as const,
      state: 'pendingBilling',
      at: '2026-01-05T10:00:00Z',
    },
    {
      externalReference: 'order-2',
      erpOrderId: '50002',
      kind: 'invoiced' as const,
      state: 'invoice INV-1 open',
      at: '2026-01-05T10:01:00Z',
    },
  ];
  const port: ErpPort = {
    system: 'cloud-erp',
    postSalesOrder: () => Promise.reject(new Error('unused')),
    findSalesOrder: () => Promise.reject(new Error('unused')),
    postCredit: () => Promise.reject(new Error('unused')),
    findItems: () => Promise.resolve([]),
    stockLevels: () => Promise.resolve([]),
    statusChangesSince: (watermark) => {
      seen.push(watermark);
      const from = watermark === undefined ? 0 : Number(watermark);
      return Promise.resolve({ changes: feed.slice(from), watermark: String(feed.length) });
    },
  };
  const accepted: AcceptRequest[] = [];
  const keys = new Set<string>();
  const poller = new ErpStatusPoller({
    port,
    sql: store,
    accept: (req) => {
      accepted.push(req);
      const duplicate = keys.has(req.idempotencyKey);
      keys.add(req.idempotencyKey);
      return Promise.resolve({
        outcome: duplicate ? 'duplicate' : 'accepted',
        messageId: `m${accepted.length}`,
        acceptedAt: new Date().toISOString(),
      });
    },
    intervalMs: 60_000,
  });
  assert.deepEqual(await poller.pollOnce(), { changes: 2, accepted: 1 });
  assert.equal(accepted.length, 1);
  const req = accepted[0]!;
  assert.equal(req.type, 'com.middlemart.order.fulfilled.v1');
  assert.equal(req.partitionKey, 'order-1');
  assert.equal(req.priority, 'critical');
  const event = req.payload as { data: { orderId: string; fulfilledAt: string } };
  assert.equal(event.data.orderId, 'order-1');
  assert.equal(event.data.fulfilledAt, '2026-01-05T10:00:00.000Z');
  assert.deepEqual(await poller.pollOnce(), { changes: 0, accepted: 0 });
  assert.deepEqual(seen, [undefined, '2']);
  const rows = await store.query<{ watermark: string; changes_seen: number }>(
    'SELECT watermark, changes_seen FROM connector_erp_status_watermarks WHERE system = ?',
    ['cloud-erp'],
  );
  assert.equal(rows[0]?.watermark, '2');
  assert.equal(Number(rows[0]?.changes_seen), 2);
});

void test('the status poller asks the real ERP through the delivery gate and moves its watermark', async (t) => {
  const { erp, client } = await startErp();
  const dir = mkdtempSync(join(tmpdir(), 'mm-poller-gate-'));
  const store = await openStore(`sqlite:${join(dir, 'poller.db')}`);
  t.after(async () => {
    await store.close();
    await erp.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await store.migrate(ERP_STATUS_MIGRATIONS.map((m) => ({ ...m })));
  const gate = createDeliveryGate([
    {
      id: 'cloud-erp',
      timeoutMs: 5000,
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
      circuitBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 1000 },
      concurrency: { max: 2, adaptive: false },
      rate: { perSecond: 20, burst: 20 },
    },
  ]);
  const accepted: AcceptRequest[] = [];
  const poller = new ErpStatusPoller({
    port: client,
    sql: store,
    gate,
    accept: (req) => {
      accepted.push(req);
      return Promise.resolve({ outcome: 'accepted', messageId: 'm', acceptedAt: '' });
    },
    intervalMs: 60_000,
  });
  await client.postSalesOrder(order(erp, 'order-p1'));
  await client.postSalesOrder(order(erp, 'order-p2'));
  assert.deepEqual(await poller.pollOnce(), { changes: 2, accepted: 0 }); // pendingFulfillment: no event
  assert.deepEqual(await poller.pollOnce(), { changes: 0, accepted: 0 });
  const [row] = await store.query<{ watermark: string }>(
    'SELECT watermark FROM connector_erp_status_watermarks WHERE system = ?',
    ['cloud-erp'],
  );
  assert.match(row!.watermark, /^so:2;inv:\d+$/);
  // The ERP down: the poll fails, the watermark stays.
  await inject(erp.url!, { kind: 'errorRate', rate: 1, status: 503, route: '/api/v1/' });
  await assert.rejects(poller.pollOnce());
  const [after] = await store.query<{ watermark: string }>(
    'SELECT watermark FROM connector_erp_status_watermarks WHERE system = ?',
    ['cloud-erp'],
  );
  assert.equal(after!.watermark, row!.watermark);
  assert.equal(accepted.length, 0);
});
