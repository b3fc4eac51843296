// `erp.cancel-sales-order` in every ERP connector, against the real simulators (cloud REST and
// legacy SOAP) and a real Tryton 6.0 (TRYTON_URL; skipped with the reason when unset): a booked
// sale cancelled once (a repeat answers `duplicate` and changes nothing), amended down to the
// quantities that stay, and refused permanently when the goods have left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { CloudErpClient } from '../../src/connectors/cloud-erp/client.js';
import { cancelSalesOrderPerformer } from '../../src/connectors/cloud-erp/performers.js';
import { LegacyErpClient } from '../../src/connectors/legacy-erp/client.js';
import { TrytonErp } from '../../src/connectors/tryton/index.js';
import { ErpError, type ErpSalesOrder } from '../../src/ports/erp.js';
import { failureResponse } from '../../src/wiring/actions.js';
import { buildCatalogue, createCloudErp, skuOf } from '../../src/sandbox/cloud-erp/index.js';
import { createLegacyErp } from '../../src/sandbox/legacy-erp/index.js';

const catalogue = buildCatalogue({ seed: 1 });
const present = Array.from({ length: 30 }, (_, i) => skuOf(i + 1)).filter(
  (s) => !catalogue.absentSkus.includes(s),
);
const [SKU_A, SKU_B] = present as [string, string];

function sale(ref: string, location: string): ErpSalesOrder {
  return {
    externalReference: ref,
    currency: 'EUR',
    orderDate: '2026-11-28T09:00:00Z',
    location,
    lines: [
      { sku: SKU_A, quantity: 3, unitPriceMinor: 1000 },
      { sku: SKU_B, quantity: 1, unitPriceMinor: 500 },
    ],
  };
}

async function refusal(p: Promise<unknown>): Promise<ErpError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ErpError, `expected an ErpError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

void test('cloud ERP: cancel once, amend down, refuse a fulfilled sale', async () => {
  const erp = createCloudErp({ clientSecret: 's3cret' });
  const url = await erp.listen();
  try {
    const client = new CloudErpClient({
      system: 'cloud-erp',
      baseUrl: url,
      clientId: 'middlemart',
      clientSecret: 's3cret',
    });
    const booked = await client.postSalesOrder(sale('c-1', 'DC-EU-1'));
    const first = await client.cancelSalesOrder({ externalReference: 'c-1', reason: 'customer' });
    assert.deepEqual(first, {
      erpOrderId: booked.erpOrderId,
      state: 'cancelled',
      duplicate: false,
    });
    const again = await client.cancelSalesOrder({ externalReference: 'c-1' });
    assert.equal(again.duplicate, true);
    const kept = (await (await fetch(`${url}/_sandbox/sales-orders/c-1`)).json()) as {
      status: string;
    };
    assert.equal(kept.status, 'cancelled');
    const state = (await (await fetch(`${url}/_sandbox/state`)).json()) as {
      counters: Record<string, number>;
    };
    assert.equal(state.counters.salesOrderCancellations, 1);

    // Amendment: line A keeps 1, line B goes; the same amendment again changes nothing.
    await client.postSalesOrder(sale('c-2', 'DC-EU-1'));
    const cut = {
      externalReference: 'c-2',
      lines: [
        { sku: SKU_A, remainingQuantity: 1, cancelledQuantity: 2 },
        { sku: SKU_B, remainingQuantity: 0, cancelledQuantity: 1 },
      ],
    };
    assert.equal((await client.cancelSalesOrder(cut)).duplicate, false);
    assert.equal((await client.cancelSalesOrder(cut)).duplicate, true);
    const amended = (await (await fetch(`${url}/_sandbox/sales-orders/c-2`)).json()) as {
      lines: Array<{ quantity: number; isClosed?: boolean }>;
      total: number;
    };
    assert.deepEqual(
      amended.lines.map((l) => l.quantity),
      [1, 0],
    );
    assert.equal(amended.lines[1]!.isClosed, true);
    assert.equal(amended.total, 10);

    // Fulfilled: the ERP refuses, permanently (the refusal path: 422, dead letter, exception).
    await client.postSalesOrder(sale('c-3', 'DC-EU-1'));
    await fetch(`${url}/_sandbox/sales-orders/c-3/fulfil`, { method: 'POST' });
    const perform = cancelSalesOrderPerformer(client);
    const err = await refusal(
      perform(
        {
          action: 'erp.cancel-sales-order',
          correlation: { process: 'order', id: 'c-3' },
          cancel: { externalReference: 'c-3' },
        },
        {
          signal: new AbortController().signal,
          idempotencyKey: 'order/c-3/erp:cancel',
          attempt: 1,
        },
      ),
    );
    assert.equal(err.kind, 'permanent');
    assert.match(err.message, /fulfilled order cannot be cancelled/);
    assert.equal(failureResponse(err)?.status, 422);
    // An unknown sale is refused too.
    assert.equal(
      (await refusal(client.cancelSalesOrder({ externalReference: 'nope' }))).kind,
      'permanent',
    );
  } finally {
    await erp.close();
  }
});

void test('legacy ERP: CancelSalesOrder over SOAP, once; lines cut; a shipped order refused', async () => {
  const erp = createLegacyErp({ password: 'pw', seed: 1 });
  const url = await erp.listen();
  try {
    const client = new LegacyErpClient({
      system: 'legacy-erp',
      baseUrl: url,
      username: 'middlemart',
      password: 'pw',
    });
    const booked = await client.postSalesOrder(sale('l-1', 'DC-US-1'));
    const first = await client.cancelSalesOrder({ externalReference: 'l-1', reason: 'fraud' });
    assert.deepEqual(first, {
      erpOrderId: booked.erpOrderId,
      state: 'Cancelled',
      duplicate: false,
    });
    assert.equal((await client.cancelSalesOrder({ externalReference: 'l-1' })).duplicate, true);
    const order = (await (await fetch(`${url}/_sandbox/orders/l-1`)).json()) as { status: string };
    assert.equal(order.status, 'Cancelled');

    await client.postSalesOrder(sale('l-2', 'DC-US-1'));
    const cut = {
      externalReference: 'l-2',
      lines: [{ sku: SKU_A, remainingQuantity: 2, cancelledQuantity: 1 }],
    };
    assert.equal((await client.cancelSalesOrder(cut)).duplicate, false);
    assert.equal((await client.cancelSalesOrder(cut)).duplicate, true);
    const amended = (await (await fetch(`${url}/_sandbox/orders/l-2`)).json()) as {
      lines: Array<{ sku: string; quantity: number }>;
    };
    assert.equal(amended.lines.find((l) => l.sku === SKU_A)!.quantity, 2);

    await client.postSalesOrder(sale('l-3', 'DC-US-1'));
    await fetch(`${url}/_sandbox/orders/l-3/ship`, { method: 'POST' });
    const err = await refusal(client.cancelSalesOrder({ externalReference: 'l-3' }));
    assert.equal(err.kind, 'permanent');
    assert.equal(err.details.code, 'ORDER_SHIPPED');
  } finally {
    await erp.close();
  }
});

const TRYTON = process.env.TRYTON_URL;
const skip = TRYTON ? false : 'TRYTON_URL is not set (start ../shared/tryton/start-tryton.sh)';

function tryton(): TrytonErp {
  return new TrytonErp({
    system: 'tryton',
    url: TRYTON!,
    username: process.env.TRYTON_USER ?? 'admin',
    password: process.env.TRYTON_PASSWORD ?? 'admin',
    timeoutMs: 20_000,
  });
}

function trytonSale(ref: string): ErpSalesOrder {
  return {
    externalReference: ref,
    currency: 'USD',
    // Today: Tryton checks the forecast stock at the sale date (stock seeded today or before).
    orderDate: new Date().toISOString(),
    party: { customerId: `cust-${ref}`, name: 'Ada Lovelace', email: `${ref}@example.com` },
    shipTo: { name: 'Ada Lovelace', line1: '12 Analytical Row', city: 'London', postalCode: 'N1' },
    lines: [{ sku: 'SKU-1001', quantity: 2, unitPriceMinor: 1999 }],
  };
}

void test(
  'Tryton: a processing sale cancelled (shipment and invoice cancelled, sale closed) once; shipped refused',
  { skip },
  async () => {
    const e = tryton();
    const run = randomUUID().slice(0, 8);
    const ref = `cancel-${run}-1`;
    const booking = await e.postSalesOrder(trytonSale(ref));
    assert.equal(booking.state, 'processing');
    const first = await e.cancelSalesOrder({ externalReference: ref, reason: 'customer_request' });
    assert.equal(first.duplicate, false);
    assert.equal(first.erpOrderId, booking.erpOrderId);
    const [row] = await e.client.model<
      Array<{ state: string; shipments: number[]; invoices: number[] }>
    >('sale.sale', 'read', [[Number(booking.erpOrderId)], ['state', 'shipments', 'invoices']]);
    assert.equal(row!.state, 'done');
    const shipments = await e.client.model<Array<{ state: string }>>('stock.shipment.out', 'read', [
      row!.shipments,
      ['state'],
    ]);
    assert.ok(shipments.every((s) => s.state === 'cancelled'));
    const invoices = await e.client.model<Array<{ state: string }>>('account.invoice', 'read', [
      row!.invoices,
      ['state'],
    ]);
    assert.ok(invoices.every((i) => i.state === 'cancelled'));
    // Again: nothing to do; booked once.
    assert.equal((await e.cancelSalesOrder({ externalReference: ref })).duplicate, true);
    assert.equal(
      await e.client.model<number>('sale.sale', 'search_count', [[['reference', '=', ref]]]),
      1,
    );
    // The status poll reads the closed sale as a cancellation, not a shipment.
    const changes = await e.statusChangesSince(undefined);
    const mine = changes.changes.filter((c) => c.externalReference === ref);
    assert.ok(
      mine.every((c) => c.kind !== 'shipped'),
      JSON.stringify(mine),
    );

    // Amendments of a processed sale: refused permanently.
    const ref2 = `cancel-${run}-2`;
    await e.postSalesOrder(trytonSale(ref2));
    const amend = await refusal(
      e.cancelSalesOrder({
        externalReference: ref2,
        lines: [{ sku: 'SKU-1001', remainingQuantity: 1, cancelledQuantity: 1 }],
      }),
    );
    assert.equal(amend.kind, 'permanent');
    assert.equal(amend.details.code, 'amend-unsupported');

    // Shipped: the goods left; Tryton's sale cannot be cancelled.
    const ref3 = `cancel-${run}-3`;
    const shippedBooking = await e.postSalesOrder(trytonSale(ref3));
    const [shippedRow] = await e.client.model<Array<{ shipments: number[] }>>('sale.sale', 'read', [
      [Number(shippedBooking.erpOrderId)],
      ['shipments'],
    ]);
    await e.client.model('stock.shipment.out', 'assign_force', [shippedRow!.shipments]);
    for (const step of ['pick', 'pack', 'done']) {
      await e.client.model('stock.shipment.out', step, [shippedRow!.shipments]);
    }
    const shipped = await refusal(e.cancelSalesOrder({ externalReference: ref3 }));
    assert.equal(shipped.kind, 'permanent');
    assert.equal(shipped.details.code, 'sale-shipped');
    assert.equal(failureResponse(shipped)?.status, 422);
  },
);
