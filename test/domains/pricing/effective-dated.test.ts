// A price change effective in 2 seconds reaches the storefront and the stores at that time, not
// before; a promotion reverts at its end; GET /v1/prices answers what shows at any moment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, price, startPricingWorld } from './helpers.js';

void test('an effective-dated change and a promotion reach storefront and stores on time', async (t) => {
  const w = await startPricingWorld();
  t.after(() => w.stop());
  const ingest = await w.key(['channel']);
  const reader = await w.key(['channel']);
  const sku = 'MM-00004';
  const before = await w.shopPrice(sku);
  assert.ok(before, 'the shop sells the SKU');

  // The regular price now (so the channels show it), then a change in 2 s, and a promotion from
  // 4 s to 6 s.
  const t0 = Date.now();
  const regular = price(sku, 5000, { storeGroup: 'eu-stores', from: t0 - 60_000 });
  const change = price(sku, 4500, { storeGroup: 'eu-stores', from: t0 + 2000 });
  const promoFrom = t0 + 4000;
  const promoUntil = t0 + 6000;
  const promotion = price(sku, 4500, {
    storeGroup: 'eu-stores',
    sale: 3600,
    from: promoFrom,
    until: promoUntil,
    promotionId: 'PROMO-SPRING',
  });
  const res = await w.call('POST', '/v1/prices/changes', {
    key: ingest,
    body: { changes: [regular, change, promotion] },
    headers: { 'idempotency-key': 'calendar-1' },
  });
  assert.equal(res.status, 202, res.text);
  assert.equal(res.json().changes, 3);

  // The regular price shows first (well before the change).
  await eventually(
    'the regular price on the shop',
    async () => (await w.shopPrice(sku))?.price === 5000,
  );
  // The tills are another channel: they get the regular price on their own schedule.
  const storeUpdatesBefore = await eventually('the regular price at the stores', async () => {
    const n = (await w.storeUpdates()).filter((u) => u.storeId === 'store-001').length;
    return n >= 1 ? n : undefined;
  });

  // Not before the effective time: sample until just before it.
  while (Date.now() < t0 + 1800) {
    assert.equal((await w.shopPrice(sku))?.price, 5000, 'the change is not shown before its time');
    await new Promise((r) => setTimeout(r, 50));
  }
  await eventually(
    'the change on the shop',
    async () => (await w.shopPrice(sku))?.price === 4500,
    5000,
  );
  const changedAt = Date.now();
  assert.ok(changedAt >= t0 + 2000, 'not before the effective time');
  const storeUpdates = await eventually('the change at the stores', async () => {
    const n = (await w.storeUpdates()).filter((u) => u.storeId === 'store-001').length;
    return n > storeUpdatesBefore ? n : undefined;
  });
  assert.ok(storeUpdates > storeUpdatesBefore);

  // The promotion: sale price with the list price as compare-at, then back at its end.
  await eventually(
    'the promotion on the shop',
    async () => {
      const p = await w.shopPrice(sku);
      return p?.price === 3600 && p.compareAt === 4500;
    },
    8000,
  );
  assert.ok(Date.now() >= promoFrom, 'the promotion starts at its time');
  await eventually(
    'the promotion ends',
    async () => {
      const p = await w.shopPrice(sku);
      return p?.price === 4500 && p.compareAt === null;
    },
    8000,
  );
  assert.ok(Date.now() >= promoUntil, 'the promotion ends at its end, not before');

  // What shows at any moment.
  const at = async (ms: number, channel = 'commerce', group?: string) => {
    const q = new URLSearchParams({ sku, channel, at: new Date(ms).toISOString() });
    if (group) q.set('storeGroup', group);
    const r = await w.call('GET', `/v1/prices?${q.toString()}`, { key: reader });
    assert.equal(r.status, 200, r.text);
    return r.json();
  };
  assert.equal((await at(t0)).price.listPrice.amount, 5000);
  assert.equal((await at(t0 + 2500)).price.listPrice.amount, 4500);
  const promo = await at(t0 + 5000);
  assert.equal(promo.price.salePrice.amount, 3600);
  assert.equal(promo.price.promotionId, 'PROMO-SPRING');
  assert.equal((await at(t0 + 7000)).price.salePrice, undefined);
  assert.equal((await at(t0 + 5000, 'pos', 'eu-stores')).price.salePrice.amount, 3600);
  assert.equal(
    (await at(t0 + 5000, 'pos', 'us-stores')).price,
    null,
    'another store group has no price',
  );
  const bad = await w.call('GET', `/v1/prices?sku=${sku}&channel=pos`, { key: reader });
  assert.equal(bad.status, 400);
  assert.match(bad.text, /storeGroup/);
  const unknown = await w.call('GET', `/v1/prices?sku=${sku}&channel=fax`, { key: reader });
  assert.equal(unknown.status, 400);
  assert.match(unknown.text, /querystring.channel/);

  // The read-back found the shop showing what it acknowledged.
  const verification = await eventually('verification of the shop', async () => {
    const r = await w.call('GET', '/v1/prices/verification', { key: await w.key(['operator']) });
    const shop = (
      r.json().targets as Array<{ channel: string; matched: number; unverified: number }>
    ).find((x) => x.channel === 'commerce');
    return shop && shop.matched >= 1 && shop.unverified === 0 ? r.json() : undefined;
  });
  const shop = verification.targets.find((x: { channel: string }) => x.channel === 'commerce');
  assert.equal(shop.mismatched, 0);
});
