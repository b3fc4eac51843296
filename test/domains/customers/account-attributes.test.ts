// Account attributes owned by the systems of record (issue 7): the ERP owns legal name, tax id,
// payment terms and credit limit; the CRM owns preferences and segments; loyalty owns tier and
// points. Each survives another system's update, and a system's customer.sync never carries the
// attributes it owns. Legal name and tax id are stored sealed like the other personal data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../../../src/config/load.js';
import { survive, type SourceRecord } from '../../../src/domains/customers/index.js';
import { attributeOwnership } from '../../../src/wiring/customers.js';
import {
  activeCustomers,
  deadMessages,
  startCustomersApp,
  type CustomersTestApp,
  type Json,
} from './support.js';

const ESTATE = `version: 1
systems:
  - id: commerce
    kind: shopify
    baseUrl: http://127.0.0.1:9
  - id: crm
    kind: crm
    baseUrl: http://127.0.0.1:9
  - id: loyalty
    kind: loyalty
    baseUrl: http://127.0.0.1:9
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
    connector: custom
customers:
  ownership:
    givenName: crm
    familyName: crm
    loyaltyId: loyalty
  sourceTrust: [crm, loyalty, commerce, erp]
`;

const LEGAL_NAME = 'Quenstedt Feinkost Handels GmbH';
const TAX_ID = 'DE287361945';
const ERP_OWNED = ['legalName', 'taxId', 'paymentTerms', 'creditLimit'];
const CRM_OWNED = ['preferences', 'segments'];
const LOYALTY_OWNED = ['loyaltyTier', 'loyaltyPoints', 'loyaltyId'];

async function post(api: CustomersTestApp, key: string, body: Record<string, unknown>) {
  const res = await api.call('POST', '/v1/customers', { key, body });
  assert.equal(res.status, 202, res.text);
  await api.settle();
}

void test('ERP, CRM and loyalty each keep their attributes; the owner is never synced its own', async (t) => {
  const api = await startCustomersApp({ yaml: ESTATE });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const steward = await api.key(['steward']);

  // The ERP's B2B account.
  await post(api, channel, {
    system: 'erp',
    sourceId: 'A-100',
    givenName: 'Ilse',
    familyName: 'Quenstedt',
    email: 'ilse@quenstedt-feinkost.example',
    legalName: LEGAL_NAME,
    taxId: TAX_ID,
    paymentTerms: 'NET30',
    creditLimit: { amount: 500_000, currency: 'EUR' },
    preferences: { language: 'fr' },
    updatedAt: '2026-11-01T08:00:00Z',
  });
  // The CRM contact of the same person (knows the ERP account), later: its own idea of the
  // legal name, and the preferences and segments it owns.
  await post(api, channel, {
    system: 'crm',
    sourceId: 'C-1',
    givenName: 'Ilse',
    familyName: 'Quenstedt',
    email: 'ilse@quenstedt-feinkost.example',
    legalName: 'Quenstedt Feinkost',
    preferences: { language: 'de', contactTime: 'morning' },
    segments: ['vip', 'b2b'],
    loyaltyTier: 'bronze',
    otherSourceIds: [{ system: 'erp', id: 'A-100' }],
    updatedAt: '2026-11-02T08:00:00Z',
  });
  // The loyalty member, later still: the tier and points it owns, and its own preferences.
  await post(api, channel, {
    system: 'loyalty',
    sourceId: 'L-9',
    loyaltyId: 'L-9',
    loyaltyTier: 'gold',
    loyaltyPoints: 1200,
    preferences: { language: 'en' },
    segments: ['points-hunter'],
    otherSourceIds: [{ system: 'crm', id: 'C-1' }],
    updatedAt: '2026-11-03T08:00:00Z',
  });
  // The ERP again, latest of all: new terms, and preferences it does not own.
  await post(api, channel, {
    system: 'erp',
    sourceId: 'A-100',
    givenName: 'Ilse',
    familyName: 'Quenstedt',
    email: 'ilse@quenstedt-feinkost.example',
    legalName: LEGAL_NAME,
    taxId: TAX_ID,
    paymentTerms: 'NET60',
    creditLimit: { amount: 750_000, currency: 'EUR' },
    preferences: { language: 'fr' },
    loyaltyTier: 'silver',
    updatedAt: '2026-11-04T08:00:00Z',
  });
  assert.deepEqual(await deadMessages(api.app), []);
  const ids = await activeCustomers(api.app);
  assert.equal(ids.length, 1, 'one golden record');
  const golden: Json = (await api.call('GET', `/v1/customers/${ids[0]}`, { key: steward })).json();
  const p = golden.profile;

  // ERP's legal name survives the CRM's update; its terms follow its own update.
  assert.equal(p.legalName, LEGAL_NAME);
  assert.equal(p.taxId, TAX_ID);
  assert.equal(p.paymentTerms, 'NET60');
  assert.deepEqual(p.creditLimit, { amount: 750_000, currency: 'EUR' });
  for (const attr of ERP_OWNED) {
    assert.deepEqual(golden.provenance[attr], { system: 'erp', sourceId: 'A-100', rule: 'owner' });
  }
  // CRM preferences and segments survive the ERP's and loyalty's later updates.
  assert.deepEqual(p.preferences, { contactTime: 'morning', language: 'de' });
  assert.deepEqual(p.segments, ['b2b', 'vip']);
  for (const attr of CRM_OWNED) assert.equal(golden.provenance[attr].system, 'crm');
  // Tier and points from loyalty only, whatever the CRM and the ERP say.
  assert.equal(p.loyaltyTier, 'gold');
  assert.equal(p.loyaltyPoints, 1200);
  assert.equal(golden.provenance.loyaltyTier.system, 'loyalty');

  // The 360 view's golden section shows them too.
  const view: Json = (
    await api.call('GET', `/v1/customers/${ids[0]}/360?fields=golden`, { key: channel })
  ).json();
  assert.equal(view.golden.legalName, LEGAL_NAME);
  assert.equal(view.golden.loyaltyTier, 'gold');

  // customer.sync: never an attribute back to the system that owns it; the others are told.
  const owned: Record<string, string[]> = {
    erp: ERP_OWNED,
    crm: CRM_OWNED,
    loyalty: LOYALTY_OWNED,
  };
  for (const s of api.sent) {
    for (const attr of owned[s.destination] ?? []) {
      assert.ok(
        !(attr in s.action.attributes),
        `${s.destination} was sent ${attr} it owns: ${JSON.stringify(s.action.attributes)}`,
      );
    }
  }
  const lastTo = (system: string) =>
    api.sent.filter((s) => s.destination === system).at(-1)?.action.attributes ?? {};
  assert.equal(lastTo('crm').legalName, LEGAL_NAME, 'the CRM is told the legal name');
  assert.equal(lastTo('crm').loyaltyTier, 'gold', 'the CRM is told the tier');
  assert.deepEqual(lastTo('loyalty').preferences, { contactTime: 'morning', language: 'de' });
  assert.deepEqual(lastTo('erp').preferences, { contactTime: 'morning', language: 'de' });
  assert.equal(lastTo('erp').loyaltyTier, 'gold');

  // Legal name and tax id are stored sealed, like the other personal data.
  await api.app.stop();
  for (const file of readdirSync(api.dir).filter((f) => f.startsWith('mm.db'))) {
    const bytes = readFileSync(join(api.dir, file)).toString('latin1');
    for (const secret of [LEGAL_NAME, TAX_ID, 'ilse@quenstedt-feinkost.example']) {
      assert.ok(!bytes.includes(secret), `${file} holds ${secret} in clear`);
    }
  }
});

void test('survivorship of account attributes: owner first, the others only without one', () => {
  const rec = (system: string, observedAt: number, extra: Partial<SourceRecord>): SourceRecord => ({
    system,
    sourceId: `${system}-1`,
    emails: [],
    phones: [],
    addresses: [],
    observedAt,
    ...extra,
  });
  const policy = {
    ownership: {
      legalName: 'erp',
      preferences: 'crm',
      loyaltyTier: 'loyalty',
      loyaltyPoints: 'loyalty',
    },
    sourceTrust: ['crm', 'erp', 'loyalty'],
  };
  const { attributes, provenance } = survive(
    [
      rec('erp', 1, { legalName: 'ERP Ltd', preferences: { language: 'fr' } }),
      rec('crm', 3, { legalName: 'CRM Ltd', preferences: { language: 'de' }, loyaltyTier: 'x' }),
      rec('loyalty', 2, { loyaltyTier: 'gold', loyaltyPoints: 0 }),
    ],
    policy,
  );
  assert.equal(attributes.legalName, 'ERP Ltd');
  assert.deepEqual(attributes.preferences, { language: 'de' });
  assert.equal(attributes.loyaltyTier, 'gold');
  assert.equal(attributes.loyaltyPoints, 0, 'zero points is a value');
  assert.equal(provenance.loyaltyPoints?.rule, 'owner');
  // Without the owner's value, the most trusted other source fills in.
  const lone = survive([rec('crm', 1, { legalName: 'CRM Ltd' })], policy);
  assert.equal(lone.attributes.legalName, 'CRM Ltd');
  assert.equal(lone.provenance.legalName?.rule, 'trust');
});

void test('account attributes default to the one system of the kind that keeps them', () => {
  const parse = (yaml: string) => {
    const r = parseConfig(yaml, 'test.yaml', {});
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.config;
  };
  const owners = attributeOwnership(parse(ESTATE));
  assert.equal(owners.legalName, 'erp');
  assert.equal(owners.taxId, 'erp');
  assert.equal(owners.paymentTerms, 'erp');
  assert.equal(owners.creditLimit, 'erp');
  assert.equal(owners.preferences, 'crm');
  assert.equal(owners.segments, 'crm');
  assert.equal(owners.loyaltyTier, 'loyalty');
  assert.equal(owners.loyaltyPoints, 'loyalty');
  assert.equal(owners.email, undefined, 'contact points have no default owner');
  // Two ERPs: no default; the config must say which one.
  const two = attributeOwnership(
    parse(
      ESTATE.replace(
        'customers:',
        '  - id: erp-b\n    kind: soap-erp\n    baseUrl: http://127.0.0.1:9\n    connector: custom\ncustomers:',
      ).replace('    loyaltyId: loyalty\n', '    loyaltyId: loyalty\n    taxId: erp-b\n'),
    ),
  );
  assert.equal(two.legalName, undefined);
  assert.equal(two.taxId, 'erp-b');
});
