// PII at rest: after customers went through the whole path (API, engine, matching, golden
// records, stewardship), the raw SQLite files contain none of their emails, names, phones or
// streets in plaintext; the key is generated beside the embedded database with mode 0600; keys
// rotate (old values still open) and blind indexes stay comparable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PiiVault, piiKeyId } from '../../../src/domains/customers/index.js';
import { loadPiiKeys, PII_KEY_ENV } from '../../../src/wiring/customers.js';
import { activeCustomers, deadMessages, startCustomersApp } from './support.js';

// No other system is declared, so no `customer.sync` is written to the outbox: its payloads carry
// the attributes in plaintext for the receiving connector (see docs/customers.md).
const ESTATE = `version: 1
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
`;

const PEOPLE = [
  {
    system: 'crm',
    sourceId: 'C-100',
    givenName: 'Wilhelmina',
    familyName: 'Vandersloot',
    email: 'wilhelmina.vandersloot@example.nl',
    emailVerified: true,
    phone: '+31612345678',
    address: {
      lines: ['Keizersgracht 123'],
      city: 'Amsterdam',
      postalCode: '1015 CJ',
      country: 'NL',
    },
    dateOfBirth: '1979-02-03',
  },
  {
    system: 'loyalty',
    sourceId: 'LM-100',
    givenName: 'Willemijn',
    familyName: 'Vandersloot',
    email: 'Wilhelmina.Vandersloot@example.nl',
    emailVerified: true,
    loyaltyId: 'LM-100',
  },
  {
    system: 'commerce',
    sourceId: 'S-100',
    givenName: 'Bartholomew',
    familyName: 'Quigglesworth',
    email: 'bart.quigglesworth@example.co.uk',
    phone: '+447700900123',
  },
];

const NEEDLES = [
  'wilhelmina.vandersloot@example.nl',
  'Wilhelmina.Vandersloot@example.nl',
  'Wilhelmina',
  'wilhelmina',
  'Willemijn',
  'Vandersloot',
  'vandersloot',
  'bart.quigglesworth@example.co.uk',
  'Bartholomew',
  'Quigglesworth',
  'quigglesworth',
  '+31612345678',
  '+447700900123',
  'Keizersgracht',
  '1979-02-03',
];

void test('the raw database files hold none of the customers’ personal data in plaintext', async (t) => {
  const api = await startCustomersApp({ yaml: ESTATE });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  for (const body of PEOPLE) {
    const res = await api.call('POST', '/v1/customers', { key: channel, body });
    assert.equal(res.status, 202, res.text);
    await api.settle();
  }
  assert.deepEqual(await deadMessages(api.app), []);
  assert.equal(
    (await activeCustomers(api.app)).length,
    2,
    'two people, one of them in two systems',
  );

  // Lookups work on blind indexes: the resolver finds the customer by email.
  const resolved = await api.app.store.transaction((tx) =>
    api.app.services.customers!.resolve(tx, {
      email: 'WILHELMINA.vandersloot@example.nl',
      source: 'commerce',
    }),
  );
  assert.equal(resolved.provisional, false);
  assert.deepEqual(Object.keys(resolved.sourceIds).sort(), ['crm', 'loyalty']);

  // Every sealed row names its key.
  const keyFile = join(api.dir, 'pii.key');
  assert.ok(existsSync(keyFile), 'the embedded default generated a key beside the database');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const keyId = piiKeyId(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'base64'));
  const ids = await api.app.store.query<{ key_id: string }>(
    'SELECT DISTINCT key_id FROM customer_source_records',
  );
  assert.deepEqual(
    ids.map((r) => r.key_id),
    [keyId],
  );

  await api.app.stop();
  const files = [api.dbFile, `${api.dbFile}-wal`].filter(existsSync);
  const raw = Buffer.concat(files.map((f) => readFileSync(f))).toString('latin1');
  // The search itself works on these bytes: ids (not personal data) are there in plaintext.
  assert.ok(raw.includes('C-100') && raw.includes('LM-100'), 'the files were read');
  for (const needle of NEEDLES) {
    assert.ok(!raw.includes(needle), `${needle} is stored in plaintext`);
    assert.ok(!raw.includes(Buffer.from(needle, 'utf8').toString('latin1')), `${needle} (utf-8)`);
  }
});

void test('keys rotate: old values open under the previous key; tampering is detected', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const index = randomBytes(32);
  const old = new PiiVault({ current: k1, index });
  const sealed = old.seal({ email: 'a@example.com' });
  assert.ok(!sealed.includes('a@example.com'));
  assert.equal(PiiVault.keyIdOf(sealed), piiKeyId(k1));
  const rotated = new PiiVault({ current: k2, previous: [k1], index });
  assert.deepEqual(rotated.open(sealed), { email: 'a@example.com' });
  assert.equal(PiiVault.keyIdOf(rotated.seal(1)), piiKeyId(k2));
  assert.equal(
    rotated.blindIndex('email', 'a@example.com'),
    old.blindIndex('email', 'a@example.com'),
  );
  assert.throws(() => new PiiVault({ current: k2 }).open(sealed), /not configured/);
  const parts = sealed.split('.');
  parts[4] = Buffer.from('{"email":"b@example.com"}').toString('base64url');
  assert.throws(() => old.open(parts.join('.')));
  assert.notEqual(
    old.blindIndex('email', 'a@example.com'),
    old.blindIndex('email', 'b@example.com'),
  );
});

void test('the key comes from the environment or a key file; a cluster store needs one', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-pii-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const key = randomBytes(32);
  const fromEnv = loadPiiKeys({
    env: { [PII_KEY_ENV]: key.toString('base64') },
    storeDescription: 'postgres://db/mm',
    dialect: 'postgres',
  });
  assert.ok(fromEnv.current.equals(key));
  assert.throws(
    () =>
      loadPiiKeys({ env: { [PII_KEY_ENV]: 'c2hvcnQ=' }, storeDescription: 'x', dialect: 'sqlite' }),
    /MIDDLEMART_PII_KEY: expected a base64 AES-256 key of 32 bytes/,
  );
  assert.throws(
    () => loadPiiKeys({ env: {}, storeDescription: 'postgres://db/mm', dialect: 'postgres' }),
    /set MIDDLEMART_PII_KEY/,
  );
  const generated = loadPiiKeys({
    env: {},
    storeDescription: `sqlite:${join(dir, 'mm.db')}`,
    dialect: 'sqlite',
  });
  const again = loadPiiKeys({
    env: {},
    storeDescription: `sqlite:${join(dir, 'mm.db')}`,
    dialect: 'sqlite',
  });
  assert.ok(generated.current.equals(again.current), 'the generated key is kept and reused');
});
