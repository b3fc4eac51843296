// Bulk: the `bulk-price-update` scenario's price calendar (PRICING_BULK_SIZE changes, default
// 5,000; the figure is 50,000) ends with every final price right on every channel,
// coalesced (only the newest price per SKU and channel is sent) and batched where the channel
// takes batches (store tills), within the shop's call budget (no 429 storm).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS } from '../../../src/sandbox/scenarios/scenarios.js';
import type { PriceV1 } from '../../../src/canonical/index.js';
import {
  STORE_GROUPS,
  assertFinalPrices,
  eventually,
  finalPrices,
  startPricingWorld,
} from './helpers.js';

const SIZE = Number(process.env.PRICING_BULK_SIZE ?? 5000);

void test(`${SIZE} price changes end with every final price right on every channel`, async (t) => {
  const w = await startPricingWorld({
    limits: {
      pos: { ratePerSecond: 500, burst: 500, concurrency: 16, timeoutMs: 60_000 },
      commerce: { ratePerSecond: 2, burst: 40, concurrency: 4, timeoutMs: 60_000 },
    },
  });
  t.after(() => w.stop());
  const ingest = await w.key(['channel']);
  const reader = await w.key(['channel']);
  const reader2 = await w.key(['operator']);
  const items = SCENARIOS['bulk-price-update']!.generate({
    seed: 3,
    size: SIZE,
    rate: 500,
    duration: SIZE / 500,
  });
  const batches = items.map(
    (i) => (i.native as { kind: 'price-changes'; changes: PriceV1[] }).changes,
  );
  assert.equal(batches.flat().length, SIZE);

  const expected = finalPrices(batches.flat());

  const started = Date.now();
  let next = 0;
  const post = async () => {
    while (next < batches.length) {
      const i = next++;
      const r = await w.call('POST', '/v1/prices/changes', {
        key: ingest,
        body: { changes: batches[i] },
        headers: { 'idempotency-key': `bulk-${i}` },
      });
      assert.equal(r.status, 202, r.text);
    }
  };
  await Promise.all([post(), post(), post(), post()]);
  const acceptedMs = Date.now() - started;
  // PRICING_BULK_PROGRESS=1 prints each channel's keys, acknowledged and waiting every 5 s.
  const progress = setInterval(() => {
    if (!process.env.PRICING_BULK_PROGRESS) return;
    void (async () => {
      const r = await w.call('GET', '/v1/prices/verification', { key: reader2 });
      const s = await w.app.engine.stats();
      console.log(
        `# ${Date.now() - started} ms`,
        JSON.stringify(
          r
            .json()
            .targets.map(
              (x: { channel: string; waiting: number; acknowledged: number; keys: number }) => [
                x.channel,
                x.keys,
                x.acknowledged,
                x.waiting,
              ],
            ),
        ),
        JSON.stringify(s.messages.byClass),
        JSON.stringify(s.deliveries.byDestination),
      );
    })();
  }, 5000);
  t.after(() => clearInterval(progress));

  const { shopSkus, tillKeys } = await assertFinalPrices(w, expected, reader);
  const doneMs = Date.now() - started;

  const commerceState = (await (
    await fetch(`${w.estate.systems.find((s) => s.id === 'commerce')!.url}/_sandbox/state`)
  ).json()) as {
    receivedTotals: Record<string, number>;
    counters: Record<string, number>;
  };
  const shopPuts = commerceState.receivedTotals.priceUpdates ?? 0;
  const shopChanges = batches
    .flat()
    .filter((p) => p.storeGroup === 'eu-stores' && p.sku <= 'MM-00060').length;
  const tillCalls = (await w.storeUpdates()).length;
  const posState = (await (
    await fetch(`${w.estate.systems.find((s) => s.id === 'pos')!.url}/_sandbox/state`)
  ).json()) as {
    receivedTotals: Record<string, number>;
  };
  const tillPuts = posState.receivedTotals.priceUpdates ?? 0;
  const tillPrices = tillKeys.reduce(
    (n, p) => n + (STORE_GROUPS as Record<string, string[]>)[p.storeGroup!]!.length,
    0,
  );
  console.log(
    `# bulk ${SIZE}: accepted in ${acceptedMs} ms, all channels final in ${doneMs} ms; shop: ${shopPuts} price calls for ${shopChanges} changes of ${shopSkus.length} SKUs (throttled ${commerceState.counters['admin.throttled'] ?? 0}); tills: ${tillPuts} calls for ${tillPrices} store prices (${tillCalls} recorded)`,
  );
  // Coalesced: the shop got far fewer calls than changes for its SKUs.
  assert.ok(shopPuts >= shopSkus.length);
  assert.ok(shopPuts < shopChanges, `coalesced: ${shopPuts} calls < ${shopChanges} changes`);
  // Batched: the tills got fewer calls than store prices.
  assert.ok(tillPuts < tillPrices, `batched: ${tillPuts} calls < ${tillPrices} store prices`);

  // Verification read the shop back: no mismatch.
  const v = await eventually(
    'the shop verified',
    async () => {
      const r = await w.call('GET', '/v1/prices/verification', { key: await w.key(['operator']) });
      const shop = (
        r.json().targets as Array<{ channel: string; unverified: number; waiting: number }>
      ).find((x) => x.channel === 'commerce');
      return shop && shop.unverified === 0 && shop.waiting === 0 ? r.json() : undefined;
    },
    60_000,
  );
  const shop = v.targets.find((x: { channel: string }) => x.channel === 'commerce');
  assert.equal(shop.mismatched, 0);
  assert.equal(shop.matched, shopSkus.length);
  // … and the tills: every store group with stores read back, none in mismatch.
  const tills = await eventually(
    'the tills verified',
    async () => {
      const r = await w.call('GET', '/v1/prices/verification', { key: await w.key(['operator']) });
      const pos = (
        r.json().targets as Array<{
          channel: string;
          unverified: number;
          waiting: number;
          matched: number;
          mismatched: number;
        }>
      ).find((x) => x.channel === 'pos');
      return pos && pos.unverified === 0 && pos.waiting === 0 ? pos : undefined;
    },
    60_000,
  );
  assert.equal(tills.mismatched, 0);
  assert.equal(tills.matched, tillKeys.length);
  const metrics = await fetch(`${w.url}/metrics`, {
    headers: { authorization: `Bearer ${await w.key(['operator'])}` },
  });
  assert.match(await metrics.text(), /middlemart_price_mismatches\{channel="commerce"\} 0/);
});
