// The pricing rules without HTTP: precedence between overlapping changes, boundaries, approval
// rules, target scopes, the price file parser; and the calendar's SQL (record, resolve at
// boundaries, coalesced push planning, acknowledgement) on SQLite and PostgreSQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  acknowledgePricePush,
  approvalReasons,
  endPromotion,
  priceAt,
  nextBoundary,
  parsePriceCsv,
  planPricePushes,
  pricingMigrations,
  recordChanges,
  resolveDuePrices,
  resolvePrice,
  scopesOf,
  syncStateOf,
  type PriceChange,
  type PriceTarget,
} from '../../../src/domains/pricing/index.js';
import { BACKENDS } from '../../store/backends.js';

let n = 0;
function change(
  o: Partial<PriceChange> & { listMinor: number; effectiveFrom: number },
): PriceChange {
  n++;
  return {
    id: `c${n}`,
    sku: 'SKU-1',
    currency: 'EUR',
    includesTax: true,
    ingestedAt: 1000,
    ingestIndex: n,
    storeGroup: 'eu',
    ...o,
  };
}

void test('precedence: promotion, lower promotional price, specificity, later start, later ingest', () => {
  const base = change({ listMinor: 5000, effectiveFrom: 0 });
  const later = change({ listMinor: 4800, effectiveFrom: 100 });
  assert.equal(resolvePrice([base, later], 50)?.listMinor, 5000);
  assert.equal(
    resolvePrice([base, later], 100)?.listMinor,
    4800,
    'the later start wins from its start',
  );
  const specific = change({ listMinor: 4700, effectiveFrom: 0, channel: 'store' });
  assert.equal(
    resolvePrice([later, specific], 200)?.listMinor,
    4700,
    'specific beats a later start',
  );
  const promoA = change({
    listMinor: 4800,
    saleMinor: 4000,
    effectiveFrom: 150,
    effectiveUntil: 300,
    promotionId: 'A',
  });
  const promoB = change({
    listMinor: 4800,
    saleMinor: 3800,
    effectiveFrom: 200,
    effectiveUntil: 250,
    promotionId: 'B',
  });
  const all = [base, later, specific, promoA, promoB];
  assert.equal(resolvePrice(all, 160)?.promotionId, 'A');
  assert.equal(resolvePrice(all, 220)?.promotionId, 'B', 'the lower promotional price wins');
  assert.equal(resolvePrice(all, 260)?.promotionId, 'A', 'A again after B ends');
  assert.equal(resolvePrice(all, 300)?.listMinor, 4700, 'reverts at the end (exclusive)');
  assert.equal(resolvePrice(all, 300)?.saleMinor, undefined);
  const twin = change({ listMinor: 4600, effectiveFrom: 100, ingestedAt: 2000 });
  assert.equal(resolvePrice([later, twin], 100)?.listMinor, 4600, 'the later ingested wins a tie');
  assert.equal(resolvePrice([base], -1), undefined, 'nothing before the first start');
  assert.equal(nextBoundary(all, 160), 200);
  assert.equal(nextBoundary(all, 250), 300);
  assert.equal(nextBoundary(all, 300), undefined);
});

void test('approval rules: drop beyond the threshold, promotion beyond its size', () => {
  const rules = { maxDropPercent: 30, maxPromotionDiscountPercent: 40 };
  const current = { currency: 'EUR', listMinor: 10000 };
  assert.deepEqual(approvalReasons({ currency: 'EUR', listMinor: 7500 }, current, rules), []);
  assert.match(
    approvalReasons({ currency: 'EUR', listMinor: 6000 }, current, rules)[0]!,
    /drop of 40\.0%/,
  );
  assert.match(
    approvalReasons({ currency: 'EUR', listMinor: 10000, saleMinor: 5000 }, undefined, rules)[0]!,
    /50\.0% below list exceeds 40%/,
  );
  assert.deepEqual(
    approvalReasons({ currency: 'EUR', listMinor: 1 }, current, {}),
    [],
    'no rules, no holds',
  );
});

void test('scopes: a web shop follows its price zone, tills one scope per store group', () => {
  const shop: PriceTarget = {
    system: 'shop',
    channels: ['web'],
    storeGroups: ['eu'],
    scoped: false,
  };
  const tills: PriceTarget = {
    system: 'pos',
    channels: ['store'],
    storeGroups: ['eu', 'us'],
    scoped: true,
  };
  assert.deepEqual(scopesOf({ storeGroup: 'eu' }, shop), ['']);
  assert.deepEqual(scopesOf({ storeGroup: 'us' }, shop), []);
  assert.deepEqual(scopesOf({ channel: 'web' }, shop), ['']);
  assert.deepEqual(scopesOf({ channel: 'store' }, shop), []);
  assert.deepEqual(scopesOf({ storeGroup: 'us' }, tills), ['us']);
  assert.deepEqual(scopesOf({ channel: 'store' }, tills), ['eu', 'us']);
  assert.deepEqual(scopesOf({ channel: 'web', storeGroup: 'eu' }, tills), []);
});

void test('the price file: decimals by currency, every bad line named', () => {
  const ok = parsePriceCsv(
    'sku,store_group,currency,list_price,sale_price,effective_from\r\nA-1,eu,EUR,12.50,9.99,2026-01-01T00:00:00Z\r\nB-2,eu,JPY,500,,2026-01-01T00:00:00Z\r\n',
  );
  assert.ok(ok.ok);
  assert.equal(ok.changes[0]!.listMinor, 1250);
  assert.equal(ok.changes[0]!.saleMinor, 999);
  assert.equal(ok.changes[1]!.listMinor, 500);
  const bad = parsePriceCsv(
    'sku,store_group,currency,list_price,effective_from\nA-1,eu,EUR,12.505,2026-01-01T00:00:00Z\nB-2,eu,XXX,1,2026-01-01T00:00:00Z\n"C\n3",eu,EUR,1,2026-01-01T00:00:00Z\nD-4,eu,EUR,1\n',
  );
  assert.ok(!bad.ok);
  assert.deepEqual(
    bad.errors.map((e) => e.path),
    ['line 2: list_price', 'line 3: currency', 'line 4: sku', 'line 6'],
  );
  const header = parsePriceCsv('sku,price\nA,1\n');
  assert.ok(!header.ok);
  assert.match(header.errors.map((e) => e.message).join(' '), /missing column currency/);
});

for (const backend of BACKENDS) {
  void test(
    `the calendar on ${backend.name}: resolve at boundaries, push the newest version once`,
    { skip: backend.skip },
    async (t) => {
      const db = await backend.create();
      const store = await db.open();
      t.after(async () => {
        await store.close();
        await db.drop();
      });
      await store.migrate(pricingMigrations(store.dialect));
      const shop: PriceTarget = {
        system: 'shop',
        channels: ['web'],
        storeGroups: ['eu'],
        scoped: false,
      };
      const targets = new Map([['shop', shop]]);
      const t0 = 1_000_000;
      const sku = 'SKU-9';
      await store.transaction((tx) =>
        recordChanges(
          tx,
          [
            {
              sku,
              storeGroup: 'eu',
              currency: 'EUR',
              listMinor: 5000,
              includesTax: true,
              effectiveFrom: t0 - 10,
            },
            {
              sku,
              storeGroup: 'eu',
              currency: 'EUR',
              listMinor: 5200,
              includesTax: true,
              effectiveFrom: t0 - 5,
            },
            {
              sku,
              storeGroup: 'eu',
              currency: 'EUR',
              listMinor: 4000,
              includesTax: true,
              effectiveFrom: t0 + 1000,
            },
            {
              sku,
              storeGroup: 'eu',
              currency: 'EUR',
              listMinor: 100,
              includesTax: true,
              effectiveFrom: t0 + 2000,
            },
          ],
          {
            submission: 's1',
            source: 'test',
            ingestedAt: t0,
            rules: { maxDropPercent: 50 },
            targets: [shop],
            now: t0,
          },
        ),
      );
      // Resolved now: the newest price in effect only (5200), due again at the next boundary.
      await store.transaction((tx) =>
        resolveDuePrices(tx, targets, { now: t0, leadMs: 0, limit: 100 }),
      );
      let s = await syncStateOf(store, 'shop', '', sku);
      assert.equal(s?.latestVersion, 1);
      assert.equal(s?.latest?.listMinor, 5200);
      const deliveries: Array<{ idempotencyKey?: string; payload: unknown }> = [];
      const plan = (now: number) =>
        store.transaction((tx) =>
          planPricePushes(
            {
              ...tx,
              dialect: tx.dialect,
              query: tx.query.bind(tx),
              execute: tx.execute.bind(tx),
              deliver: async (d) => {
                deliveries.push(d);
                return 'd';
              },
            },
            'shop',
            { now, calls: 10, leaseMs: 60_000, priority: 'deferrable' },
          ),
        );
      assert.equal(await plan(t0), 1);
      assert.equal(await plan(t0), 0, 'one push in flight per key');
      // Not before its time: nothing due just before the boundary.
      const early = await store.transaction((tx) =>
        resolveDuePrices(tx, targets, { now: t0 + 999, leadMs: 0, limit: 100 }),
      );
      assert.equal(early.resolved, 0);
      await store.transaction((tx) =>
        resolveDuePrices(tx, targets, { now: t0 + 1000, leadMs: 0, limit: 100 }),
      );
      s = await syncStateOf(store, 'shop', '', sku);
      assert.equal(s?.latest?.listMinor, 4000);
      assert.equal(await plan(t0 + 1000), 0, 'the newer version waits for the live push');
      await acknowledgePricePush(
        store,
        { target: 'shop', scope: '', sku },
        { version: 1, listed: true, currency: 'EUR', listPriceMinor: 5200 },
        t0 + 1001,
      );
      assert.equal(await plan(t0 + 1002), 1, 'then only the newest is sent');
      const last = deliveries[deliveries.length - 1]!.payload as {
        version: number;
        listPriceMinor: number;
      };
      assert.equal(last.version, 2);
      assert.equal(last.listPriceMinor, 4000);
      // The held 98% drop never changes the price.
      await store.transaction((tx) =>
        resolveDuePrices(tx, targets, { now: t0 + 2000, leadMs: 0, limit: 100 }),
      );
      s = await syncStateOf(store, 'shop', '', sku);
      assert.equal(s?.latest?.listMinor, 4000);
      const held = await store.query('SELECT status FROM pricing_changes WHERE list_minor = 100');
      assert.equal(held[0]?.status, 'pending');
    },
  );
}

for (const backend of BACKENDS) {
  void test(
    `a withdrawn promotion stops at once on ${backend.name}`,
    { skip: backend.skip },
    async (t) => {
      const db = await backend.create();
      const store = await db.open();
      t.after(async () => {
        await store.close();
        await db.drop();
      });
      await store.migrate(pricingMigrations(store.dialect));
      const tills: PriceTarget = {
        system: 'pos',
        channels: ['store'],
        storeGroups: ['eu'],
        scoped: true,
      };
      const t0 = 5_000_000;
      await store.transaction((tx) =>
        recordChanges(
          tx,
          [
            {
              sku: 'S',
              storeGroup: 'eu',
              currency: 'EUR',
              listMinor: 1000,
              includesTax: true,
              effectiveFrom: t0 - 100,
            },
            {
              sku: 'S',
              storeGroup: 'eu',
              currency: 'EUR',
              listMinor: 1000,
              saleMinor: 700,
              includesTax: true,
              effectiveFrom: t0 - 50,
              effectiveUntil: t0 + 10_000,
              promotionId: 'P1',
            },
            {
              sku: 'S',
              storeGroup: 'eu',
              currency: 'EUR',
              listMinor: 1000,
              saleMinor: 600,
              includesTax: true,
              effectiveFrom: t0 + 20_000,
              promotionId: 'P1',
            },
          ],
          { submission: 's', source: 'test', ingestedAt: t0, rules: {}, targets: [tills], now: t0 },
        ),
      );
      assert.equal((await priceAt(store, tills, 'eu', 'S', t0)).price?.saleMinor, 700);
      assert.equal(
        await store.transaction((tx) =>
          endPromotion(tx, 'P1', t0 + 1, { targets: [tills], now: t0 + 1 }),
        ),
        2,
      );
      assert.equal(
        (await priceAt(store, tills, 'eu', 'S', t0)).price?.saleMinor,
        700,
        'history keeps what showed',
      );
      assert.equal(
        (await priceAt(store, tills, 'eu', 'S', t0 + 2)).price?.saleMinor,
        undefined,
        'ended',
      );
      assert.equal(
        (await priceAt(store, tills, 'eu', 'S', t0 + 30_000)).price?.saleMinor,
        undefined,
        'the later part is withdrawn',
      );
      const due = await store.query(
        "SELECT due_at FROM pricing_sync WHERE target = 'pos' AND scope = 'eu' AND sku = 'S'",
      );
      assert.ok(Number(due[0]?.due_at) <= t0 + 1, 'the key is resolved again');
    },
  );
}
