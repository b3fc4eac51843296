// Returns against capturing systems: an online order returned in a store is reconciled by its
// commerce order number and completes with the ERP credit, the restock at the store, the loyalty
// reversal and the CRM entry; the same request again changes nothing; returning more than was
// bought, or past the window, is refused with the reason; damaged goods are written off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backends,
  cloudEvent,
  eventually,
  placeOrder,
  setStock,
  startOrderApp,
  waitForState,
  type OrderTestApp,
} from '../orders/support.js';

for (const backend of backends()) {
  describe(`returns (${backend})`, () => {
    let t: OrderTestApp;
    const DAY = 86_400_000;
    const utc = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

    before(async () => {
      t = await startOrderApp({ backend });
      await setStock(t, [{ sku: 'MM-00001', location: 'DC-EU-1', count: 100 }], 1);
    });

    after(async () => {
      await t?.close();
    });

    function returnRequest(
      id: string,
      orderRef: string,
      lines: Array<{
        line: string;
        sku: string;
        quantity: number;
        condition?: string;
        reason?: string;
      }>,
      requestedAt = utc(Date.now()),
    ) {
      return {
        id,
        orderId: orderRef,
        status: 'requested',
        lines: lines.map((l) => ({
          orderLineId: l.line,
          sku: l.sku,
          quantity: l.quantity,
          reason: l.reason ?? 'size_or_fit',
          ...(l.condition ? { condition: l.condition } : {}),
        })),
        refundMethod: 'cash',
        currency: 'EUR',
        returnLocation: { kind: 'store', location: 'STORE-BER-01' },
        requestedAt,
      };
    }

    const sent = new Map<string, unknown>();

    /** Sends the return request; the same event id resends the identical event. */
    async function requestReturn(
      body: ReturnType<typeof returnRequest>,
      eventId = `evt-${body.id}`,
    ) {
      const event = sent.get(eventId) ?? cloudEvent('return.requested', eventId, body);
      sent.set(eventId, event);
      const res = await t.call('POST', '/v1/events', event);
      assert.equal(res.status, 202, res.text);
    }

    async function returnState(id: string, state: string) {
      return eventually(async () => {
        const r = await t.call('GET', `/v1/returns/${id}`);
        return r.status === 200 && r.json.state === state ? r.json : undefined;
      }, `return ${id} ${state}`);
    }

    async function restockMessages(returnId: string) {
      return t.app.store.query<{ payload: string }>(
        `SELECT payload FROM messages WHERE type = 'com.middlemart.inventory.adjusted.v1' AND idempotency_key LIKE ?`,
        [`return/${returnId}/%`],
      );
    }

    test('the store return of an online order completes with credit, restock, reversal and CRM entry', async () => {
      await placeOrder(t, {
        id: 'ord-ret-1',
        commerceId: '7701',
        sourceRef: { system: 'loyalty', id: 'M-200' },
        email: 'ada@example.com',
        lines: [{ sku: 'MM-00001', quantity: 2, price: 2500 }],
      });
      const order = await waitForState(t, 'ord-ret-1', 'posted');
      await eventually(
        async () => (t.estate.effects('loyalty', 'loyalty.accrue').length ? true : undefined),
        'accrued',
      );

      const body = returnRequest('ret-1', '7701', [
        { line: '1', sku: 'MM-00001', quantity: 1, condition: 'new' },
      ]);
      await requestReturn(body);
      await returnState('ret-1', 'completed');
      const done = await eventually(async () => {
        const r = await t.call('GET', '/v1/returns/ret-1');
        return r.json.sync.every((x: { status: string }) => x.status === 'done')
          ? r.json
          : undefined;
      }, 'return ret-1 in sync everywhere');
      assert.equal(done.orderId, 'ord-ret-1', 'reconciled by the commerce order number');
      assert.equal(done.refundTotalMinor, 2500);
      assert.equal(done.erp.system, 'cloud-erp');
      assert.equal(done.erp.creditId, 'CM-ret-1');
      assert.equal(done.loyaltyPointsReversed, 25);

      const credits = t.estate.callsTo('cloud-erp', 'erp.post-credit');
      assert.equal(credits.length, 1);
      const credit = credits[0]!.action;
      assert.ok(credit.action === 'erp.post-credit');
      assert.equal(credit.credit.externalReference, 'ret-1');
      assert.equal(credit.credit.erpOrderId, order.erp.orderId);
      assert.equal(credit.credit.orderExternalReference, 'ord-ret-1');
      assert.deepEqual(
        credit.credit.lines.map((l) => [l.sku, l.quantity, l.unitPriceMinor]),
        [['MM-00001', 1, 2500]],
      );
      const reversal = t.estate.callsTo('loyalty', 'loyalty.reverse');
      assert.equal(reversal.length, 1);
      assert.ok(reversal[0]!.action.action === 'loyalty.reverse');
      assert.equal(reversal[0]!.action.memberId, 'M-200');
      assert.equal(reversal[0]!.action.points, 25);
      const crm = t.estate
        .callsTo('crm', 'crm.timeline-entry')
        .filter((c) => c.action.action === 'crm.timeline-entry' && c.action.kind === 'return');
      assert.equal(crm.length, 1);
      const restock = await restockMessages('ret-1');
      assert.equal(restock.length, 1);
      const adjustment = (
        t.app.engine.readPayload(restock[0]!.payload) as { data: Record<string, unknown> }
      ).data;
      assert.equal(adjustment.location, 'STORE-BER-01');
      assert.equal(adjustment.delta, 1);
      assert.equal(adjustment.reason, 'return');
      const completed = await t.app.store.query(
        `SELECT id FROM messages WHERE type = 'com.middlemart.return.completed.v1' AND idempotency_key = ?`,
        ['return/ret-1/completed'],
      );
      assert.equal(completed.length, 1);

      // The identical request again (a new event id, and the same one): nothing changes.
      const calls = t.estate.calls.length;
      await requestReturn(body, 'evt-ret-1-again');
      await requestReturn(body);
      await eventually(async () => {
        const rows = await t.app.store.query<{ n: number }>(
          `SELECT COUNT(*) AS n FROM messages WHERE type = 'com.middlemart.return.requested.v1' AND status <> 'done'`,
        );
        return Number(rows[0]?.n) === 0 ? true : undefined;
      }, 'return requests processed');
      const again = await t.call('GET', '/v1/returns/ret-1');
      assert.deepEqual(again.json, done);
      assert.equal(t.estate.calls.length, calls);
      assert.equal((await restockMessages('ret-1')).length, 1);

      // More than is left to return: refused with the reason.
      await requestReturn(
        returnRequest('ret-2', 'ord-ret-1', [{ line: '1', sku: 'MM-00001', quantity: 2 }]),
      );
      const refused = await returnState('ret-2', 'rejected');
      assert.match(refused.reason, /2 returned now, 1 returned before, 2 bought/);
      assert.equal(t.estate.callsTo('cloud-erp', 'erp.post-credit').length, 1);
    });

    test('a return past the window is refused with the reason; damaged goods are written off', async () => {
      await placeOrder(t, {
        id: 'ord-ret-old',
        placedAt: utc(Date.now() - 40 * DAY),
        lines: [{ sku: 'MM-00001', quantity: 1, price: 2500 }],
      });
      await waitForState(t, 'ord-ret-old', 'posted');
      await requestReturn(
        returnRequest('ret-late', 'ord-ret-old', [{ line: '1', sku: 'MM-00001', quantity: 1 }]),
      );
      const late = await returnState('ret-late', 'rejected');
      assert.match(late.reason, /the return window is 30 days/);
      assert.match(late.reason, /requested 40 days after/);

      await placeOrder(t, {
        id: 'ord-ret-dmg',
        lines: [{ sku: 'MM-00001', quantity: 1, price: 2500 }],
      });
      await waitForState(t, 'ord-ret-dmg', 'posted');
      await requestReturn(
        returnRequest('ret-dmg', 'ord-ret-dmg', [
          { line: '1', sku: 'MM-00001', quantity: 1, condition: 'damaged', reason: 'damaged' },
        ]),
      );
      const damaged = await returnState('ret-dmg', 'completed');
      assert.deepEqual(damaged.writtenOff, [{ sku: 'MM-00001', quantity: 1 }]);
      assert.deepEqual(damaged.restocked, []);
      assert.equal((await restockMessages('ret-dmg')).length, 0);

      await requestReturn(
        returnRequest('ret-nowhere', 'no-such-order', [
          { line: '1', sku: 'MM-00001', quantity: 1 },
        ]),
      );
      const unknown = await returnState('ret-nowhere', 'rejected');
      assert.match(unknown.reason, /original order no-such-order not found/);
    });
  });
}
