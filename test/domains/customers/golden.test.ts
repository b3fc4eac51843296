// Golden records end to end: the same shopper as a guest checkout (commerce, through /v1/events),
// a loyalty sign-up in store and a CRM contact (through POST /v1/customers) ends as one golden
// record holding all three source ids, with every attribute from its owner, and every system
// holding the identity is sent what it does not own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { survive, type SourceRecord } from '../../../src/domains/customers/index.js';
import {
  activeCustomers,
  customerEvent,
  deadMessages,
  startCustomersApp,
  type CustomersTestApp,
} from './support.js';

const OWNERS: Record<string, string> = {
  givenName: 'crm',
  familyName: 'crm',
  loyaltyId: 'loyalty',
  email: 'commerce',
};

const PG_SKIP = process.env.MIDDLEMART_TEST_PG_URL ? false : 'MIDDLEMART_TEST_PG_URL not set';
if (PG_SKIP)
  console.log('# PostgreSQL run of the golden record test skipped: MIDDLEMART_TEST_PG_URL not set');

for (const backend of ['sqlite', 'postgres'] as const) {
  void test(
    `guest checkout, loyalty sign-up and CRM contact become one golden record with owner-correct attributes (${backend})`,
    { skip: backend === 'postgres' ? PG_SKIP : false },
    async (t) => {
      const api = await startCustomersApp({ postgres: backend === 'postgres' });
      t.after(() => api.close());
      await oneGoldenRecord(api);
    },
  );
}

async function oneGoldenRecord(api: CustomersTestApp): Promise<void> {
  const channel = await api.key(['channel']);
  const steward = await api.key(['steward']);

  // 1. A guest checkout on the web shop, mapped by the commerce ingress to a canonical event.
  const guest = await api.call('POST', '/v1/events', {
    key: channel,
    body: customerEvent('customer.created', 'evt-guest-1', {
      id: 'commerce-8001',
      sourceIds: [{ system: 'commerce', id: '8001' }],
      givenName: 'Jon',
      familyName: 'Smith',
      emails: [{ address: 'jon.smith@example.com', primary: true, verified: true }],
      phones: [{ number: '+4915112345678', primary: true }],
      addresses: [
        {
          kind: 'shipping',
          address: {
            lines: ['12 Hauptstrasse'],
            city: 'Berlin',
            postalCode: '10115',
            country: 'DE',
          },
          default: true,
        },
      ],
      consents: [],
      region: 'eu',
      updatedAt: '2026-11-28T09:00:00Z',
    }),
  });
  assert.equal(guest.status, 202, guest.text);
  await api.settle();

  // 2. A loyalty sign-up at a store till: same verified email, another spelling of the name.
  const signUp = await api.call('POST', '/v1/customers', {
    key: channel,
    body: {
      system: 'loyalty',
      sourceId: 'LM-000001',
      givenName: 'Jonny',
      familyName: 'Smith',
      email: 'Jon.Smith@example.com',
      emailVerified: true,
      loyaltyId: 'LM-000001',
      phone: '+49 151 12345678',
      updatedAt: '2026-11-28T09:30:00Z',
    },
  });
  assert.equal(signUp.status, 202, signUp.text);
  assert.equal(signUp.json().event, 'customer.created');
  await api.settle();

  // 3. The CRM contact: unverified email, the full name the CRM (its owner) keeps.
  const contact = await api.call('POST', '/v1/customers', {
    key: channel,
    body: {
      system: 'crm',
      sourceId: 'C-77',
      givenName: 'Jonathan',
      familyName: 'Smith',
      email: 'jon.smith@example.com',
      phone: '+4915112345678',
      address: { lines: ['12 Hauptstraße'], city: 'Berlin', postalCode: '10115', country: 'DE' },
      dateOfBirth: '1985-04-12',
      updatedAt: '2026-11-28T09:45:00Z',
    },
  });
  assert.equal(contact.status, 202, contact.text);
  await api.settle();
  assert.deepEqual(await deadMessages(api.app), []);

  const active = await activeCustomers(api.app);
  assert.equal(active.length, 1, `one golden record, got ${active.join(', ')}`);
  const id = active[0]!;

  const view = await api.call('GET', `/v1/customers/${id}`, { key: steward });
  assert.equal(view.status, 200, view.text);
  const golden = view.json();
  const refs = golden.profile.sourceIds.map(
    (s: { system: string; id: string }) => `${s.system}/${s.id}`,
  );
  assert.deepEqual(refs.sort(), ['commerce/8001', 'crm/C-77', 'loyalty/LM-000001']);
  // Owner-correct: names from the CRM, the loyalty id from loyalty, the email from commerce.
  assert.equal(golden.profile.givenName, 'Jonathan');
  assert.equal(golden.profile.familyName, 'Smith');
  assert.equal(golden.profile.loyaltyId, 'LM-000001');
  assert.equal(
    golden.profile.emails.find((e: { primary: boolean }) => e.primary).address,
    'jon.smith@example.com',
  );
  assert.equal(golden.profile.dateOfBirth, '1985-04-12');
  for (const [attr, owner] of Object.entries(OWNERS)) {
    assert.equal(golden.provenance[attr].system, owner, `${attr} comes from ${owner}`);
    assert.equal(golden.provenance[attr].rule, 'owner');
  }
  // Every record's decision is stored with its per-field explanation.
  const byRecord = new Map(golden.decisions.map((d: { system: string }) => [d.system, d]));
  const loyaltyDecision = byRecord.get('loyalty') as {
    decision: string;
    rule: string;
    fields: Array<{ field: string; level: string; weight: number }>;
  };
  assert.equal(loyaltyDecision.decision, 'link');
  assert.equal(loyaltyDecision.rule, 'same-verified-email');
  const crmDecision = byRecord.get('crm') as {
    decision: string;
    probability: number;
    fields: Array<{ field: string; level: string; weight: number }>;
  };
  assert.equal(crmDecision.decision, 'link');
  const email = crmDecision.fields.find((f) => f.field === 'email');
  assert.ok(
    email && email.level !== 'null' && email.weight > 0,
    JSON.stringify(crmDecision.fields),
  );

  // The systems holding the identity were sent what they do not own, never what they own.
  assert.ok(api.sent.length > 0, 'customer.sync deliveries were made');
  for (const { destination, action } of api.sent) {
    assert.equal(action.customerId, id);
    for (const attr of Object.keys(action.attributes)) {
      assert.notEqual(OWNERS[attr], destination, `${attr} was sent to its owner ${destination}`);
    }
  }
  const toCrm = api.sent.filter((s) => s.destination === 'crm').at(-1);
  assert.equal(toCrm?.action.sourceId, 'C-77');
  assert.equal(toCrm?.action.attributes.loyaltyId, 'LM-000001');
  const toCommerce = api.sent.filter((s) => s.destination === 'commerce').at(-1);
  assert.equal(toCommerce?.action.attributes.givenName, 'Jonathan');
  assert.equal(toCommerce?.action.sourceId, '8001');

  // A later name change in the shop does not override the CRM's name; the id persists.
  const rename = await api.call('POST', '/v1/events', {
    key: channel,
    body: customerEvent(
      'customer.updated',
      'evt-guest-2',
      {
        id: 'commerce-8001',
        sourceIds: [{ system: 'commerce', id: '8001' }],
        givenName: 'Johnny',
        familyName: 'Smith',
        emails: [{ address: 'jon.smith@example.com', primary: true, verified: true }],
        phones: [],
        addresses: [],
        consents: [],
        region: 'eu',
        updatedAt: '2026-11-28T11:00:00Z',
      },
      '2026-11-28T11:00:00Z',
    ),
  });
  assert.equal(rename.status, 202, rename.text);
  await api.settle();
  assert.deepEqual(await activeCustomers(api.app), [id]);
  const after = (await api.call('GET', `/v1/customers/${id}`, { key: steward })).json();
  assert.equal(after.profile.givenName, 'Jonathan');
  assert.ok(after.version > golden.version || after.version === golden.version);

  // The domain announced the golden record as canonical events (personal data sealed).
  const announced = await api.app.store.query<{ type: string; payload: string }>(
    "SELECT type, payload FROM messages WHERE source = 'middlemart/customers'",
  );
  assert.ok(announced.some((m) => m.type === 'com.middlemart.customer.created.v1'));
  assert.ok(announced.some((m) => m.type === 'com.middlemart.customer.updated.v1'));
  for (const m of announced) assert.ok(!m.payload.includes('jon.smith@example.com'));
}

void test('the order resolver finds a guest by email and flags an unknown one as provisional', async (t) => {
  const api = await startCustomersApp();
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const res = await api.call('POST', '/v1/customers', {
    key: channel,
    body: {
      system: 'crm',
      sourceId: 'C-1',
      givenName: 'Ada',
      familyName: 'Lovelace',
      email: 'ada@example.org',
    },
  });
  assert.equal(res.status, 202, res.text);
  await api.settle();
  const resolver = api.app.services.customers!;
  const known = await api.app.store.transaction((tx) =>
    resolver.resolve(tx, { email: 'ADA@example.org', source: 'commerce' }),
  );
  assert.equal(known.provisional, false);
  assert.equal(known.sourceIds.crm, 'C-1');
  assert.equal(known.email, 'ada@example.org');
  const bySource = await api.app.store.transaction((tx) =>
    resolver.resolve(tx, { sourceRef: { system: 'crm', id: 'C-1' }, source: 'commerce' }),
  );
  assert.equal(bySource.customerId, known.customerId);

  const unknown = await api.app.store.transaction((tx) =>
    resolver.resolve(tx, { email: 'grace@example.org', source: 'commerce', name: 'Grace Hopper' }),
  );
  assert.equal(unknown.provisional, true);
  assert.notEqual(unknown.customerId, known.customerId);
  const again = await api.app.store.transaction((tx) =>
    resolver.resolve(tx, { email: 'grace@example.org', source: 'commerce' }),
  );
  assert.equal(again.customerId, unknown.customerId, 'the provisional identity is found again');

  // A real record for the same person takes the provisional identity over.
  const real = await api.call('POST', '/v1/customers', {
    key: channel,
    body: {
      system: 'loyalty',
      sourceId: 'LM-9',
      givenName: 'Grace',
      familyName: 'Hopper',
      email: 'grace@example.org',
      emailVerified: true,
    },
  });
  assert.equal(real.status, 202, real.text);
  await api.settle();
  const resolved = await api.app.store.transaction((tx) =>
    resolver.resolve(tx, { email: 'grace@example.org', source: 'commerce' }),
  );
  assert.equal(resolved.customerId, unknown.customerId);
  assert.equal(resolved.sourceIds.loyalty, 'LM-9');
});

void test('POST /v1/customers names the failing field and stores nothing', async (t) => {
  const api = await startCustomersApp();
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ sourceId: 'x' }, 'system'],
    [{ system: 'crm', sourceId: 'x', email: 'not-an-email' }, 'email'],
    [{ system: 'crm', sourceId: 'x', phone: 'call me' }, 'phone'],
    [
      { system: 'crm', sourceId: 'x', address: { lines: ['1 Road'], city: 'X', country: 'ZZ' } },
      'address.country',
    ],
    [{ system: 'crm', sourceId: 'x', dateOfBirth: '1990-13-45' }, 'dateOfBirth'],
  ];
  for (const [body, path] of cases) {
    const res = await api.call('POST', '/v1/customers', { key: channel, body });
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.match(res.headers.get('content-type') ?? '', /problem\+json/);
    const problem = res.json();
    assert.ok(
      problem.errors.some((e: { path: string }) => e.path === path),
      `${path} named in ${res.text}`,
    );
  }
  const stored = await api.app.store.query<{ n: number }>(
    "SELECT COUNT(*) AS n FROM messages WHERE type LIKE 'com.middlemart.customer.%'",
  );
  assert.equal(Number(stored[0]?.n), 0);
  // The same key and body twice is one record; the same key with another body is a conflict.
  const body = { system: 'crm', sourceId: 'C-5', familyName: 'Curie' };
  const first = await api.call('POST', '/v1/customers', {
    key: channel,
    body,
    headers: { 'idempotency-key': 'k-1' },
  });
  const second = await api.call('POST', '/v1/customers', {
    key: channel,
    body,
    headers: { 'idempotency-key': 'k-1' },
  });
  assert.equal(first.status, 202);
  assert.equal(second.status, 202);
  assert.equal(second.headers.get('idempotent-replayed'), 'true');
  assert.equal(second.json().id, first.json().id);
  const other = await api.call('POST', '/v1/customers', {
    key: channel,
    body: { ...body, familyName: 'Sklodowska' },
    headers: { 'idempotency-key': 'k-1' },
  });
  assert.equal(other.status, 409);
});

for (const backend of ['sqlite', 'postgres'] as const) {
  void test(
    `the same person arriving from several systems at once gets one identity (${backend})`,
    { skip: backend === 'postgres' ? PG_SKIP : false },
    async (t) => {
      const api = await startCustomersApp({ postgres: backend === 'postgres' });
      t.after(() => api.close());
      const channel = await api.key(['channel']);
      const person = {
        givenName: 'Noor',
        familyName: 'Haddad',
        email: 'noor.haddad@example.com',
        emailVerified: true,
      };
      const bodies = [
        { system: 'crm', sourceId: 'C-300', ...person },
        { system: 'loyalty', sourceId: 'LM-300', loyaltyId: 'LM-300', ...person },
        { system: 'commerce', sourceId: 'S-300', ...person },
        { system: 'commerce', sourceId: 'S-301', ...person },
        { system: 'crm', sourceId: 'C-301', ...person },
      ];
      const answers = await Promise.all(
        bodies.map((body) => api.call('POST', '/v1/customers', { key: channel, body })),
      );
      for (const a of answers) assert.equal(a.status, 202, a.text);
      await api.settle();
      assert.deepEqual(await deadMessages(api.app), []);
      const active = await activeCustomers(api.app);
      assert.equal(active.length, 1, `one identity, got ${active.length}`);
      const refs = await api.app.store.query<{ customer_id: string }>(
        'SELECT DISTINCT customer_id FROM customer_source_records',
      );
      assert.deepEqual(
        refs.map((r) => r.customer_id),
        active,
      );
    },
  );
}

void test('ownership and trust must name declared systems', async () => {
  const yaml = `version: 1
systems:
  - id: crm
    kind: crm
    baseUrl: http://127.0.0.1:9
customers:
  ownership:
    givenName: crm
    loyaltyId: loyalty-eu
`;
  await assert.rejects(
    startCustomersApp({ yaml }),
    /customers\.ownership\.loyaltyId: 'loyalty-eu' is not a declared system \(declared: crm\)/,
  );
});

void test('survivorship: the owner wins when it holds a value, else trust, then recency', () => {
  const rec = (
    system: string,
    observedAt: number,
    fields: Partial<SourceRecord>,
  ): SourceRecord => ({
    system,
    sourceId: `${system}-1`,
    emails: [],
    phones: [],
    addresses: [],
    observedAt,
    ...fields,
  });
  const records = [
    rec('commerce', 300, {
      givenName: 'Johnny',
      emails: [{ address: 'new@example.com', primary: true }],
      phones: [{ number: '+4915100000003', primary: true }],
    }),
    rec('crm', 100, {
      givenName: 'Jonathan',
      emails: [{ address: 'old@example.com', primary: true }],
    }),
    rec('loyalty', 200, {
      phones: [{ number: '+4915100000002', primary: true }],
      loyaltyId: 'LM-1',
    }),
  ];
  const { attributes, provenance } = survive(records, {
    ownership: { givenName: 'crm', loyaltyId: 'loyalty' },
    sourceTrust: ['loyalty', 'crm'],
  });
  assert.equal(attributes.givenName, 'Jonathan', 'owner beats a newer value');
  assert.equal(provenance.givenName?.rule, 'owner');
  assert.equal(attributes.phone, '+4915100000002', 'the more trusted source beats a newer one');
  assert.equal(provenance.phone?.rule, 'trust');
  assert.equal(attributes.email, 'old@example.com', 'crm is trusted, commerce is not listed');
  const untrusted = survive(records, { ownership: {}, sourceTrust: [] });
  assert.equal(untrusted.attributes.email, 'new@example.com', 'without trust the most recent wins');
  assert.equal(untrusted.provenance.email?.rule, 'recency');
  // An owner without a value does not blank the attribute.
  const ownerless = survive(records, { ownership: { phone: 'crm' }, sourceTrust: [] });
  assert.equal(ownerless.attributes.phone, '+4915100000003');
});
