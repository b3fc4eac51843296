// Consent: a withdrawal captured in one system is delivered to every other system holding the
// identity; the latest explicit decision wins; on a merge a withdrawal on either side survives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { consentOnMerge } from '../../../src/domains/customers/index.js';
import {
  activeCustomers,
  deadMessages,
  ESTATE_WITH_HOLDERS,
  startCustomersApp,
  type Json,
} from './support.js';

const ESTATE = `${ESTATE_WITH_HOLDERS}  matching:
    review: 0.001
`;

const consentOf = (profile: {
  consents: Array<{ purpose: string; channel: string; status: string }>;
}) => profile.consents.find((c) => c.purpose === 'marketing' && c.channel === 'email')?.status;

void test('a withdrawal in the CRM reaches every other system holding the identity; the latest decision wins', async (t) => {
  const api = await startCustomersApp({ yaml: ESTATE });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const steward = await api.key(['steward']);
  const post = async (body: Record<string, unknown>) => {
    const res = await api.call('POST', '/v1/customers', { key: channel, body });
    assert.equal(res.status, 202, res.text);
    await api.settle();
  };
  const person = {
    givenName: 'Ines',
    familyName: 'Moreau',
    email: 'ines.moreau@example.fr',
    emailVerified: true,
  };
  await post({ system: 'commerce', sourceId: 'S-9', ...person });
  await post({
    system: 'crm',
    sourceId: 'C-9',
    ...person,
    consents: [
      { purpose: 'marketing', channel: 'email', status: 'granted', at: '2026-11-01T10:00:00Z' },
    ],
  });
  await post({ system: 'loyalty', sourceId: 'LM-9', ...person, loyaltyId: 'LM-9' });
  const [id, ...others] = await activeCustomers(api.app);
  assert.deepEqual(others, [], 'one identity in three systems');
  api.sent.length = 0;

  // The customer unsubscribes in the CRM; the CRM integration reports it by its own contact id.
  const withdrawal = await api.call('POST', '/v1/events', {
    key: channel,
    body: {
      specversion: '1.0',
      id: 'crm-consent-1',
      source: '/crm',
      type: 'com.middlemart.consent.changed.v1',
      time: '2026-11-20T08:00:00Z',
      data: {
        customerId: 'C-9',
        purpose: 'marketing',
        channel: 'email',
        status: 'withdrawn',
        previousStatus: 'granted',
        changedAt: '2026-11-20T08:00:00Z',
        source: 'crm',
      },
    },
  });
  assert.equal(withdrawal.status, 202, withdrawal.text);
  await api.settle();
  assert.deepEqual(await deadMessages(api.app), []);

  const told = api.sent.filter((s) =>
    s.action.consents?.some(
      (c) => c.purpose === 'marketing' && c.channel === 'email' && c.status === 'withdrawn',
    ),
  );
  assert.deepEqual(told.map((s) => s.destination).sort(), ['commerce', 'loyalty']);
  for (const s of told) assert.equal(s.action.customerId, id);
  assert.ok(
    !api.sent.some((s) => s.destination === 'crm' && s.action.consents?.length),
    'the CRM is not told what it said',
  );

  const golden = (await api.call('GET', `/v1/customers/${id}`, { key: steward })).json();
  assert.equal(consentOf(golden.profile), 'withdrawn');
  const announced = await api.app.store.query<{ payload: string }>(
    "SELECT payload FROM messages WHERE source = 'middlemart/customers' AND type = 'com.middlemart.consent.changed.v1'",
  );
  assert.ok(
    announced.some(
      (m) =>
        (api.app.engine.readPayload(m.payload) as Json).data.customerId === id &&
        (api.app.engine.readPayload(m.payload) as Json).data.status === 'withdrawn',
    ),
  );

  // An older grant arriving late from the shop does not undo the withdrawal.
  await post({
    system: 'commerce',
    sourceId: 'S-9',
    ...person,
    consents: [
      { purpose: 'marketing', channel: 'email', status: 'granted', at: '2026-11-10T10:00:00Z' },
    ],
  });
  let now = (await api.call('GET', `/v1/customers/${id}`, { key: steward })).json();
  assert.equal(consentOf(now.profile), 'withdrawn');

  // A later explicit grant wins, and goes to the other systems too.
  api.sent.length = 0;
  await post({
    system: 'commerce',
    sourceId: 'S-9',
    ...person,
    consents: [
      { purpose: 'marketing', channel: 'email', status: 'granted', at: '2026-11-25T10:00:00Z' },
    ],
  });
  now = (await api.call('GET', `/v1/customers/${id}`, { key: steward })).json();
  assert.equal(consentOf(now.profile), 'granted');
  assert.deepEqual(
    api.sent
      .filter((s) => s.action.consents?.some((c) => c.status === 'granted'))
      .map((s) => s.destination)
      .sort(),
    ['crm', 'loyalty'],
  );
});

void test('on a merge a withdrawal on either side survives', async (t) => {
  const api = await startCustomersApp({ yaml: ESTATE });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const steward = await api.key(['steward']);
  const post = async (body: Record<string, unknown>) => {
    const res = await api.call('POST', '/v1/customers', { key: channel, body });
    assert.equal(res.status, 202, res.text);
    await api.settle();
  };
  // Withdrawn in the CRM first, granted later in the shop: after the merge it stays withdrawn.
  await post({
    system: 'crm',
    sourceId: 'C-30',
    givenName: 'Paul',
    familyName: 'Martin',
    email: 'paul.martin@example.fr',
    address: { lines: ['3 Rue de Rivoli'], city: 'Paris', postalCode: '75001', country: 'FR' },
    consents: [
      { purpose: 'marketing', channel: 'sms', status: 'withdrawn', at: '2026-10-01T10:00:00Z' },
    ],
  });
  await post({
    system: 'commerce',
    sourceId: 'S-30',
    givenName: 'Paul',
    familyName: 'Martin',
    email: 'pm@shop.example',
    address: { lines: ['Boulevard Haussmann'], city: 'Paris', country: 'FR' },
    consents: [
      { purpose: 'marketing', channel: 'sms', status: 'granted', at: '2026-11-01T10:00:00Z' },
    ],
  });
  const tasks = (await api.call('GET', '/v1/stewardship/tasks', { key: steward })).json().items;
  assert.equal(tasks.length, 1);
  const res = await api.call('POST', `/v1/stewardship/tasks/${tasks[0].id}/decision`, {
    key: steward,
    body: { decision: 'merge', reason: 'same person' },
  });
  assert.equal(res.status, 202, res.text);
  await api.settle();
  assert.deepEqual(await deadMessages(api.app), []);
  const [survivor, ...rest] = await activeCustomers(api.app);
  assert.deepEqual(rest, []);
  const golden = (await api.call('GET', `/v1/customers/${survivor}`, { key: steward })).json();
  const sms = golden.profile.consents.find((c: { channel: string }) => c.channel === 'sms');
  assert.equal(sms.status, 'withdrawn');

  // The rule itself, both ways round.
  const w = {
    purpose: 'marketing',
    channel: 'sms',
    status: 'withdrawn',
    at: '2026-10-01T10:00:00Z',
  } as const;
  const g = {
    purpose: 'marketing',
    channel: 'sms',
    status: 'granted',
    at: '2026-11-01T10:00:00Z',
  } as const;
  assert.equal(consentOnMerge(w, g).status, 'withdrawn');
  assert.equal(consentOnMerge(g, w).status, 'withdrawn');
  const d = { ...g, status: 'denied', at: '2026-09-01T10:00:00Z' } as const;
  assert.equal(consentOnMerge(d, g).status, 'granted', 'without a withdrawal the latest wins');
});
