// Store reconnect on the ledger side: a store that was offline uploads its buffered sales at
// once (accepted in its own sequence, in the `deferrable` class an offline upload is given);
// meanwhile another store keeps selling live and the web keeps reserving. Each SKU-location of
// the reconnecting store applies in the store's sequence and ends right; the live store's sales
// and the web's reservations are served before the backlog is through (not starved by it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventByName, makeEvent } from '../../../src/canonical/index.js';
import type { PriorityClass } from '../../../src/runtime/index.js';
import { AvailabilityLedger } from '../../../src/domains/inventory/index.js';
import {
  BASE_ESTATE,
  adjustmentData,
  estateConfig,
  eventually,
  startInventoryApp,
  type InventoryApp,
} from './app.js';

const ADJUSTED = eventByName('inventory.adjusted');
const BACKLOG = Number(process.env.INVENTORY_RECONNECT_SALES ?? 6000);
const SKUS = 20;

function accept(
  app: InventoryApp,
  data: ReturnType<typeof adjustmentData>,
  priority: PriorityClass,
) {
  const key = `${data.sourceSystem}/${data.sku}@${data.location}/${data.sourceSequence}`;
  return app.app.engine.accept({
    source: data.sourceSystem,
    idempotencyKey: key,
    requestHash: key,
    type: ADJUSTED.type,
    partitionKey: ADJUSTED.partitionKey(data),
    priority,
    payload: makeEvent('inventory.adjusted', data, { source: `/pos/${data.sourceSystem}` }),
  });
}

test('a reconnecting store applies in its sequence without starving other stores or the web', async () => {
  // The API alone first: the whole upload and the live traffic are queued before any worker
  // runs, so the order the engine serves them in is what this test observes.
  const app = await startInventoryApp({
    config: estateConfig(`${BASE_ESTATE}engine:\n  roles: [api]\n`),
  });
  let workersStarted = false;
  try {
    const key = await app.key(['channel']);
    const skus = Array.from({ length: SKUS }, (_, i) => `RC-${i}`);
    // Opening stock: both stores and the web's warehouse.
    const countedAt = Date.now() - 7_200_000;
    const count = (sku: string, location: string, units: number) =>
      adjustmentData(sku, location, 1, { count: units }, { source: 'erp', at: countedAt });
    const opening = [
      ...skus.map((s) => count(s, 'STORE-A', 10_000)),
      ...skus.map((s) => count(s, 'STORE-B', 100)),
    ];
    // The web's warehouse, stocked straight in the ledger.
    await app.app.store.transaction((tx) =>
      new AvailabilityLedger().applyAdjustment(tx, {
        sku: 'WEB-1',
        location: 'DC-EU-1',
        reason: 'cycle_count',
        count: 1000,
        sourceSystem: 'erp',
        sourceSequence: 1,
        sourceTimestamp: countedAt,
      }),
    );
    await Promise.all(opening.map((a) => accept(app, a, 'critical')));

    // Store A's buffered sales, uploaded in the store's own sequence (per SKU-location).
    const seq = new Map<string, number>();
    const sold = new Map<string, number>();
    const backlog = [];
    for (let i = 0; i < BACKLOG; i++) {
      const sku = skus[(i * 7) % SKUS]!;
      const n = (seq.get(sku) ?? 1) + 1;
      seq.set(sku, n);
      sold.set(sku, (sold.get(sku) ?? 0) + 1);
      backlog.push(
        adjustmentData(
          sku,
          'STORE-A',
          n,
          { delta: -1 },
          { source: 'pos-store-a', at: Date.now() - 3_600_000 + i },
        ),
      );
    }
    for (let i = 0; i < backlog.length; i += 500) {
      await Promise.all(backlog.slice(i, i + 500).map((a) => accept(app, a, 'deferrable')));
    }
    // Live: store B sells.
    const live = skus.map((s) =>
      adjustmentData(s, 'STORE-B', 2, { delta: -1 }, { source: 'pos-store-b', at: Date.now() }),
    );
    await Promise.all(live.map((a) => accept(app, a, 'standard')));
    app.app.engine.start();
    workersStarted = true;
    // The web reserves meanwhile: reservations are direct transactions (group-committed), not
    // queued messages, so the backlog cannot hold them back; they all succeed.
    const reservations = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        app.call('POST', '/v1/reservations', {
          key,
          body: {
            orderId: `web-${i}`,
            location: 'DC-EU-1',
            lines: [{ sku: 'WEB-1', quantity: 1 }],
          },
        }),
      ),
    );
    for (const r of reservations) assert.equal(r.status, 201, r.text);

    await eventually(
      async () => {
        const r = await app.app.store.query(
          "SELECT COUNT(*) AS n FROM messages WHERE status NOT IN ('done', 'dead')",
        );
        return Number(r[0]!.n) === 0;
      },
      'backlog applied',
      300_000,
      50,
    );

    // The store's sequence, per SKU-location, and the right on-hand.
    for (const sku of skus) {
      const log = await app.app.store.query(
        `SELECT source_sequence, outcome FROM inventory_adjustments
         WHERE sku = ? AND location = 'STORE-A' AND source_system = 'pos-store-a' ORDER BY id`,
        [sku],
      );
      const order = log.map((r) => Number(r.source_sequence));
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
        `${sku} applied in sequence`,
      );
      assert.ok(log.every((r) => r.outcome === 'applied'));
      const p = await app.app.store.query(
        "SELECT on_hand FROM inventory_positions WHERE sku = ? AND location = 'STORE-A'",
        [sku],
      );
      assert.equal(Number(p[0]!.on_hand), 10_000 - sold.get(sku)!);
    }
    // Not starved: store B's live sales (accepted after the whole upload) were applied before
    // the upload's last sale: the engine serves the live class first.
    const lastBacklog = await app.app.store.query(
      "SELECT MAX(id) AS id, MAX(recorded_at) AS at FROM inventory_adjustments WHERE source_system = 'pos-store-a'",
    );
    const liveIds = await app.app.store.query(
      "SELECT MAX(id) AS id FROM inventory_adjustments WHERE source_system = 'pos-store-b'",
    );
    assert.ok(
      Number(liveIds[0]!.id) < Number(lastBacklog[0]!.id),
      'store B was served while store A’s backlog was still being applied',
    );
  } finally {
    if (!workersStarted) app.app.engine.start();
    await app.close();
  }
});
