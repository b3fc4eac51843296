// Coalescing availability for a slow channel: many adjustments for many SKUs against the sandbox
// commerce platform (Shopify-compatible, leaky bucket of 40 draining at 2 calls/s; the channel's
// configured limit is 2 calls/s) → every SKU's final availability on the shop is right, far fewer
// calls than changes are made, and no SKU ever goes back to an older value after a newer one.
//
// Size: INVENTORY_COALESCE_SKUS (default 20) × INVENTORY_COALESCE_PER_SKU (default 100). The
// issue's full size is 500 × 100 = 50,000 adjustments; at 2 calls/s its final values alone need
// 250 s of channel budget.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCommerce } from '../../../src/sandbox/commerce/index.js';
import { adjustmentData, estateConfig, eventually, startInventoryApp } from './app.js';

const SKUS = Number(process.env.INVENTORY_COALESCE_SKUS ?? 20);
const PER_SKU = Number(process.env.INVENTORY_COALESCE_PER_SKU ?? 100);
const LOC = 'DC-EU-1';
const TOKEN = 'shpat_coalescing_test';

test(`coalescing: ${SKUS * PER_SKU} adjustments for ${SKUS} SKUs to a 2-calls/s channel`, async () => {
  const skus = Array.from({ length: SKUS }, (_, i) => `CO-${String(i + 1).padStart(4, '0')}`);
  const commerce = createCommerce({
    accessToken: TOKEN,
    bucket: { capacity: 40, leakPerSecond: 2 },
    shop: { skus, locations: ['Online warehouse'], initialStock: 0 },
  });
  // Every level the shop accepted, in the order it accepted them.
  const sets: Array<{ item: string; available: number }> = [];
  commerce.app.addHook('onResponse', async (request, reply) => {
    if (request.url.endsWith('/inventory_levels/set.json') && reply.statusCode === 200) {
      const body = request.body as { inventory_item_id: number; available: number };
      sets.push({ item: String(body.inventory_item_id), available: body.available });
    }
  });
  const shopUrl = await commerce.listen();
  const config = estateConfig(
    `version: 1
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
  - id: commerce
    kind: shopify
    baseUrl: ${shopUrl}
    credentials:
      accessToken: \${COMMERCE_TOKEN}
    limits:
      ratePerSecond: 2
      burst: 38
      concurrency: 4
inventory:
  channels:
    commerce:
      locationMap:
        ${LOC}: Online warehouse
`,
    { COMMERCE_TOKEN: TOKEN },
  );
  const app = await startInventoryApp({ config });
  const started = Date.now();
  try {
    const key = await app.key(['channel']);
    const all = [];
    for (let seq = 1; seq <= PER_SKU; seq++) {
      for (const sku of skus) {
        all.push(adjustmentData(sku, LOC, seq, { delta: 1 }, { at: Date.now() }));
      }
    }
    for (let i = 0; i < all.length; i += 1000) {
      const res = await app.call('POST', '/v1/inventory/adjustments', {
        key,
        body: { adjustments: all.slice(i, i + 1000) },
      });
      assert.equal(res.status, 202, res.text);
    }
    const location = commerce.shop.locations[0]!.id;
    const shown = (sku: string) =>
      commerce.shop.level(commerce.shop.variantBySku(sku)!.inventoryItemId, location)?.available;
    // Bounded by the channel's budget: one call per SKU at 2/s, plus generous slack.
    try {
      await eventually(
        async () => skus.every((sku) => shown(sku) === PER_SKU),
        'every SKU at its final availability on the shop',
        120_000 + SKUS * 1000,
        100,
      );
    } catch (err) {
      console.log({
        shown: skus.map((s) => shown(s)),
        sync: await app.app.store.query(
          'SELECT sku, latest_version, acked_version, sending_version FROM inventory_channel_sync',
        ),
        deliveries: await app.app.store.query(
          'SELECT status, last_status, last_error, COUNT(*) AS n FROM deliveries GROUP BY status, last_status, last_error',
        ),
        messages: await app.app.store.query(
          'SELECT type, status, COUNT(*) AS n FROM messages GROUP BY type, status',
        ),
      });
      throw err;
    }
    const elapsed = Date.now() - started;
    console.log(
      `# coalescing: ${all.length} adjustments, ${SKUS} SKUs, ${sets.length} channel calls, final after ${elapsed} ms`,
    );
    // Coalesced: far fewer calls than changes.
    assert.ok(sets.length < all.length / 5, `${sets.length} calls for ${all.length} changes`);
    // Never stale after fresh: per SKU, the values the shop accepted only rise.
    const lastByItem = new Map<string, number>();
    for (const s of sets) {
      const last = lastByItem.get(s.item) ?? -1;
      assert.ok(s.available > last, `item ${s.item}: ${s.available} after ${last}`);
      lastByItem.set(s.item, s.available);
    }
    // Middlemart knows the channel shows the newest version of every key.
    await eventually(
      async () =>
        Number(
          (
            await app.app.store.query(
              'SELECT COUNT(*) AS n FROM inventory_channel_sync WHERE channel = ? AND acked_version < latest_version',
              ['commerce'],
            )
          )[0]!.n,
        ) === 0,
      'every key acknowledged',
      30_000,
    );
    const metrics = await app.app.metrics.registry.getSingleMetricAsString(
      'middlemart_inventory_sync_lag_seconds',
    );
    assert.match(
      metrics,
      /middlemart_inventory_sync_lag_seconds_count\{channel="commerce"\} [1-9]/,
    );
  } finally {
    await app.close();
    await commerce.close();
  }
});
