// Bulk price distribution must not starve orders: the `steady` scenario's order postings to the
// ERP (accept → ERP acknowledged, the engine's end-to-end delivery time) keep their p99 within
// 2x of a run without the bulk load, and every final price ends right on every channel. Timing-sensitive and long, so opt-in: PRICING_P99=1
// (PRICING_BULK_SIZE changes, default 20,000; PRICING_STEADY_SECONDS, default 20).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SCENARIOS, eventsTransport, runTraffic } from '../../../src/sandbox/scenarios/index.js';
import type { PriceV1 } from '../../../src/canonical/index.js';
import { runInventoryReconciliation } from '../../../src/wiring/inventory.js';
import { assertFinalPrices, finalPrices, startPricingWorld } from './helpers.js';

const ENABLED = process.env.PRICING_P99 === '1';
const SIZE = Number(process.env.PRICING_BULK_SIZE ?? 20_000);
const SECONDS = Number(process.env.PRICING_STEADY_SECONDS ?? 20);

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.ceil(0.99 * sorted.length)) - 1]!;
}

void test(
  'order posting p99 during a bulk price load stays within 2x of without it',
  { skip: ENABLED ? false : 'set PRICING_P99=1 to run (timing-sensitive, minutes long)' },
  async (t) => {
    const w = await startPricingWorld({
      limits: {
        commerce: { ratePerSecond: 2, burst: 40, concurrency: 4, timeoutMs: 60_000 },
        pos: { ratePerSecond: 500, burst: 500, concurrency: 16, timeoutMs: 60_000 },
      },
    });
    t.after(() => w.stop());
    const key = await w.key(['channel']);
    // The ledger starts from the ERP's stock, as a deployment does (reconcile --fix): orders
    // then reserve and post instead of waiting as backorders.
    await runInventoryReconciliation({
      config: w.app.config,
      store: w.app.store,
      services: w.app.services,
      fix: true,
    });
    const erps = new Set(['cloud-erp', 'legacy-erp']);
    let samples: number[] = [];
    w.app.engine.events.on('delivered', (e) => {
      if (erps.has(e.destination)) samples.push(e.endToEndMs);
    });
    const steady = async (seed: number) => {
      const items = SCENARIOS.steady!.generate({ seed, rate: 20, duration: SECONDS });
      return runTraffic({
        target: w.url,
        transport: eventsTransport(),
        items,
        rate: 20,
        concurrency: 8,
        maxDurationMs: SECONDS * 1000 + 10_000,
        apiKey: key,
      });
    };
    const settle = () => new Promise((r) => setTimeout(r, 5000));

    const quiet = await steady(11);
    await settle();
    const quietP99 = p99(samples);
    const quietP50 = [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)] ?? 0;
    const quietCount = samples.length;
    samples = [];

    const prices = SCENARIOS['bulk-price-update']!.generate({
      seed: 5,
      size: SIZE,
      rate: 500,
      duration: SIZE / 500,
    });
    const bulk = (async () => {
      for (const [i, item] of prices.entries()) {
        const changes = (item.native as { changes: PriceV1[] }).changes;
        await w.call('POST', '/v1/prices/changes', {
          key,
          body: { changes },
          headers: { 'idempotency-key': `p99-bulk-${i}` },
        });
      }
    })();
    const loaded = await steady(12);
    await bulk;
    await settle();
    const loadedP99 = p99(samples);
    const p50 = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? 0;
    console.log(
      `# order posting p50 ${quietP50} / ${p50(samples)} ms; p99: ${quietP99} ms without (${quietCount} postings, ${quiet.accepted}/${quiet.sent} requests accepted), ${loadedP99} ms during ${SIZE} price changes (${samples.length} postings, ${loaded.accepted}/${loaded.sent} accepted)`,
    );
    assert.ok(quietCount > 0, 'orders were posted to the ERP');
    assert.ok(samples.length > 0, 'orders were posted during the bulk load');
    assert.ok(
      loadedP99 <= 2 * Math.max(quietP99, 50),
      `p99 ${loadedP99} ms within 2x of ${quietP99} ms`,
    );
    // Every final price right on the shop and on every till.
    const expected = finalPrices(
      prices.flatMap((item) => (item.native as { changes: PriceV1[] }).changes),
    );
    const finalStarted = Date.now();
    await assertFinalPrices(w, expected, key, 600_000);
    console.log(
      `# every final price on every channel ${Date.now() - finalStarted} ms after the run`,
    );
  },
);
