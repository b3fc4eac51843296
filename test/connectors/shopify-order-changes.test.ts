// Shopify order changes after the order was taken: `orders/updated` of a cancelled order becomes
// `order.cancelled`; line items whose `current_quantity` went down (an order edit, a refund with
// restock) become an `order.updated` with the smaller lines, checked against
// `current_total_price`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { interpretShopifyWebhook } from '../../src/connectors/shopify/webhooks.js';

const SHOP = { systemId: 'commerce', region: 'eu', returnLocation: 'DC-EU-1' };

function order(over: Record<string, unknown> = {}, lines?: Array<Record<string, unknown>>) {
  return {
    id: 5550001,
    name: '#1001',
    email: 'ada@example.com',
    currency: 'EUR',
    created_at: '2026-11-28T09:00:00Z',
    processed_at: '2026-11-28T09:00:00Z',
    updated_at: '2026-11-28T10:00:00Z',
    source_name: 'web',
    taxes_included: true,
    customer: { id: 7770001, email: 'ada@example.com' },
    shipping_address: {
      name: 'Ada Lovelace',
      address1: 'Hauptstrasse 1',
      city: 'Berlin',
      zip: '10115',
      country_code: 'DE',
    },
    line_items: lines ?? [
      { id: 1, sku: 'MM-00001', title: 'Shirt', quantity: 3, current_quantity: 3, price: '10.00' },
      { id: 2, sku: 'MM-00002', title: 'Socks', quantity: 1, current_quantity: 1, price: '5.00' },
    ],
    shipping_lines: [],
    total_price: '35.00',
    cancelled_at: null,
    ...over,
  };
}

void test('orders/updated of a cancelled order is its cancellation', () => {
  const got = interpretShopifyWebhook(
    'orders/updated',
    JSON.stringify(order({ cancelled_at: '2026-11-28T11:00:00+01:00', cancel_reason: 'customer' })),
    SHOP,
  );
  assert.equal(got.outcome, 'event', JSON.stringify(got));
  if (got.outcome !== 'event') return;
  assert.equal(got.event, 'order.cancelled');
  assert.deepEqual(got.data, {
    orderId: 'commerce-5550001',
    reason: 'customer_request',
    cancelledAt: '2026-11-28T10:00:00.000Z',
  });
});

void test('an order as taken keeps every line at its quantity', () => {
  const got = interpretShopifyWebhook('orders/updated', JSON.stringify(order()), SHOP);
  assert.equal(got.outcome, 'event', JSON.stringify(got));
  if (got.outcome !== 'event') return;
  assert.equal(got.event, 'order.updated');
  const data = got.data as { lines: Array<{ lineId: string; quantity: number }> };
  assert.deepEqual(
    data.lines.map((l) => [l.lineId, l.quantity]),
    [
      ['1', 3],
      ['2', 1],
    ],
  );
});

void test('current_quantity below quantity: the line is cut, a line at 0 is gone, checked against current_total_price', () => {
  const lines = [
    { id: 1, sku: 'MM-00001', title: 'Shirt', quantity: 3, current_quantity: 1, price: '10.00' },
    { id: 2, sku: 'MM-00002', title: 'Socks', quantity: 1, current_quantity: 0, price: '5.00' },
  ];
  const got = interpretShopifyWebhook(
    'orders/updated',
    JSON.stringify(order({ current_total_price: '10.00' }, lines)),
    SHOP,
  );
  assert.equal(got.outcome, 'event', JSON.stringify(got));
  if (got.outcome !== 'event') return;
  const data = got.data as {
    lines: Array<{ lineId: string; quantity: number }>;
    totals: { grandTotal: { amount: number } };
  };
  assert.deepEqual(
    data.lines.map((l) => [l.lineId, l.quantity]),
    [['1', 1]],
  );
  assert.equal(data.totals.grandTotal.amount, 1000);

  // A current total that does not add up is refused with the field named.
  const wrong = interpretShopifyWebhook(
    'orders/updated',
    JSON.stringify(order({ current_total_price: '35.00' }, lines)),
    SHOP,
  );
  assert.equal(wrong.outcome, 'rejected');
  if (wrong.outcome === 'rejected') {
    assert.ok(
      wrong.issues.some((i) => i.path === 'current_total_price'),
      JSON.stringify(wrong),
    );
  }
  // current_quantity above quantity is refused.
  const bad = interpretShopifyWebhook(
    'orders/updated',
    JSON.stringify(
      order({}, [{ id: 1, sku: 'MM-00001', quantity: 1, current_quantity: 2, price: '10.00' }]),
    ),
    SHOP,
  );
  assert.equal(bad.outcome, 'rejected');
  if (bad.outcome === 'rejected') {
    assert.ok(bad.issues.some((i) => i.path === 'line_items[0].current_quantity'));
  }
});
