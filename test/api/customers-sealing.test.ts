// End to end through the real app on its SQLite file (ADR 0018): a customer record with personal
// data posted to POST /v1/customers and the same person's customer event posted in clear to
// /v1/events by another ingress; after the engine ran (golden record, customer.sync to the ERP)
// no table of the database file, nor the file itself, holds the email, phone, names or street in
// clear. An order naming the customer leaves none in the engine's tables either (the orders
// domain's own tables are outside the engine's sealing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { startTestApp, type TestApp } from './app-helpers.js';

const PERSON = {
  givenName: 'Wilhelmina',
  familyName: 'Oosterhuis',
  email: 'wilhelmina.oosterhuis@example.net',
  phone: '+31612345678',
  street: 'Prinsengracht 263',
};
const SECRETS = Object.values(PERSON);
const ENGINE_TABLES = [
  'messages',
  'deliveries',
  'dead_letters',
  'idempotency_keys',
  'attempts',
  'state',
];
const ADDRESS = {
  lines: [PERSON.street],
  city: 'Amsterdam',
  postalCode: '1016 GV',
  country: 'NL',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The SQLite file behind the app's store. */
function fileOf(api: TestApp): string {
  return api.app.store.description.replace(/^sqlite:/, '').replace(/\?.*$/, '');
}

/** Checks every value of every row of `only` (default: every table); returns how many. */
function scanTables(file: string, only?: readonly string[]): number {
  const db = new Database(file, { readonly: true });
  try {
    const tables = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{
        name: string;
      }>
    )
      .map((x) => x.name)
      .filter((name) => !only || only.includes(name));
    assert.ok(tables.includes('messages'));
    let scanned = 0;
    for (const name of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]) {
        for (const [column, value] of Object.entries(row)) {
          if (value === null || value === undefined) continue;
          const text = Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
          scanned++;
          for (const secret of SECRETS) {
            assert.ok(
              !text.includes(secret),
              `${name}.${column} holds ${secret} in clear: ${text.slice(0, 120)}`,
            );
          }
        }
      }
    }
    return scanned;
  } finally {
    db.close();
  }
}

async function until(
  what: string,
  check: () => Promise<boolean>,
  debugState?: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}${debugState ? `: ${await debugState()}` : ''}`);
}

void test('no table of the SQLite file holds a customer’s email, phone, name or street in clear', async (t) => {
  const api = await startTestApp();
  t.after(() => api.close());
  const channel = await api.key(['channel']);

  // The ERP's record through POST /v1/customers (the ERP holds the identity: it is synced).
  const erp = await api.call('POST', '/v1/customers', {
    key: channel,
    body: {
      system: 'erp',
      sourceId: 'D-4711',
      givenName: PERSON.givenName,
      familyName: PERSON.familyName,
      email: PERSON.email,
      phone: PERSON.phone,
      address: ADDRESS,
      legalName: `${PERSON.familyName} Holding B.V.`,
      taxId: 'NL859012345B01',
      updatedAt: '2026-11-01T00:00:00Z',
    },
  });
  assert.equal(erp.status, 202, erp.text);
  // The web shop's record of the same person, in clear through the generic ingest.
  const shop = await api.call('POST', '/v1/events', {
    key: channel,
    headers: { 'idempotency-key': 'evt-shop-1' },
    body: {
      specversion: '1.0',
      id: 'evt-shop-1',
      source: '/commerce',
      type: 'com.middlemart.customer.created.v1',
      time: '2026-11-28T10:00:00Z',
      data: {
        id: 'commerce-9001',
        sourceIds: [{ system: 'commerce', id: '9001' }],
        givenName: PERSON.givenName,
        familyName: PERSON.familyName,
        emails: [{ address: PERSON.email, primary: true }],
        phones: [{ number: PERSON.phone, primary: true }],
        addresses: [{ kind: 'shipping', address: ADDRESS, default: true }],
        dateOfBirth: '1988-04-12',
        consents: [],
        region: 'eu',
      },
    },
  });
  assert.equal(shop.status, 202, shop.text);

  // The engine works through both: one golden record, and a customer.sync for the ERP (which
  // is down here, so the delivery stays queued with its payload).
  const store = api.app.store;
  await until(
    'both records handled and the ERP sync written',
    async () => {
      const open = await store.query<{ n: number }>(
        "SELECT COUNT(*) AS n FROM messages WHERE status = 'queued' AND type LIKE '%customer%'",
      );
      const sync = await store.query<{ n: number }>(
        "SELECT COUNT(*) AS n FROM deliveries WHERE destination = 'erp'",
      );
      return Number(open[0]?.n) === 0 && Number(sync[0]?.n) > 0;
    },
    async () =>
      JSON.stringify([
        await store.query('SELECT type, status, attempts, last_error FROM messages'),
        await store.query('SELECT destination, status, attempts, last_error FROM deliveries'),
      ]),
  );
  const sync = await store.query<{ payload: string }>(
    "SELECT payload FROM deliveries WHERE destination = 'erp'",
  );
  const actions = sync.map((d) => api.app.engine.readPayload(d.payload) as { action?: string });
  assert.ok(
    actions.some((a) => a.action === 'customer.sync'),
    'a customer.sync for the ERP',
  );
  const golden = await store.query<{ n: number }>(
    "SELECT COUNT(*) AS n FROM customer_golden WHERE status = 'active'",
  );
  assert.equal(Number(golden[0]?.n), 1, 'one golden record');

  const file = fileOf(api);
  await api.app.stop();
  assert.ok(scanTables(file) > 100, 'every table scanned');
  // And the raw bytes of the file and its write-ahead log.
  for (const path of [file, `${file}-wal`]) {
    if (!existsSync(path)) continue;
    const bytes = readFileSync(path).toString('latin1');
    for (const secret of SECRETS) assert.ok(!bytes.includes(secret), `${path} holds ${secret}`);
  }
});

void test('an order naming a customer leaves no personal data in the engine’s tables', async (t) => {
  const api = await startTestApp();
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const m = (amount: number) => ({ amount, currency: 'EUR' });
  const order = await api.call('POST', '/v1/orders', {
    key: channel,
    headers: { 'idempotency-key': 'order:seal-1' },
    body: {
      id: 'seal-1',
      channel: 'web',
      externalIds: [{ system: 'web', id: 'SEAL-1' }],
      customer: { email: PERSON.email },
      currency: 'EUR',
      pricesIncludeTax: true,
      lines: [
        { lineId: '1', sku: 'MM-00001', quantity: 1, unitPrice: m(1999), discounts: [], taxes: [] },
      ],
      fulfilment: { method: 'ship' },
      shippingAddress: { ...ADDRESS, name: `${PERSON.givenName} ${PERSON.familyName}` },
      billingAddress: ADDRESS,
      totals: {
        subtotal: m(1999),
        discountTotal: m(0),
        shippingTotal: m(0),
        taxTotal: m(0),
        grandTotal: m(1999),
      },
      placedAt: '2026-11-28T10:05:00Z',
      region: 'eu',
      notes: `Please ring ${PERSON.familyName}`,
    },
  });
  assert.equal(order.status, 202, order.text);
  const store = api.app.store;
  await until('the order process handled the order', async () => {
    const rows = await store.query<{ type: string; status: string }>(
      'SELECT type, status FROM messages',
    );
    return rows.length > 1 && rows.every((r) => r.status !== 'queued');
  });
  const stored = await store.query<{ type: string; payload: string }>(
    'SELECT type, payload FROM messages',
  );
  const created = stored.find((r) => r.type === 'com.middlemart.order.created.v1')!;
  assert.equal(
    (api.app.engine.readPayload(created.payload) as { data: { customer: { email: string } } }).data
      .customer.email,
    PERSON.email,
  );
  const file = fileOf(api);
  await api.app.stop();
  assert.ok(scanTables(file, ENGINE_TABLES) > 10);
});
