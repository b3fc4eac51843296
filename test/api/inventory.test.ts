// The inventory API over HTTP: availability from the ledger (one SKU and the batch query),
// adjustments accepted durably (single, batch, Idempotency-Key, field-named 400s, nothing
// partial), reservations all-or-none with a 409 that says what is available, out-of-order /
// duplicate / late adjustments converging, and the flash sale: 10,000 concurrent reservation
// attempts for 500 units → exactly 500 succeed, on SQLite and on PostgreSQL with two processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  PG_URL,
  adjustmentData,
  eventually,
  postgresDb,
  startInventoryApp,
  type InventoryApp,
  type InventoryTestDb,
} from '../domains/inventory/app.js';
import { seededRandom, shuffle } from '../domains/inventory/support.js';

const LOC = 'DC-EU-1';

async function onHand(app: InventoryApp, sku: string, location = LOC): Promise<number | undefined> {
  const rows = await app.app.store.query(
    'SELECT on_hand FROM inventory_positions WHERE sku = ? AND location = ?',
    [sku, location],
  );
  return rows[0] ? Number(rows[0].on_hand) : undefined;
}

async function queueEmpty(app: InventoryApp): Promise<boolean> {
  const rows = await app.app.store.query(
    "SELECT COUNT(*) AS n FROM messages WHERE status NOT IN ('done', 'dead')",
  );
  return Number(rows[0]!.n) === 0;
}

describe('inventory API', () => {
  let app: InventoryApp;
  let ingest: string;
  let reader: string;
  before(async () => {
    app = await startInventoryApp({});
    ingest = await app.key(['channel']);
    reader = await app.key(['operator']);
  });
  after(() => app.close());

  test('adjustments: single and batch, accepted durably and applied to the ledger', async () => {
    const one = await app.call('POST', '/v1/inventory/adjustments', {
      key: ingest,
      body: adjustmentData('SKU-A', LOC, 1, { count: 40 }),
      headers: { 'idempotency-key': 'adj-a-1' },
    });
    assert.equal(one.status, 202, one.text);
    assert.deepEqual((one.json() as { accepted: number }).accepted, 1);
    const again = await app.call('POST', '/v1/inventory/adjustments', {
      key: ingest,
      body: adjustmentData('SKU-A', LOC, 1, { count: 40 }),
      headers: { 'idempotency-key': 'adj-a-1' },
    });
    assert.equal(again.status, 202);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const other = await app.call('POST', '/v1/inventory/adjustments', {
      key: ingest,
      body: adjustmentData('SKU-A', LOC, 1, { count: 41 }),
      headers: { 'idempotency-key': 'adj-a-1' },
    });
    assert.equal(other.status, 409);
    const batch = await app.call('POST', '/v1/inventory/adjustments', {
      key: ingest,
      body: {
        adjustments: [
          adjustmentData('SKU-A', LOC, 2, { delta: -5 }),
          adjustmentData('SKU-B', LOC, 1, { count: 7 }),
          adjustmentData('SKU-B', 'STORE-BER-01', 1, { count: 3 }),
        ],
      },
    });
    assert.equal(batch.status, 202, batch.text);
    assert.equal((batch.json() as { accepted: number }).accepted, 3);
    await eventually(async () => (await onHand(app, 'SKU-A')) === 35, 'SKU-A applied');
    await eventually(async () => (await onHand(app, 'SKU-B', 'STORE-BER-01')) === 3, 'SKU-B');
  });

  test('bad adjustments are 400 problems naming the field, and nothing of the batch is accepted', async () => {
    const before = await app.app.store.query('SELECT COUNT(*) AS n FROM messages');
    const res = await app.call('POST', '/v1/inventory/adjustments', {
      key: ingest,
      body: {
        adjustments: [
          adjustmentData('SKU-C', LOC, 1, { count: 4 }),
          { ...adjustmentData('SKU-C', LOC, 2, { delta: 1 }), count: 3 },
          { ...adjustmentData('SKU-C', LOC, 3, { delta: 1 }), sourceTimestamp: 'yesterday' },
        ],
      },
    });
    assert.equal(res.status, 400, res.text);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
    const paths = (res.json() as { errors: Array<{ path: string }> }).errors.map((e) => e.path);
    assert.ok(paths.includes('adjustments[1].delta'), paths.join());
    assert.ok(paths.includes('adjustments[2].sourceTimestamp'), paths.join());
    const after = await app.app.store.query('SELECT COUNT(*) AS n FROM messages');
    assert.equal(Number(after[0]!.n), Number(before[0]!.n));
    const unknown = await app.call('POST', '/v1/inventory/adjustments', {
      key: ingest,
      body: { ...adjustmentData('SKU-C', LOC, 1, { count: 4 }), colour: 'red' },
    });
    assert.equal(unknown.status, 400);
    assert.match(unknown.text, /colour/);
  });

  test('availability: one SKU (all locations, one location, per channel) and the batch query', async () => {
    await eventually(async () => (await onHand(app, 'SKU-B')) === 7, 'SKU-B');
    const all = await app.call('GET', '/v1/availability?sku=SKU-B', { key: reader });
    assert.equal(all.status, 200, all.text);
    const body = all.json() as { available: number; locations: Array<{ location: string }> };
    assert.equal(body.available, 10);
    assert.deepEqual(
      body.locations.map((l) => l.location),
      [LOC, 'STORE-BER-01'],
    );
    const one = await app.call('GET', `/v1/availability?sku=SKU-B&location=${LOC}`, {
      key: reader,
    });
    assert.equal((one.json() as { available: number }).available, 7);
    const none = await app.call('GET', '/v1/availability?sku=NEVER-SEEN', { key: reader });
    assert.deepEqual(none.json(), { sku: 'NEVER-SEEN', available: 0, locations: [] });
    const missing = await app.call('GET', '/v1/availability', { key: reader });
    assert.equal(missing.status, 400);
    assert.match(missing.text, /sku/);
    const query = await app.call('POST', '/v1/availability/query', {
      key: reader,
      body: { items: [{ sku: 'SKU-A' }, { sku: 'SKU-B', location: 'STORE-BER-01' }, { sku: 'X' }] },
    });
    assert.equal(query.status, 200, query.text);
    const items = (query.json() as { items: Array<{ sku: string; available: number }> }).items;
    assert.deepEqual(
      items.map((i) => [i.sku, i.available]),
      [
        ['SKU-A', 35],
        ['SKU-B', 3],
        ['X', 0],
      ],
    );
    const tooMany = await app.call('POST', '/v1/availability/query', {
      key: reader,
      body: { items: Array.from({ length: 1001 }, (_, i) => ({ sku: `S${i}` })) },
    });
    assert.equal(tooMany.status, 400);
    const forbidden = await app.call('POST', '/v1/reservations', {
      key: reader,
      body: { orderId: 'o', location: LOC, lines: [{ sku: 'SKU-A', quantity: 1 }] },
    });
    assert.equal(forbidden.status, 403);
  });

  test('reservations: all lines or none, 409 with what is available, idempotent per order', async () => {
    const ok = await app.call('POST', '/v1/reservations', {
      key: ingest,
      body: {
        orderId: 'order-1',
        location: LOC,
        lines: [
          { sku: 'SKU-A', quantity: 30 },
          { sku: 'SKU-B', quantity: 2 },
        ],
      },
    });
    assert.equal(ok.status, 201, ok.text);
    const reservations = (ok.json() as { reservations: Array<{ sku: string; quantity: number }> })
      .reservations;
    assert.deepEqual(
      reservations.map((r) => [r.sku, r.quantity]),
      [
        ['SKU-A', 30],
        ['SKU-B', 2],
      ],
    );
    const replay = await app.call('POST', '/v1/reservations', {
      key: ingest,
      body: {
        orderId: 'order-1',
        location: LOC,
        lines: [
          { sku: 'SKU-A', quantity: 30 },
          { sku: 'SKU-B', quantity: 2 },
        ],
      },
    });
    assert.equal(replay.status, 200);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    const short = await app.call('POST', '/v1/reservations', {
      key: ingest,
      body: {
        orderId: 'order-2',
        location: LOC,
        lines: [
          { sku: 'SKU-B', quantity: 1 },
          { sku: 'SKU-A', quantity: 6 },
        ],
      },
    });
    assert.equal(short.status, 409, short.text);
    assert.match(short.headers.get('content-type') ?? '', /application\/problem\+json/);
    const problem = short.json() as {
      type: string;
      available: number;
      short: Array<{ sku: string; available: number; requested: number }>;
    };
    assert.match(problem.type, /insufficient-stock$/);
    assert.equal(problem.available, 5);
    assert.deepEqual(problem.short, [{ sku: 'SKU-A', requested: 6, available: 5 }]);
    // Nothing of order-2 is held: SKU-B still has 5 after order-1's 2.
    const b = await app.call('GET', `/v1/availability?sku=SKU-B&location=${LOC}`, { key: reader });
    assert.equal((b.json() as { available: number }).available, 5);
    const bad = await app.call('POST', '/v1/reservations', {
      key: ingest,
      body: { orderId: 'order-3', location: LOC, lines: [{ sku: 'SKU-A', quantity: 0 }] },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /quantity/);
    const past = await app.call('POST', '/v1/reservations', {
      key: ingest,
      body: {
        orderId: 'order-3',
        location: LOC,
        lines: [{ sku: 'SKU-A', quantity: 1 }],
        expiresAt: '2020-01-01T00:00:00Z',
      },
    });
    assert.equal(past.status, 400);
    assert.match(past.text, /expiresAt/);
  });

  test('a reservation over the API and its expiry publish inventory.availability_changed', async () => {
    const seeded = await app.call('POST', '/v1/inventory/adjustments', {
      key: ingest,
      body: adjustmentData('SKU-EV', LOC, 1, { count: 10 }),
    });
    assert.equal(seeded.status, 202, seeded.text);
    await eventually(async () => (await onHand(app, 'SKU-EV')) === 10, 'SKU-EV counted');
    const events = async () =>
      (
        await app.app.store.query(
          "SELECT payload FROM messages WHERE type = 'com.middlemart.inventory.availability_changed.v1' ORDER BY seq",
        )
      )
        .map(
          (r) =>
            app.app.engine.readPayload(r.payload) as {
              data: { sku: string; available: number; reserved: number };
            },
        )
        .filter((e) => e.data.sku === 'SKU-EV')
        .map((e) => [e.data.available, e.data.reserved]);
    const before = (await events()).length;
    const held = await app.call('POST', '/v1/reservations', {
      key: ingest,
      body: {
        orderId: 'order-ev',
        location: LOC,
        lines: [{ sku: 'SKU-EV', quantity: 4 }],
        expiresAt: new Date(Date.now() + 1500).toISOString(),
      },
    });
    assert.equal(held.status, 201, held.text);
    // Committed with the reservation: the event is there at once.
    assert.deepEqual((await events()).slice(before), [[6, 4]]);
    // The expiry sweep (every second) gives the units back and says so.
    await eventually(
      async () =>
        JSON.stringify((await events()).slice(before)) ===
        JSON.stringify([
          [6, 4],
          [10, 0],
        ]),
      'the expiry published',
      10_000,
    );
  });

  test('out-of-order, duplicate and late adjustments converge to the in-order on-hand', async () => {
    const random = seededRandom(6);
    const skus = ['CONV-1', 'CONV-2', 'CONV-3'];
    const expected = new Map<string, number>();
    const sent: unknown[] = [];
    for (const sku of skus) {
      let stock = 0;
      const events = [];
      for (let seq = 1; seq <= 60; seq++) {
        if (seq % 20 === 0) {
          stock = 100 + seq;
          events.push(adjustmentData(sku, LOC, seq, { count: stock }));
        } else {
          const delta =
            random() < 0.5 ? -1 - Math.floor(random() * 3) : 1 + Math.floor(random() * 4);
          stock += delta;
          events.push(adjustmentData(sku, LOC, seq, { delta }));
        }
      }
      expected.set(sku, stock);
      // Duplicates of a third of them, then everything shuffled; a few held back to arrive late.
      const dupes = events.filter((_, i) => i % 3 === 0);
      sent.push(...shuffle([...events, ...dupes], random));
    }
    const late = sent.splice(0, 15);
    for (let i = 0; i < sent.length; i += 50) {
      const res = await app.call('POST', '/v1/inventory/adjustments', {
        key: ingest,
        body: { adjustments: sent.slice(i, i + 50) },
      });
      assert.equal(res.status, 202, res.text);
    }
    await eventually(() => queueEmpty(app), 'adjustments processed');
    for (const a of late) {
      const res = await app.call('POST', '/v1/inventory/adjustments', { key: ingest, body: a });
      assert.equal(res.status, 202, res.text);
    }
    await eventually(() => queueEmpty(app), 'late adjustments processed');
    for (const sku of skus) assert.equal(await onHand(app, sku), expected.get(sku), sku);
  });
});

// ---- flash sale ------------------------------------------------------------------------------

const UNITS = 500;
const ATTEMPTS = Number(process.env.INVENTORY_FLASH_ATTEMPTS ?? 10_000);
const IN_FLIGHT = 128;
const FLASH_SKU = 'FLASH-1';

async function flashSale(
  targets: Array<{ url: string }>,
  key: string,
  watch: InventoryApp,
): Promise<{ reserved: number; refused: number; other: string[]; minAtp: number }> {
  let next = 0;
  let reserved = 0;
  let refused = 0;
  const other: string[] = [];
  let done = false;
  let minAtp = Number.POSITIVE_INFINITY;
  const watcher = (async () => {
    for (let i = 0; i < 100_000 && !done; i++) {
      const r = await watch.app.store.query(
        'SELECT on_hand - reserved - safety_stock AS atp FROM inventory_positions WHERE sku = ? AND location = ?',
        [FLASH_SKU, LOC],
      );
      minAtp = Math.min(minAtp, Number(r[0]!.atp));
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= ATTEMPTS) return;
      const target = targets[i % targets.length]!;
      const res = await fetch(`${target.url}/v1/reservations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          orderId: `flash-${i}`,
          location: LOC,
          channel: 'web',
          lines: [{ sku: FLASH_SKU, quantity: 1 }],
        }),
      });
      const text = await res.text();
      if (res.status === 201) reserved++;
      else if (res.status === 409) {
        refused++;
        assert.equal((JSON.parse(text) as { available: number }).available, 0);
      } else other.push(`${res.status} ${text.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  done = true;
  await watcher;
  return { reserved, refused, other, minAtp };
}

async function stockFlashSku(app: InventoryApp, key: string): Promise<void> {
  const res = await app.call('POST', '/v1/inventory/adjustments', {
    key,
    body: adjustmentData(FLASH_SKU, LOC, 1, { count: UNITS }),
  });
  assert.equal(res.status, 202, res.text);
  await eventually(async () => (await onHand(app, FLASH_SKU)) === UNITS, 'flash stock');
}

async function assertFlashOutcome(
  app: InventoryApp,
  r: Awaited<ReturnType<typeof flashSale>>,
): Promise<void> {
  assert.deepEqual(r.other, []);
  assert.equal(r.reserved, UNITS);
  assert.equal(r.refused, ATTEMPTS - UNITS);
  assert.ok(r.minAtp >= 0, `available fell to ${r.minAtp}`);
  const p = await app.app.store.query(
    'SELECT on_hand, reserved FROM inventory_positions WHERE sku = ? AND location = ?',
    [FLASH_SKU, LOC],
  );
  assert.equal(Number(p[0]!.on_hand), UNITS);
  assert.equal(Number(p[0]!.reserved), UNITS);
  const active = await app.app.store.query(
    "SELECT COUNT(*) AS n FROM inventory_reservations WHERE sku = ? AND status = 'active'",
    [FLASH_SKU],
  );
  assert.equal(Number(active[0]!.n), UNITS);
  const leftovers = await app.app.store.query(
    "SELECT COUNT(*) AS n FROM inventory_reservations WHERE sku = ? AND status <> 'active'",
    [FLASH_SKU],
  );
  assert.equal(Number(leftovers[0]!.n), 0, 'a refused order leaves nothing behind');
}

describe('flash sale over HTTP', () => {
  test(`SQLite, one process: ${ATTEMPTS} attempts for ${UNITS} units`, async () => {
    const app = await startInventoryApp({});
    try {
      const key = await app.key(['channel']);
      await stockFlashSku(app, key);
      const r = await flashSale([{ url: app.url }], key, app);
      await assertFlashOutcome(app, r);
    } finally {
      await app.close();
    }
  });

  test(
    `PostgreSQL, two processes: ${ATTEMPTS} attempts for ${UNITS} units`,
    { skip: PG_URL ? false : 'MIDDLEMART_TEST_PG_URL not set' },
    async () => {
      const db: InventoryTestDb = await postgresDb();
      const app = await startInventoryApp({ db });
      let child: ChildProcess | undefined;
      try {
        child = spawn(
          process.execPath,
          ['--import', 'tsx', resolve('test/domains/inventory/fixtures/app-child.ts')],
          { env: { ...process.env, INV_STORE_URL: db.url }, stdio: ['pipe', 'pipe', 'inherit'] },
        );
        const lines = createInterface({ input: child.stdout! });
        const second = await new Promise<{ url: string }>((ok, fail) => {
          const timer = setTimeout(() => fail(new Error('second process did not start')), 60_000);
          lines.once('line', (line) => {
            clearTimeout(timer);
            ok(JSON.parse(line) as { url: string });
          });
          child!.once('exit', (code) => fail(new Error(`second process exited ${code}`)));
        });
        const key = await app.key(['channel']);
        await stockFlashSku(app, key);
        const r = await flashSale([{ url: app.url }, second], key, app);
        await assertFlashOutcome(app, r);
      } finally {
        if (child && child.exitCode === null) {
          const exited = new Promise((r) => child!.once('exit', r));
          child.stdin?.end();
          await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
          if (child.exitCode === null) child.kill('SIGKILL');
        }
        await app.close();
        await db.drop();
      }
    },
  );
});
