// The tills are read back too: a price changed at a till behind Middlemart's back, between the
// till's acknowledgement and the read-back, is reported as a mismatch (report and metric), while
// the store that kept the pushed price matches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, price, startPricingWorld } from './helpers.js';

void test('till read-back: a price altered at a store is a mismatch', async (t) => {
  const w = await startPricingWorld({
    pricing: { verification: { delayMs: 1500, intervalMs: 200 } },
  });
  t.after(() => w.stop());
  const ingest = await w.key(['channel']);
  const operator = await w.key(['operator']);
  const sku = 'MM-00007';
  const res = await w.call('POST', '/v1/prices/changes', {
    key: ingest,
    body: { changes: [price(sku, 2500, { storeGroup: 'us-stores', from: Date.now() - 1000 })] },
    headers: { 'idempotency-key': 'till-verify-1' },
  });
  assert.equal(res.status, 202, res.text);
  // Acknowledged by the tills of us-stores (store-003).
  await eventually('acknowledged by the tills', async () => {
    const q = new URLSearchParams({ sku, channel: 'pos', storeGroup: 'us-stores' });
    const r = await w.call('GET', `/v1/prices?${q.toString()}`, { key: ingest });
    return r.json().acknowledged?.listPrice.amount === 2500 ? true : undefined;
  });
  // Someone changes the price at the till before the read-back.
  const pos = w.estate.systems.find((s) => s.id === 'pos')!.url;
  const put = await fetch(`${pos}/api/v1/stores/store-003/prices`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      prices: [
        { sku, currency: 'EUR', listPrice: '19.99', listPriceMinor: 1999, version: 1_000_000 },
      ],
    }),
  });
  assert.equal(put.status, 200);
  const pos2 = await eventually(
    'the till verified',
    async () => {
      const r = await w.call('GET', '/v1/prices/verification', { key: operator });
      const target = (
        r.json().targets as Array<{
          channel: string;
          mismatched: number;
          mismatches: Array<{ sku: string; storeGroup: string; observedListPrice: number }>;
        }>
      ).find((x) => x.channel === 'pos');
      return target && target.mismatched > 0 ? target : undefined;
    },
    20_000,
  );
  assert.equal(pos2.mismatched, 1);
  assert.deepEqual(
    pos2.mismatches.map((m) => [m.sku, m.storeGroup, m.observedListPrice]),
    [[sku, 'us-stores', 1999]],
  );
  const metrics = await fetch(`${w.url}/metrics`, {
    headers: { authorization: `Bearer ${operator}` },
  });
  assert.match(await metrics.text(), /middlemart_price_mismatches\{channel="pos"\} 1/);
});
