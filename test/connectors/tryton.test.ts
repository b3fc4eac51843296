// The Tryton connector against a real Tryton 6.0 (../shared/tryton/start-tryton.sh), reached at
// TRYTON_URL (e.g. http://127.0.0.1:8000/tryton/). Skipped, with the reason printed, when unset.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { TrytonErp, decimalText, type TrytonTransport } from '../../src/connectors/tryton/index.js';
import { ErpError, type ErpSalesOrder } from '../../src/ports/erp.js';
import { failureResponse } from '../../src/wiring/actions.js';
import { routingModule, trytonPerformers } from '../../src/wiring/routing.js';
import { ErpStatusPoller } from '../../src/connectors/cloud-erp/status-poller.js';
import type { AcceptRequest } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/index.js';

const URL_ = process.env.TRYTON_URL;
const SCRIPT =
  process.env.TRYTON_SCRIPT ??
  fileURLToPath(new URL('../../../shared/tryton/start-tryton.sh', import.meta.url));
const skip = URL_ ? false : 'TRYTON_URL is not set (start ../shared/tryton/start-tryton.sh)';
if (skip) console.log(`# tryton tests skipped: ${skip}`);

const run = promisify(execFile);
async function tryton(command: 'start' | 'stop' | 'status'): Promise<void> {
  await run(SCRIPT, [command], { timeout: 180_000 });
}

function erp(extra: Partial<ConstructorParameters<typeof TrytonErp>[0]> = {}): TrytonErp {
  return new TrytonErp({
    system: 'tryton',
    url: URL_!,
    username: process.env.TRYTON_USER ?? 'admin',
    password: process.env.TRYTON_PASSWORD ?? 'admin',
    timeoutMs: 20_000,
    ...extra,
  });
}

const runId = randomUUID().slice(0, 8);
let seq = 0;
function ref(prefix = 'ord'): string {
  seq += 1;
  return `${prefix}-${runId}-${seq}`;
}

function order(externalReference: string, over: Partial<ErpSalesOrder> = {}): ErpSalesOrder {
  return {
    externalReference,
    channelOrderNumber: `WEB-${externalReference}`,
    currency: 'USD',
    // Today: Tryton checks the forecast stock at the sale date, and the seeded stock is dated
    // the day the ERP was seeded.
    orderDate: new Date().toISOString(),
    party: {
      customerId: `cust-${externalReference}`,
      name: 'Ada Lovelace',
      email: `${externalReference}@example.com`,
    },
    shipTo: { name: 'Ada Lovelace', line1: '12 Analytical Row', city: 'London', postalCode: 'N1' },
    lines: [
      { sku: 'SKU-1001', quantity: 2, unitPriceMinor: 1999 },
      { sku: 'SKU-1002', quantity: 1, unitPriceMinor: 4990, discountMinor: 490 },
    ],
    ...over,
  };
}

async function salesWithReference(e: TrytonErp, reference: string): Promise<number> {
  return e.client.model<number>('sale.sale', 'search_count', [[['reference', '=', reference]]]);
}

/** A transport that fails like a killed process right after Tryton answered `method`. */
function killedAfter(method: string): { transport: TrytonTransport; killed: () => boolean } {
  let killed = false;
  const transport: TrytonTransport = async (url, init) => {
    if (killed) throw new Error('connector process is gone');
    const res = await fetch(url, {
      method: 'POST',
      headers: init.headers,
      body: init.body,
      ...(init.signal ? { signal: init.signal } : {}),
    });
    const body = await res.text();
    if ((JSON.parse(init.body) as { method: string }).method === method) {
      killed = true;
      throw new Error(`killed after ${method}`);
    }
    return { status: res.status, body };
  };
  return { transport, killed: () => killed };
}

void test(
  'an order becomes a confirmed sale with the right party, lines, quantities and prices',
  { skip },
  async () => {
    const e = erp();
    const reference = ref();
    const booking = await e.postSalesOrder(order(reference));
    assert.equal(booking.duplicate, false);
    assert.ok(['confirmed', 'processing'].includes(booking.state), booking.state);

    const [sale] = await e.client.model<
      Array<{
        state: string;
        reference: string;
        party: number;
        lines: number[];
        description: string;
      }>
    >('sale.sale', 'read', [
      [Number(booking.erpOrderId)],
      ['state', 'reference', 'party', 'lines', 'description'],
    ]);
    assert.equal(sale!.reference, reference);
    assert.equal(sale!.state, booking.state);
    assert.equal(sale!.description, `WEB-${reference}`);
    const [party] = await e.client.model<Array<{ code: string; name: string }>>(
      'party.party',
      'read',
      [[sale!.party], ['code', 'name']],
    );
    assert.deepEqual(party, { id: sale!.party, code: `cust-${reference}`, name: 'Ada Lovelace' });

    const lines = await e.client.model<
      Array<{ quantity: number; unit_price: unknown; 'product.': { code: string } }>
    >('sale.line', 'read', [sale!.lines, ['quantity', 'unit_price', 'product.code']]);
    const got = lines
      .map((l) => ({
        sku: l['product.'].code,
        quantity: l.quantity,
        price: Number(decimalText(l.unit_price)),
      }))
      .sort((a, b) => a.sku.localeCompare(b.sku));
    assert.deepEqual(got, [
      { sku: 'SKU-1001', quantity: 2, price: 19.99 },
      // 49.90 less a 4.90 line discount on one unit.
      { sku: 'SKU-1002', quantity: 1, price: 45 },
    ]);

    // The same customer is found again (by our customer id), not created twice.
    const second = await e.postSalesOrder(
      order(ref(), { party: { customerId: `cust-${reference}` } }),
    );
    const [again] = await e.client.model<Array<{ party: number }>>('sale.sale', 'read', [
      [Number(second.erpOrderId)],
      ['party'],
    ]);
    assert.equal(again!.party, sale!.party);
    assert.deepEqual(await e.findSalesOrder(reference), { ...booking, duplicate: true });
    assert.equal(await e.findSalesOrder(ref('absent')), undefined);
  },
);

void test(
  'the same order twice, and a crash between create and acknowledge, book one sale',
  { skip },
  async () => {
    const e = erp();
    const reference = ref();
    const first = await e.postSalesOrder(order(reference));
    const repeat = await e.postSalesOrder(order(reference));
    assert.equal(repeat.duplicate, true);
    assert.equal(repeat.erpOrderId, first.erpOrderId);
    assert.equal(await salesWithReference(e, reference), 1);

    for (const method of [
      'model.sale.sale.create',
      'model.sale.sale.quote',
      'model.sale.sale.confirm',
    ]) {
      const crashed = ref('crash');
      const cut = killedAfter(method);
      const dying = erp({ transport: cut.transport });
      await assert.rejects(dying.postSalesOrder(order(crashed)), (err: unknown) => {
        assert.ok(err instanceof ErpError);
        assert.equal(err.kind, 'transient');
        return true;
      });
      assert.equal(cut.killed(), true);
      // A new process retries the delivery: it finds the sale and finishes it.
      const retried = await erp().postSalesOrder(order(crashed));
      assert.equal(retried.duplicate, true, method);
      assert.ok(['confirmed', 'processing'].includes(retried.state), `${method}: ${retried.state}`);
      assert.equal(await salesWithReference(e, crashed), 1, method);
    }
  },
);

void test(
  'an unknown product is a permanent error carrying the reason, and no sale',
  { skip },
  async () => {
    const e = erp();
    const reference = ref();
    const byId = order(reference, {
      lines: [{ sku: 'SKU-9999', erpItemId: '9999', quantity: 1, unitPriceMinor: 100 }],
    });
    let failure: unknown;
    await assert.rejects(e.postSalesOrder(byId), (err: unknown) => {
      failure = err;
      assert.ok(err instanceof ErpError);
      assert.equal(err.kind, 'permanent');
      assert.equal(err.details.code, 'UserError');
      assert.match(err.message, /"Product" in "Sale Line" is not valid according to its domain/);
      return true;
    });
    // Through the action performer the delivery is answered 422 (dead letter) with that message.
    const answer = failureResponse(failure);
    assert.equal(answer?.status, 422);
    assert.match(
      String((answer?.body as { detail: string }).detail),
      /not valid according to its domain/,
    );
    const performers = trytonPerformers(e);
    await assert.rejects(
      performers.postSalesOrder(
        {
          action: 'erp.post-sales-order',
          correlation: { process: 'order', id: reference },
          order: byId,
        },
        { signal: new AbortController().signal, idempotencyKey: `k-${reference}`, attempt: 1 },
      ),
      (err: unknown) => err instanceof ErpError && err.kind === 'permanent',
    );

    await assert.rejects(
      e.postSalesOrder(
        order(reference, { lines: [{ sku: 'SKU-NOPE', quantity: 1, unitPriceMinor: 100 }] }),
      ),
      (err: unknown) =>
        err instanceof ErpError && err.kind === 'permanent' && /SKU-NOPE/.test(err.message),
    );
    assert.equal(await salesWithReference(e, reference), 0);
  },
);

void test(
  'a UserWarning fails under policy fail, and is confirmed under policy accept',
  { skip },
  async () => {
    const reference = ref();
    // More than the forecast stock of SKU-1003: Tryton warns at quote.
    const big = order(reference, {
      lines: [{ sku: 'SKU-1003', quantity: 100_000, unitPriceMinor: 6400 }],
    });
    await assert.rejects(erp().postSalesOrder(big), (err: unknown) => {
      assert.ok(err instanceof ErpError);
      assert.equal(err.kind, 'warning');
      assert.match(err.message, /forcast quantity|forecast quantity/);
      assert.equal(failureResponse(err)?.status, 422);
      return true;
    });
    const accepted = await erp({ warningPolicy: 'accept' }).postSalesOrder(big);
    assert.equal(accepted.duplicate, true);
    assert.ok(['confirmed', 'processing'].includes(accepted.state), accepted.state);
    assert.equal(await salesWithReference(erp(), reference), 1);
  },
);

void test('an expired session is renewed by logging in again', { skip }, async () => {
  const e = erp();
  assert.equal((await e.findItems(['SKU-1001'])).length, 1);
  await e.client.logout();
  // The old session is gone on the server; the next call gets a 401, logs in, and repeats.
  assert.deepEqual(await e.findItems(['SKU-1001', 'SKU-1002', 'SKU-NONE']), [
    { sku: 'SKU-1001', erpItemId: '1', active: true },
    { sku: 'SKU-1002', erpItemId: '2', active: true },
  ]);
});

void test(
  'shipped in Tryton flows back as a status change, and stock levels follow',
  { skip },
  async (t) => {
    const e = erp();
    const before = await e.stockLevels(['WH']);
    const onHand = (levels: typeof before, sku: string) =>
      levels.find((l) => l.sku === sku && l.location === 'WH')?.onHand;
    assert.equal(typeof onHand(before, 'SKU-1001'), 'number');
    const mapped = await erp({ locationMap: { 'DC-US-1': 'WH' } }).stockLevels(['DC-US-1']);
    assert.equal(
      onHand(
        mapped.map((l) => ({ ...l, location: 'WH' })),
        'SKU-1001',
      ),
      onHand(before, 'SKU-1001'),
    );
    await assert.rejects(
      e.stockLevels(['NO-SUCH-LOC']),
      (err: unknown) => err instanceof ErpError && err.kind === 'permanent',
    );

    const { watermark } = await e.statusChangesSince(undefined);
    const reference = ref();
    const booking = await e.postSalesOrder(
      order(reference, { lines: [{ sku: 'SKU-1001', quantity: 3, unitPriceMinor: 1999 }] }),
    );
    const [sale] = await e.client.model<Array<{ shipments: number[] }>>('sale.sale', 'read', [
      [Number(booking.erpOrderId)],
      ['shipments'],
    ]);
    const shipments = sale!.shipments;
    assert.equal(shipments.length, 1);
    const pending = await e.statusChangesSince(watermark);
    assert.equal(
      pending.changes.some((c) => c.externalReference === reference),
      false,
    );

    await e.client.model('stock.shipment.out', 'assign_force', [shipments]);
    for (const step of ['pick', 'pack', 'done']) {
      await e.client.model('stock.shipment.out', step, [shipments]);
    }
    const back = await e.statusChangesSince(watermark);
    const shipped = back.changes.find((c) => c.externalReference === reference);
    assert.ok(shipped, JSON.stringify(back.changes));
    assert.equal(shipped.kind, 'shipped');
    assert.equal(shipped.erpOrderId, booking.erpOrderId);
    assert.deepEqual(shipped.lines, [{ sku: 'SKU-1001', quantity: 3 }]);
    assert.ok(back.watermark && (!watermark || back.watermark > watermark));
    // Nothing new after the returned watermark.
    const later = await e.statusChangesSince(back.watermark);
    assert.equal(
      later.changes.some((c) => c.externalReference === reference),
      false,
    );

    const after = await e.stockLevels(['WH']);
    assert.equal(onHand(after, 'SKU-1001'), onHand(before, 'SKU-1001')! - 3);

    // The module's status poller turns it into order.fulfilled, once, and moves its watermark.
    const store = await openStore('sqlite::memory:');
    t.after(() => store.close());
    await store.migrate(routingModule.migrations!(store.dialect));
    const accepted: AcceptRequest[] = [];
    const poller = new ErpStatusPoller({
      port: e,
      sql: store,
      intervalMs: 60_000,
      accept: async (req) => {
        accepted.push(req);
        return { outcome: 'accepted', messageId: String(accepted.length), acceptedAt: '' };
      },
    });
    await poller.pollOnce();
    const ours = accepted.filter((r) => r.partitionKey === reference);
    assert.equal(ours.length, 1);
    assert.equal(ours[0]!.type, 'com.middlemart.order.fulfilled.v1');
    assert.equal(ours[0]!.idempotencyKey, `erp-status:tryton:${booking.erpOrderId}:shipped`);
    assert.equal((ours[0]!.payload as { data: { orderId: string } }).data.orderId, reference);
    accepted.length = 0;
    await poller.pollOnce();
    assert.equal(accepted.filter((r) => r.partitionKey === reference).length, 0);
  },
);

void test('a credit is booked once as a return sale', { skip }, async () => {
  const e = erp();
  const reference = ref();
  await e.postSalesOrder(order(reference));
  const credit = {
    externalReference: ref('ret'),
    orderExternalReference: reference,
    currency: 'USD',
    lines: [{ sku: 'SKU-1001', quantity: 1, unitPriceMinor: 1999 }],
    reason: 'damaged',
  };
  const first = await e.postCredit(credit);
  assert.equal(first.duplicate, false);
  assert.ok(['confirmed', 'processing'].includes(first.state), first.state);
  const again = await e.postCredit(credit);
  assert.deepEqual(again, { ...first, duplicate: true });
  const [line] = await e.client.model<Array<{ quantity: number }>>('sale.line', 'search_read', [
    [['sale', '=', Number(first.erpCreditId)]],
    0,
    null,
    null,
    ['quantity'],
  ]);
  assert.equal(line!.quantity, -1);
});

void test(
  'Tryton stopped mid-run: transient errors, then success after it restarts',
  { skip: skip || (existsSync(SCRIPT) ? false : `no ${SCRIPT}`) },
  async (t) => {
    t.after(() => tryton('start'));
    const e = erp({ timeoutMs: 5_000 });
    const reference = ref();
    assert.equal((await e.findItems(['SKU-1001'])).length, 1);
    await tryton('stop');
    for (let i = 0; i < 2; i++) {
      await assert.rejects(e.postSalesOrder(order(reference)), (err: unknown) => {
        assert.ok(err instanceof ErpError, String(err));
        assert.equal(err.kind, 'transient');
        assert.equal(failureResponse(err)?.status, 503);
        return true;
      });
    }
    await tryton('start');
    const booking = await e.postSalesOrder(order(reference));
    assert.equal(booking.duplicate, false);
    assert.equal(await salesWithReference(e, reference), 1);
  },
);

void test('stock levels read from Tryton feed inventory reconciliation', { skip }, async (t) => {
  const { inventoryMigrations, reconcileInventory } =
    await import('../../src/domains/inventory/index.js');
  const store = await openStore('sqlite::memory:');
  t.after(() => store.close());
  await store.migrate(inventoryMigrations('sqlite'));
  const e = erp({ locationMap: { 'DC-US-1': 'WH' } });
  const snapshot = async () => ({ asOf: Date.now(), levels: await e.stockLevels(['DC-US-1']) });
  const levels = (await snapshot()).levels.filter((l) => l.onHand > 0);
  assert.ok(levels.length > 0, 'Tryton has stock at its warehouse');

  // The ledger knows nothing yet: every sku@location Tryton stocks is a drift, and --fix
  // brings the ledger to Tryton's figures.
  const first = await reconcileInventory({ store, erp: 'tryton', snapshot, fix: true });
  assert.ok(first.summary.ledgerDrifts >= levels.length, JSON.stringify(first.summary));
  for (const l of levels) {
    assert.ok(
      first.ledger.some((d) => d.sku === l.sku && d.location === 'DC-US-1'),
      `drift reported for ${l.sku}`,
    );
  }
  const again = await reconcileInventory({ store, erp: 'tryton', snapshot });
  assert.equal(again.summary.ledgerDrifts, 0, JSON.stringify(again.ledger.slice(0, 3)));
});
