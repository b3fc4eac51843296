// The order process manager against capturing systems: a valid order is validated, reserved,
// posted once and fanned out once per system; the same messages again change nothing; an
// order without tax waits for the tax quote; an unknown SKU parks the order in the exception
// list; a backorder notifies and is allocated and posted when stock arrives.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SYSTEM_ACKNOWLEDGED_TYPE } from '../../../src/ports/system-actions.js';
import {
  backends,
  cloudEvent,
  eventually,
  newTraceparent,
  orderState,
  placeOrder,
  setStock,
  startOrderApp,
  waitForState,
  type OrderTestApp,
} from './support.js';

for (const backend of backends()) {
  describe(`order process (${backend})`, () => {
    let t: OrderTestApp;

    before(async () => {
      t = await startOrderApp({ backend });
      await setStock(
        t,
        [
          { sku: 'MM-00001', location: 'DC-EU-1', count: 100 },
          { sku: 'MM-00002', location: 'DC-EU-1', count: 100 },
          { sku: 'MM-00003', location: 'STORE-BER-01', count: 10 },
        ],
        1,
      );
    });

    after(async () => {
      await t?.close();
    });

    const settled = (id: string) =>
      eventually(async () => {
        const o = await orderState(t, id);
        return o && o.pending.length === 0 && o.state !== 'received' ? o : undefined;
      }, `order ${id} settled`);

    test('a web order is posted once and every system is told once; replays change nothing', async () => {
      const traceparent = newTraceparent();
      await placeOrder(
        t,
        {
          id: 'ord-web-1',
          commerceId: '5501',
          sourceRef: { system: 'loyalty', id: 'M-100' },
          email: 'ada@example.com',
          lines: [
            { sku: 'MM-00001', quantity: 2, price: 2500 },
            { sku: 'MM-00002', quantity: 1, price: 1000 },
          ],
        },
        traceparent,
      );
      const order = await settled('ord-web-1');
      assert.equal(order.state, 'posted');
      assert.equal(order.erp.system, 'cloud-erp');
      assert.match(order.erp.orderId, /^SO-/);
      assert.deepEqual(order.pending, []);
      assert.deepEqual(order.inSync, ['cloud-erp', 'commerce', 'crm', 'loyalty', 'wms']);
      assert.equal(order.traceId, traceparent.split('-')[1]);
      assert.deepEqual(
        order.transitions.map((x: { to: string }) => x.to),
        ['received', 'validated', 'reserved', 'posted'],
      );
      assert.equal(t.estate.effects('cloud-erp', 'erp.post-sales-order').length, 1);
      const erpCall = t.estate.callsTo('cloud-erp', 'erp.post-sales-order')[0]!.action;
      assert.equal(
        erpCall.action === 'erp.post-sales-order' && erpCall.order.externalReference,
        'ord-web-1',
      );
      assert.equal(
        erpCall.action === 'erp.post-sales-order' && erpCall.order.lines[0]!.erpItemId,
        'item-MM-00001',
      );
      assert.equal(t.estate.effects('crm').length, 1);
      assert.equal(t.estate.effects('wms').length, 1);
      assert.equal(t.estate.effects('commerce').length, 1);
      assert.equal(t.estate.effects('tax').length, 0, 'the channel sent taxes: no quote');
      const accrual = t.estate.callsTo('loyalty', 'loyalty.accrue')[0]!.action;
      assert.equal(accrual.action === 'loyalty.accrue' && accrual.points, 60);
      assert.equal(accrual.action === 'loyalty.accrue' && accrual.memberId, 'M-100');

      // The same order again (another event id), and an acknowledgement delivered twice.
      const before = t.estate.calls.length;
      const again = await t.call(
        'POST',
        '/v1/events',
        cloudEvent('order.created', 'evt-ord-web-1-again', (await orderBody('ord-web-1')) ?? {}),
      );
      assert.equal(again.status, 202);
      const erpAck = t.estate.callsTo('cloud-erp', 'erp.post-sales-order')[0]!;
      await t.app.engine.accept({
        source: 'middlemart',
        idempotencyKey: 'ack-replayed-by-hand',
        requestHash: 'x',
        type: SYSTEM_ACKNOWLEDGED_TYPE,
        partitionKey: 'ord-web-1',
        priority: 'critical',
        payload: {
          action: 'erp.post-sales-order',
          correlation: { process: 'order', id: 'ord-web-1' },
          destination: 'cloud-erp',
          deliveryId: 'd-1',
          idempotencyKey: erpAck.idempotencyKey,
          at: new Date().toISOString(),
          result: { erpOrderId: 'SO-OTHER', state: 'confirmed', duplicate: true },
        },
      });
      // Both messages are processed in order behind a marker on the same partition.
      await placeMarker('ord-web-1');
      const after = await orderState(t, 'ord-web-1');
      assert.equal(after.erp.orderId, order.erp.orderId);
      assert.equal(after.transitions.length, order.transitions.length);
      assert.equal(t.estate.calls.length, before, 'no system was called again');

      // Shipment confirmed twice: fulfilled, commerce and CRM told once, then closed.
      const shipment = {
        id: 'shp-1',
        orderId: 'ord-web-1',
        fromLocation: 'DC-EU-1',
        carrier: 'dhl',
        trackingNumber: 'JD0001',
        lines: [
          { orderLineId: '1', sku: 'MM-00001', quantity: 2 },
          { orderLineId: '2', sku: 'MM-00002', quantity: 1 },
        ],
        shippedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      };
      for (const id of ['shp-evt-1', 'shp-evt-2']) {
        const r = await t.call(
          'POST',
          '/v1/events',
          cloudEvent('shipment.confirmed', id, shipment),
        );
        assert.equal(r.status, 202);
      }
      const closed = await waitForState(t, 'ord-web-1', 'closed');
      assert.deepEqual(closed.transitions.map((x: { to: string }) => x.to).slice(-2), [
        'fulfilled',
        'closed',
      ]);
      assert.equal(t.estate.effects('commerce').length, 2);
      assert.equal(t.estate.effects('crm').length, 2);
    });

    async function orderBody(id: string) {
      const rows = await t.app.store.query<{ order_json: string }>(
        'SELECT order_json FROM order_processes WHERE order_id = ?',
        [id],
      );
      return rows[0] ? (JSON.parse(rows[0].order_json) as unknown) : undefined;
    }

    /** Waits until every message of a partition accepted so far is processed. */
    async function placeMarker(partitionKey: string) {
      await eventually(async () => {
        const rows = await t.app.store.query<{ n: number }>(
          `SELECT COUNT(*) AS n FROM messages WHERE partition_key = ? AND status <> 'done'`,
          [partitionKey],
        );
        return Number(rows[0]?.n) === 0 ? true : undefined;
      }, `partition ${partitionKey} drained`);
    }

    test('a click-and-collect order holds stock at the store and sends it a pickup task', async () => {
      await placeOrder(t, {
        id: 'ord-pickup-1',
        method: 'pickup',
        location: 'STORE-BER-01',
        lines: [{ sku: 'MM-00003', quantity: 2, price: 900 }],
      });
      const order = await settled('ord-pickup-1');
      assert.equal(order.state, 'posted');
      assert.equal(order.fulfilment.location, 'STORE-BER-01');
      const tasks = t.estate
        .callsTo('pos', 'store.pickup-task')
        .filter(
          (c) => c.action.action === 'store.pickup-task' && c.action.orderId === 'ord-pickup-1',
        );
      assert.equal(tasks.length, 1);
      assert.ok(tasks[0]!.action.action === 'store.pickup-task');
      assert.equal(tasks[0]!.action.store, 'STORE-BER-01');
      assert.equal(
        t.estate
          .callsTo('wms')
          .filter(
            (c) =>
              c.action.action === 'wms.fulfilment-request' && c.action.order.id === 'ord-pickup-1',
          ).length,
        0,
        'nothing for the warehouse',
      );
    });

    test('an order without taxes waits for the tax quote before it is posted', async () => {
      await placeOrder(t, {
        id: 'ord-mobile-1',
        channel: 'mobile',
        taxed: false,
        lines: [{ sku: 'MM-00002', quantity: 1, price: 1000 }],
      });
      const order = await settled('ord-mobile-1');
      assert.equal(order.state, 'posted');
      assert.equal(t.estate.effects('tax', 'tax.quote').length, 1);
      const steps = order.sync.map((s: { step: string }) => s.step);
      assert.ok(steps.indexOf('tax') < steps.indexOf('erp'), 'quoted before posting');
    });

    test('an unknown SKU parks the order in the exception list, counted, never posted', async () => {
      t.estate.unknownSkus.add('MM-00999');
      await placeOrder(t, {
        id: 'ord-bad-sku',
        lines: [
          { sku: 'MM-00001', quantity: 1, price: 2500 },
          { sku: 'MM-00999', quantity: 1, price: 500 },
        ],
      });
      const order = await waitForState(t, 'ord-bad-sku', 'parked');
      const exception = order.exceptions.find(
        (e: { kind: string }) => e.kind === 'invalid_sku_mapping',
      );
      assert.ok(exception, 'exception recorded');
      assert.match(exception.reason, /MM-00999 is unknown in cloud-erp/);
      // The same read model in the /v2 shape (the versioning policy's example).
      const v2 = await t.call('GET', '/v2/orders/ord-bad-sku');
      assert.equal(v2.status, 200);
      assert.equal(v2.json.status.state, 'parked');
      assert.deepEqual(
        v2.json.openExceptions.map((e: { kind: string }) => e.kind),
        order.exceptions
          .filter((e: { status: string }) => e.status === 'open')
          .map((e: { kind: string }) => e.kind),
      );
      assert.equal(v2.json.links.v1, '/v1/orders/ord-bad-sku');
      assert.equal((await t.call('GET', '/v2/orders/nope')).status, 404);
      const list = await t.call('GET', '/v1/orders/exceptions?kind=invalid_sku_mapping');
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.json.items.map((e: { orderId: string }) => e.orderId),
        ['ord-bad-sku'],
      );
      const metrics = await t.call('GET', '/metrics');
      assert.match(
        metrics.text,
        /middlemart_order_exceptions_total\{kind="invalid_sku_mapping"\} 1/,
      );
      assert.match(metrics.text, /middlemart_orders_by_state\{state="parked"\} 1/);
      const posted = /middlemart_order_posting_seconds_count (\d+)/.exec(metrics.text);
      assert.ok(posted && Number(posted[1]) >= 2, 'posting times observed');
      assert.match(
        metrics.text,
        /middlemart_order_fanout_lag_seconds_count\{system="crm",action="crm.timeline-entry"\} [1-9]/,
      );
      assert.equal(
        t.estate
          .callsTo('cloud-erp', 'erp.post-sales-order')
          .filter(
            (c) =>
              c.action.action === 'erp.post-sales-order' &&
              c.action.order.externalReference === 'ord-bad-sku',
          ).length,
        0,
      );
      const bad = await t.call('GET', '/v1/orders/exceptions?cursor=nonsense');
      assert.equal(bad.status, 400);
      const missing = await t.call('GET', '/v1/orders/no-such-order');
      assert.equal(missing.status, 404);
      assert.match(missing.contentType, /application\/problem\+json/);
    });

    test('a backorder tells commerce and the customer, and is posted when stock arrives', async () => {
      await setStock(t, [{ sku: 'MM-00004', location: 'DC-EU-1', count: 0 }], 1);
      await placeOrder(t, {
        id: 'ord-backorder',
        commerceId: '5502',
        email: 'grace@example.com',
        lines: [{ sku: 'MM-00004', quantity: 3, price: 1500 }],
      });
      const held = await waitForState(t, 'ord-backorder', 'backordered');
      assert.ok(held.fulfilment.expectedDate, 'expected date set');
      await eventually(
        async () => (held && t.estate.effects('notifications').length >= 1 ? true : undefined),
        'customer notified',
      );
      const status = t.estate
        .callsTo('commerce', 'commerce.order-status')
        .find(
          (c) => c.action.action === 'commerce.order-status' && c.action.channelOrderId === '5502',
        );
      assert.ok(status && status.action.action === 'commerce.order-status');
      assert.equal(status.action.status, 'backordered');
      assert.equal(status.action.expectedDate, held.fulfilment.expectedDate);
      const notice = t.estate.callsTo('notifications')[0]!.action;
      assert.equal(notice.action === 'notify.customer' && notice.template, 'order-backordered');
      const erpBefore = t.estate.callsTo('cloud-erp', 'erp.post-sales-order').length;

      await setStock(t, [{ sku: 'MM-00004', location: 'DC-EU-1', count: 10 }], 2);
      const posted = await waitForState(t, 'ord-backorder', 'posted');
      assert.ok(posted.erp.orderId);
      assert.equal(t.estate.callsTo('cloud-erp', 'erp.post-sales-order').length, erpBefore + 1);
      const backorder = posted.exceptions.find((e: { kind: string }) => e.kind === 'backorder');
      assert.equal(backorder.status, 'resolved');
      assert.equal(t.estate.effects('notifications').length, 1, 'notified once');
    });
  });
}
