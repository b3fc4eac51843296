// The legacy ERP connector against the real legacy ERP simulator: SOAP 1.1 with HTTP Basic and a
// WS-Security UsernameToken, booking with decimals, deduplication after a truncated answer,
// SOAP faults classified, items (over SOAP and from the nightly flat-file export) and stock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postSalesOrderPerformer } from '../../src/connectors/cloud-erp/performers.js';
import { LegacyErpClient, parseCsvRows } from '../../src/connectors/legacy-erp/client.js';
import { ErpError, type ErpSalesOrder } from '../../src/ports/erp.js';
import type { SystemAction } from '../../src/ports/system-actions.js';
import { createLegacyErp, type LegacyErp } from '../../src/sandbox/legacy-erp/index.js';
import { buildCatalogue } from '../../src/sandbox/cloud-erp/catalogue.js';

const PASSWORD = 'legacy-connector-password';
const catalogue = buildCatalogue({ seed: 1 });

async function startErp(
  dropDir?: string,
): Promise<{ erp: LegacyErp; url: string; client: LegacyErpClient }> {
  const erp = createLegacyErp({
    password: PASSWORD,
    seed: 1,
    ...(dropDir ? { dropDir, inboundPollIntervalMs: 0 } : {}),
  });
  const url = await erp.listen();
  const client = new LegacyErpClient({
    system: 'legacy-erp',
    baseUrl: url,
    username: 'middlemart',
    password: PASSWORD,
    ...(dropDir ? { dropDir } : {}),
  });
  return { erp, url, client };
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

async function rejection(p: Promise<unknown>): Promise<ErpError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ErpError, `expected an ErpError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

const [itemA, itemB] = catalogue.items;

function order(ref: string, extra: Partial<ErpSalesOrder> = {}): ErpSalesOrder {
  return {
    externalReference: ref,
    currency: 'USD',
    orderDate: '2026-01-05T18:30:00Z',
    location: 'DC-US-1',
    party: { erpCustomerId: 'C-100' },
    lines: [
      { sku: itemA!.itemId, quantity: 2, unitPriceMinor: 1234 },
      { sku: itemB!.itemId, quantity: 4, unitPriceMinor: 999, discountMinor: 100 },
    ],
    ...extra,
  };
}

const ctx = (attempt: number) => ({
  signal: new AbortController().signal,
  idempotencyKey: 'delivery-1',
  attempt,
});

void test('books a sales order over SOAP with decimal prices, once per external reference', async (t) => {
  const { erp, client } = await startErp();
  t.after(() => erp.close());
  const booking = await client.postSalesOrder(order('order-1'));
  assert.deepEqual(booking, {
    erpOrderId: 'LSO-000001',
    erpOrderNumber: 'LSO-000001',
    state: 'booked',
    duplicate: false,
  });
  const [booked] = erp.orders();
  assert.equal(booked!.externalReference, 'order-1');
  assert.equal(booked!.orderDate, '2026-01-05');
  assert.equal(booked!.warehouse, 'DC-US-1');
  assert.equal(booked!.customerNumber, 'C-100');
  assert.deepEqual(
    booked!.lines.map((l) => [l.sku, l.quantity, l.unitPrice]),
    [
      [itemA!.itemId, 2, 12.34],
      [itemB!.itemId, 4, 9.74], // (4 × 9.99 − 1.00) / 4
    ],
  );
  const again = await client.postSalesOrder(order('order-1'));
  assert.equal(again.duplicate, true);
  assert.equal(again.erpOrderId, booking.erpOrderId);
  assert.equal(erp.orders().length, 1);
});

void test('a truncated answer is transient; the retry is answered AlreadyExists, booked once', async (t) => {
  const { erp, url, client } = await startErp();
  t.after(() => erp.close());
  const perform = postSalesOrderPerformer(client, { lookUpOnRetry: false });
  const action: SystemAction = {
    action: 'erp.post-sales-order',
    correlation: { process: 'order', id: 'order-2' },
    order: order('order-2'),
  };
  await inject(url, { kind: 'malformed', rate: 1, route: '/soap' });
  const err = await rejection(perform(action, ctx(1)));
  assert.equal(err.kind, 'transient');
  assert.equal(err.details.code, 'MALFORMED_RESPONSE');
  assert.equal(erp.orders().length, 1, 'the ERP did book it');
  await clearFaults(url);
  const result = (await perform(action, ctx(2))) as { erpOrderId: string; duplicate: boolean };
  assert.equal(result.duplicate, true);
  assert.equal(result.erpOrderId, 'LSO-000001');
  assert.equal(erp.orders().length, 1);
});

void test('SOAP faults and failures are classified', async (t) => {
  const { erp, url, client } = await startErp();
  t.after(() => erp.close());
  const absent = catalogue.absentSkus[0]!;
  const unknownSku = await rejection(
    client.postSalesOrder(
      order('bad-1', { lines: [{ sku: absent, quantity: 1, unitPriceMinor: 100 }] }),
    ),
  );
  assert.equal(unknownSku.kind, 'permanent');
  assert.equal(unknownSku.details.code, 'UNKNOWN_SKU');
  assert.match(unknownSku.message, new RegExp(`Lines/Line\\[1\\]/Sku: Unknown SKU "${absent}"`));

  const unknownWarehouse = await rejection(
    client.postSalesOrder(order('bad-2', { location: 'DC-EU-1' })),
  );
  assert.equal(unknownWarehouse.kind, 'permanent');
  assert.equal(unknownWarehouse.details.code, 'UNKNOWN_WAREHOUSE');

  const wrongPassword = new LegacyErpClient({
    system: 'legacy-erp',
    baseUrl: url,
    username: 'middlemart',
    password: 'wrong',
  });
  const refused = await rejection(wrongPassword.stockLevels(['DC-US-1']));
  assert.equal(refused.kind, 'permanent');
  assert.equal(refused.details.status, 401);

  await inject(url, { kind: 'errorRate', rate: 1, status: 500, route: '/soap' });
  const serverError = await rejection(client.postSalesOrder(order('order-3')));
  assert.equal(serverError.kind, 'transient');
  assert.equal(serverError.details.status, 500);
  await clearFaults(url);

  await inject(url, { kind: 'rateLimitStorm', rate: 1, retryAfterSeconds: 2, route: '/soap' });
  const limited = await rejection(client.postSalesOrder(order('order-3')));
  assert.equal(limited.kind, 'transient');
  assert.equal(limited.details.retryAfterSeconds, 2);
  await clearFaults(url);

  await inject(url, { kind: 'outage', durationMs: 60_000, route: '/soap' });
  const outage = await rejection(client.postSalesOrder(order('order-3')));
  assert.equal(outage.kind, 'transient');
  await clearFaults(url);

  assert.equal(erp.orders().length, 0, 'nothing was booked');

  const lookup = await rejection(client.findSalesOrder('order-1'));
  assert.equal(lookup.kind, 'permanent');
  assert.equal(lookup.details.code, 'UNSUPPORTED');
  const credit = await rejection(
    client.postCredit({ externalReference: 'r-1', currency: 'USD', lines: [] }),
  );
  assert.equal(credit.details.code, 'UNSUPPORTED');
});

void test('items over SOAP: known SKUs are found, absent ones are not', async (t) => {
  const { erp, client } = await startErp();
  t.after(() => erp.close());
  const absent = catalogue.absentSkus[0]!;
  const items = await client.findItems([itemA!.itemId, absent, itemB!.itemId]);
  assert.deepEqual(
    items.map((i) => [i.sku, i.erpItemId]).sort(),
    [
      [itemA!.itemId, itemA!.itemId],
      [itemB!.itemId, itemB!.itemId],
    ].sort(),
  );
});

void test('items from the nightly flat-file export carry their status', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-legacy-'));
  const { erp, client } = await startErp(dir);
  t.after(async () => {
    await erp.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await erp.exportNightly();
  const inactive = catalogue.items.find((i) => i.isInactive);
  const wanted = [itemA!.itemId, catalogue.absentSkus[0]!, ...(inactive ? [inactive.itemId] : [])];
  const items = await client.findItems(wanted);
  assert.equal(items.length, wanted.length - 1);
  assert.equal(items.find((i) => i.sku === itemA!.itemId)?.active, !itemA!.isInactive);
  if (inactive) assert.equal(items.find((i) => i.sku === inactive.itemId)?.active, false);
  assert.deepEqual(parseCsvRows('a,"b ""c"", d"\r\n1,2\r\n'), [
    ['a', 'b "c", d'],
    ['1', '2'],
  ]);
});

void test('stock levels by warehouse', async (t) => {
  const { erp, client } = await startErp();
  t.after(() => erp.close());
  const levels = await client.stockLevels(['DC-US-1']);
  assert.equal(levels.length, catalogue.items.length);
  assert.ok(levels.every((l) => l.location === 'DC-US-1'));
  const expected = catalogue.stock.get('DC-US-1')!.get(itemA!.id)?.quantityOnHand ?? 0;
  assert.equal(levels.find((l) => l.sku === itemA!.itemId)?.onHand, expected);
  const all = await client.stockLevels();
  assert.deepEqual([...new Set(all.map((l) => l.location))].sort(), ['DC-US-1', 'STORE-NYC-01']);
  const none = await client.statusChangesSince('w');
  assert.deepEqual(none, { changes: [], watermark: 'w' });
});
