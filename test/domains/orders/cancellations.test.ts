// Cancellations and amendments racing the ERP posting, against capturing systems on SQLite and
// PostgreSQL: an order cancelled while its posting waits for a down ERP is cancelled in the ERP
// as soon as the booking arrives (never fanned out); lines cut while the posting waits are sent
// as one amendment after the booking; an ERP refusal of a cancellation opens
// `erp_cancel_refused`; the same messages again change nothing.
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers of the API, read in assertions */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ActionError, type SystemAction } from '../../../src/ports/system-actions.js';
import type { FeatureModule } from '../../../src/wiring/index.js';
import {
  backends,
  canonicalOrder,
  cloudEvent,
  eventually,
  orderState,
  placeOrder,
  setStock,
  startOrderApp,
  type OrderTestApp,
} from './support.js';

/** The cloud ERP's cancellations: recorded; references in `refuse` are refused for good. */
class Cancellations {
  readonly calls: Array<{ key: string; action: SystemAction }> = [];
  readonly refuse = new Set<string>();
  module(): FeatureModule {
    return {
      name: 'erp-cancellations',
      start: (ctx) => {
        ctx.registerAction('cloud-erp', 'erp.cancel-sales-order', async (action, c) => {
          if (action.action !== 'erp.cancel-sales-order') throw new Error('unexpected');
          if (this.refuse.has(action.cancel.externalReference)) {
            throw new ActionError('cloud-erp: the sale was fulfilled', 'permanent', {
              code: 'USER_ERROR',
            });
          }
          this.calls.push({ key: c.idempotencyKey, action });
          return { erpOrderId: 'x', state: 'cancelled', duplicate: false };
        });
        return {};
      },
    };
  }
}

for (const backend of backends()) {
  describe(`order cancellations and amendments (${backend})`, () => {
    let t: OrderTestApp;
    const cancellations = new Cancellations();

    before(async () => {
      t = await startOrderApp({ backend, extraModules: [cancellations.module()] });
      await setStock(
        t,
        [
          { sku: 'MM-00001', location: 'DC-EU-1', count: 100 },
          { sku: 'MM-00002', location: 'DC-EU-1', count: 100 },
        ],
        1,
      );
    });

    after(async () => {
      await t?.close();
    });

    const send = async (type: string, id: string, data: unknown) => {
      const r = await t.call('POST', '/v1/events', cloudEvent(type, id, data));
      assert.equal(r.status, 202, r.text);
    };

    test('cancelled while the posting waits: cancelled in the ERP once booked, never fanned out', async () => {
      t.estate.down.add('cloud-erp');
      await placeOrder(t, {
        id: 'race-cancel',
        lines: [{ sku: 'MM-00001', quantity: 1, price: 1000 }],
      });
      await eventually(async () => {
        const o = await orderState(t, 'race-cancel');
        return o?.state === 'reserved' ? o : undefined;
      }, 'reserved, posting pending');
      const cancel = {
        orderId: 'race-cancel',
        reason: 'customer_request',
        cancelledAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      };
      await send('order.cancelled', 'evt-race-cancel-1', cancel);
      await eventually(async () => {
        const o = await orderState(t, 'race-cancel');
        return o?.state === 'cancelled' ? o : undefined;
      }, 'cancelled');
      t.estate.down.delete('cloud-erp');
      const done = await eventually(async () => {
        const o = await orderState(t, 'race-cancel');
        return o?.sync.some((s: any) => s.step === 'erp:cancel' && s.status === 'done')
          ? o
          : undefined;
      }, 'cancelled in the ERP');
      assert.equal(done.state, 'cancelled');
      assert.ok(done.erp.orderId, 'the booking was recorded');
      assert.deepEqual(
        done.sync.map((s: any) => s.step).sort(),
        ['erp', 'erp:cancel'],
        'no fan-out for a cancelled order',
      );
      assert.equal(
        cancellations.calls.filter((c) => c.key === 'order/race-cancel/erp:cancel').length,
        1,
      );
      assert.equal(t.estate.effects('wms').length, 0);
      // The same cancellation again: nothing.
      await send('order.cancelled', 'evt-race-cancel-2', cancel);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(
        cancellations.calls.filter((c) => c.key === 'order/race-cancel/erp:cancel').length,
        1,
      );
    });

    test('lines cut while the posting waits: one amendment after the booking', async () => {
      t.estate.down.add('cloud-erp');
      const order = canonicalOrder({
        id: 'race-lines',
        lines: [
          { sku: 'MM-00001', quantity: 3, price: 1000 },
          { sku: 'MM-00002', quantity: 2, price: 500 },
        ],
      });
      await send('order.created', 'evt-race-lines', order);
      await eventually(async () => {
        const o = await orderState(t, 'race-lines');
        return o?.state === 'reserved' ? o : undefined;
      }, 'reserved, posting pending');
      // Line 2 cancelled by id, then line 1 cut to 2 by an update.
      await send('order.cancelled', 'evt-race-lines-c', {
        orderId: 'race-lines',
        reason: 'out_of_stock',
        lineIds: ['2'],
        cancelledAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      });
      const line1 = { ...order.lines[0]!, quantity: 2 };
      line1.taxes = [
        {
          amount: { amount: Math.round((2000 * 19) / 119), currency: 'EUR' },
          rateBasisPoints: 1900,
        },
      ];
      const updated = {
        ...order,
        lines: [line1],
        totals: {
          ...order.totals,
          subtotal: { amount: 2000, currency: 'EUR' },
          taxTotal: { amount: line1.taxes[0]!.amount.amount, currency: 'EUR' },
          grandTotal: { amount: 2000, currency: 'EUR' },
        },
      };
      await send('order.updated', 'evt-race-lines-u', updated);
      await eventually(async () => {
        const rows = await t.app.store.query<{ n: number }>(
          'SELECT COUNT(*) AS n FROM order_amendments WHERE order_id = ?',
          ['race-lines'],
        );
        return Number(rows[0]?.n) === 2 ? true : undefined;
      }, 'two amendments recorded');
      t.estate.down.delete('cloud-erp');
      const o = await eventually(async () => {
        const v = await orderState(t, 'race-lines');
        return v?.state === 'posted' && v.pending.length === 0 ? v : undefined;
      }, 'posted and in sync');
      const amends = o.sync.filter((s: any) => s.step.startsWith('erp:amend'));
      assert.deepEqual(
        amends.map((s: any) => s.step),
        ['erp:amend:2'],
      );
      const sent = cancellations.calls.find((c) => c.key === 'order/race-lines/erp:amend:2');
      assert.ok(sent);
      const cancel =
        sent.action.action === 'erp.cancel-sales-order' ? sent.action.cancel : undefined;
      assert.deepEqual(
        cancel?.lines?.map((l) => [l.sku, l.remainingQuantity, l.cancelledQuantity]).sort(),
        [
          ['MM-00001', 2, 1],
          ['MM-00002', 0, 2],
        ],
      );
      // The WMS is asked for what is left.
      const wms = t.estate.callsTo('wms', 'wms.fulfilment-request')[0]?.action;
      assert.ok(wms && wms.action === 'wms.fulfilment-request');
      assert.deepEqual(
        wms.order.lines.map((l) => [l.sku, l.quantity]),
        [['MM-00001', 2]],
      );
      // The same update again: nothing new.
      await send('order.updated', 'evt-race-lines-u2', updated);
      await new Promise((r) => setTimeout(r, 300));
      const rows = await t.app.store.query<{ n: number }>(
        'SELECT COUNT(*) AS n FROM order_amendments WHERE order_id = ?',
        ['race-lines'],
      );
      assert.equal(Number(rows[0]?.n), 2);
    });

    test('a refused cancellation opens erp_cancel_refused, counted once', async () => {
      await placeOrder(t, {
        id: 'refused-cancel',
        lines: [{ sku: 'MM-00002', quantity: 1, price: 500 }],
      });
      await eventually(async () => {
        const o = await orderState(t, 'refused-cancel');
        return o?.state === 'posted' && o.pending.length === 0 ? o : undefined;
      }, 'posted');
      cancellations.refuse.add('refused-cancel');
      await send('order.cancelled', 'evt-refused-cancel-1', {
        orderId: 'refused-cancel',
        reason: 'customer_request',
        cancelledAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      });
      // The read model's queries are not one snapshot: wait until it shows both.
      const o = await eventually(async () => {
        const v = await orderState(t, 'refused-cancel');
        return v?.exceptions.some((e: any) => e.kind === 'erp_cancel_refused') &&
          v.refused.length > 0
          ? v
          : undefined;
      }, 'erp_cancel_refused');
      assert.equal(o.state, 'cancelled');
      assert.deepEqual(o.refused, ['cloud-erp']);
      assert.equal(o.sync.find((s: any) => s.step === 'erp:cancel').status, 'refused');
      const dead = await t.app.store.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM dead_letters WHERE idempotency_key = ?`,
        ['order/refused-cancel/erp:cancel'],
      );
      assert.equal(Number(dead[0]?.n), 1, 'dead-lettered for a replay');
    });
  });
}
