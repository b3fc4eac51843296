// Customer 360 against the sandbox's real HTTP systems (CRM, loyalty, cloud ERP, commerce): all
// four sources answer for one golden customer; with one source failing or slow the answer is
// partial with a per-source status, never an error; `fields=` shapes the answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createCloudErp,
  createCommerce,
  createCrm,
  createLoyalty,
} from '../../../src/sandbox/index.js';
import { activeCustomers, deadMessages, startCustomersApp, type Json } from './support.js';

const env = {
  T360_CRM_KEY: 'crm-key-360',
  T360_LOYALTY_KEY: 'loyalty-key-360',
  T360_ERP_SECRET: 'erp-secret-360',
  T360_SHOP_TOKEN: 'shpat_test360',
};

async function json(res: Response): Promise<Json> {
  const text = await res.text();
  assert.ok(res.ok, `${res.status} ${text}`);
  return JSON.parse(text);
}

void test('360 aggregates CRM, loyalty, ERP invoices and orders; a failing or slow source makes it partial', async (t) => {
  const crm = createCrm({ apiKey: env.T360_CRM_KEY });
  const loyalty = createLoyalty({ apiKey: env.T360_LOYALTY_KEY });
  const erp = createCloudErp({ clientSecret: env.T360_ERP_SECRET });
  const commerce = createCommerce({ accessToken: env.T360_SHOP_TOKEN });
  const [crmUrl, loyaltyUrl, erpUrl, shopUrl] = await Promise.all([
    crm.listen(),
    loyalty.listen(),
    erp.listen(),
    commerce.listen(),
  ]);
  t.after(() => Promise.all([crm.close(), loyalty.close(), erp.close(), commerce.close()]));

  // The shopper: an order in the shop, a CRM contact, a loyalty member with points, an ERP account.
  const { order } = await json(
    await fetch(`${shopUrl}/_sandbox/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    }),
  );
  const email = order.email as string;
  const shopCustomerId = String(order.customer.id);
  const contact = await json(
    await fetch(`${crmUrl}/contacts/by-external-id/ext-360`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'x-api-key': env.T360_CRM_KEY },
      body: JSON.stringify({
        email,
        firstName: 'Zoe',
        lastName: 'Okafor',
        properties: { segment: 'vip' },
      }),
    }),
  );
  const member = await json(
    await fetch(`${loyaltyUrl}/members`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': env.T360_LOYALTY_KEY },
      body: JSON.stringify({ email, firstName: 'Zoe', lastName: 'Okafor' }),
    }),
  );
  await json(
    await fetch(`${loyaltyUrl}/members/${member.id}/accruals`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': env.T360_LOYALTY_KEY,
        'idempotency-key': 'seed-1',
      },
      body: JSON.stringify({ points: 1200 }),
    }),
  );
  const erpAccount = erp.catalogue.customers[0]!;

  const yaml = `version: 1
systems:
  - id: cloud-erp
    kind: rest-erp
    baseUrl: ${erpUrl}
    credentials:
      clientId: middlemart
      clientSecret: \${T360_ERP_SECRET}
  - id: commerce
    kind: shopify
    baseUrl: ${shopUrl}
    credentials:
      accessToken: \${T360_SHOP_TOKEN}
  - id: crm
    kind: crm
    baseUrl: ${crmUrl}
    credentials:
      apiKey: \${T360_CRM_KEY}
  - id: loyalty
    kind: loyalty
    baseUrl: ${loyaltyUrl}
    credentials:
      apiKey: \${T360_LOYALTY_KEY}
customers:
  customer360:
    timeoutMs: 1000
`;
  const api = await startCustomersApp({ yaml, env });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const same = { givenName: 'Zoe', familyName: 'Okafor', email, emailVerified: true };
  for (const body of [
    { system: 'commerce', sourceId: shopCustomerId, ...same },
    { system: 'crm', sourceId: contact.id, ...same },
    { system: 'loyalty', sourceId: member.id, loyaltyId: member.id, ...same },
    { system: 'cloud-erp', sourceId: erpAccount.id, ...same },
  ]) {
    const res = await api.call('POST', '/v1/customers', { key: channel, body });
    assert.equal(res.status, 202, res.text);
    await api.settle();
  }
  assert.deepEqual(await deadMessages(api.app), []);
  const [id, ...rest] = await activeCustomers(api.app);
  assert.deepEqual(rest, []);

  const full = await api.call('GET', `/v1/customers/${id}/360`, { key: channel });
  assert.equal(full.status, 200, full.text);
  const view = full.json();
  assert.equal(view.partial, false, full.text);
  assert.equal(view.customerId, id);
  assert.equal(view.golden.givenName, 'Zoe');
  assert.equal(view.profile.contactId, contact.id);
  assert.equal(view.profile.properties.segment, 'vip');
  assert.equal(view.loyalty.memberId, member.id);
  assert.equal(view.loyalty.balance, 1200);
  assert.equal(view.loyalty.tier, 'Silver');
  assert.ok(view.invoices.length >= 1, full.text);
  assert.ok(view.invoices.every((i: { amountMinor: number }) => Number.isInteger(i.amountMinor)));
  assert.deepEqual(
    view.orders.map((o: { id: string }) => o.id),
    [String(order.id)],
  );
  for (const section of ['profile', 'loyalty', 'invoices', 'orders']) {
    assert.equal(view.sources[section].status, 'ok', `${section}: ${full.text}`);
  }

  // fields= shapes the answer.
  const shaped = await api.call('GET', `/v1/customers/${id}/360?fields=loyalty,orders`, {
    key: channel,
  });
  assert.equal(shaped.status, 200, shaped.text);
  const s = shaped.json();
  assert.deepEqual(Object.keys(s.sources).sort(), ['loyalty', 'orders']);
  assert.equal(s.profile, undefined);
  assert.equal(s.golden, undefined);
  assert.equal(s.invoices, undefined);
  assert.equal(s.loyalty.memberId, member.id);
  const bad = await api.call('GET', `/v1/customers/${id}/360?fields=loyalty,wishlist`, {
    key: channel,
  });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /wishlist/);
  assert.equal(
    (await api.call('GET', '/v1/customers/cus_unknown/360', { key: channel })).status,
    404,
  );

  // The loyalty programme is down: the rest is answered, loyalty is reported as failed.
  await json(
    await fetch(`${loyaltyUrl}/_sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'errorRate', rate: 1, status: 503 }),
    }),
  );
  const down = await api.call('GET', `/v1/customers/${id}/360`, { key: channel });
  assert.equal(down.status, 200, down.text);
  const partial = down.json();
  assert.equal(partial.partial, true);
  assert.equal(partial.sources.loyalty.status, 'error');
  assert.equal(partial.loyalty, undefined);
  assert.equal(partial.sources.profile.status, 'ok');
  assert.equal(partial.sources.invoices.status, 'ok');
  assert.equal(partial.sources.orders.status, 'ok');
  assert.equal(partial.profile.contactId, contact.id);

  // The CRM hangs past its timeout: reported as such, the answer still comes.
  await json(
    await fetch(`${crmUrl}/_sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'latency', distribution: 'fixed', ms: 5000, durationMs: 20000 }),
    }),
  );
  const slow = await api.call('GET', `/v1/customers/${id}/360?fields=profile,orders`, {
    key: channel,
  });
  assert.equal(slow.status, 200, slow.text);
  assert.equal(slow.json().sources.profile.status, 'timeout');
  assert.equal(slow.json().sources.orders.status, 'ok');
  assert.equal(slow.json().partial, true);
});
