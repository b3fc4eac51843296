// ERP coexistence through the order process: the business unit of each order (by its store, its
// channel system or its sales channel) chooses the ERP by the routing rules, and the order's read
// model names the rule; orders of two business units land in their own ERP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { businessUnitOf } from '../../../src/domains/orders/process.js';
import { eventually, orderState, placeOrder, setStock, startOrderApp } from './support.js';

void test('the business unit comes from the store, then the system, then the channel', () => {
  const units = {
    byStore: { 'STORE-BER-01': 'fashion' },
    bySystem: { commerce: 'home' },
    byChannel: { marketplace: 'outlet' },
    default: 'group',
  };
  assert.equal(
    businessUnitOf(units, { store: 'STORE-BER-01', system: 'commerce', channel: 'web' }),
    'fashion',
  );
  assert.equal(businessUnitOf(units, { system: 'commerce', channel: 'web' }), 'home');
  assert.equal(businessUnitOf(units, { channel: 'marketplace' }), 'outlet');
  assert.equal(businessUnitOf(units, { channel: 'web' }), 'group');
  assert.equal(businessUnitOf(undefined, { channel: 'web' }), undefined);
});

void test('orders of two business units are posted to their own ERP, as the routing rules say', async (t) => {
  const api = await startOrderApp({
    orders: `  businessUnits:
    byStore: { STORE-BER-01: fashion }
    byChannel: { web: home }`,
    estate: `routing:
  - name: fashion-on-legacy
    when: { process: order, businessUnit: fashion }
    to: legacy-erp
  - name: everything-else
    when: {}
    to: cloud-erp`,
  });
  t.after(() => api.close());
  await setStock(
    api,
    [
      { sku: 'MM-00001', location: 'DC-EU-1', count: 10 },
      { sku: 'MM-00001', location: 'STORE-BER-01', count: 10 },
    ],
    1,
  );
  await placeOrder(api, { id: 'bu-web-1', channel: 'web' });
  await placeOrder(api, {
    id: 'bu-store-1',
    channel: 'store',
    method: 'store_sale',
    location: 'STORE-BER-01',
  });
  const booked = (id: string) =>
    eventually(async () => {
      const o = await orderState(api, id);
      return o?.erp?.orderId ? o : undefined;
    }, `order ${id} booked in an ERP`);
  const web = await booked('bu-web-1');
  const store = await booked('bu-store-1');
  assert.equal(web.erp.system, 'cloud-erp');
  assert.equal(web.erp.rule, 'everything-else');
  assert.equal(store.erp.system, 'legacy-erp');
  assert.equal(store.erp.rule, 'fashion-on-legacy');
  const posted = (system: string) =>
    api.estate
      .callsTo(system, 'erp.post-sales-order')
      .map((c) =>
        c.action.action === 'erp.post-sales-order' ? c.action.order.externalReference : '',
      );
  assert.deepEqual(posted('legacy-erp'), ['bu-store-1']);
  assert.deepEqual(posted('cloud-erp'), ['bu-web-1']);
});
