// Data residency for customer records: a system outside the customer's allowed regions is never
// sent the customer's data; the sync is dead-lettered with a residency reason and counted, while
// systems in allowed regions receive it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { activeCustomers, startCustomersApp } from './support.js';

const ESTATE = `version: 1
systems:
  - id: commerce
    kind: shopify
    baseUrl: http://127.0.0.1:9
    region: eu
  - id: crm
    kind: crm
    baseUrl: http://127.0.0.1:9
    region: eu
  - id: loyalty
    kind: loyalty
    baseUrl: http://127.0.0.1:9
    region: us
residency:
  allowed:
    us: [eu]
`;

void test("an EU customer's record reaches EU systems and is refused to a US system, with the reason", async (t) => {
  const api = await startCustomersApp({ yaml: ESTATE });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const person = {
    givenName: 'Jonas',
    familyName: 'Lindqvist',
    email: 'jonas.lindqvist@example.se',
    emailVerified: true,
    region: 'eu',
  };
  for (const [system, sourceId, extra] of [
    ['loyalty', 'LM-77', {}],
    ['commerce', 'S-77', {}],
    // The CRM knows the phone: every other holder is told, except where residency forbids it.
    ['crm', 'C-77', { phone: '+46701234567' }],
  ] as const) {
    const res = await api.call('POST', '/v1/customers', {
      key: channel,
      body: { system, sourceId, ...person, ...extra },
    });
    assert.equal(res.status, 202, res.text);
    await api.settle();
  }
  const ids = await activeCustomers(api.app);
  assert.equal(ids.length, 1, 'one identity');
  assert.ok(
    api.sent.some((s) => s.destination === 'commerce' && 'phone' in s.action.attributes),
    'the EU commerce platform is told the phone',
  );
  assert.equal(
    api.sent.some((s) => s.destination === 'loyalty'),
    false,
    'nothing sent to the US system',
  );
  const dead = await api.app.store.query<{ destination: string; last_error: string }>(
    "SELECT destination, last_error FROM deliveries WHERE status = 'dead'",
  );
  assert.ok(dead.length >= 1, 'the refused sync is a dead letter');
  for (const d of dead) {
    assert.equal(d.destination, 'loyalty');
    assert.match(d.last_error, /residency: loyalty is in region us/);
  }
  const metrics = await api.call('GET', '/metrics', { key: await api.key(['operator']) });
  assert.match(
    metrics.text,
    /middlemart_residency_refusals_total\{destination="loyalty",action="customer.sync"\} [1-9]/,
  );
});
