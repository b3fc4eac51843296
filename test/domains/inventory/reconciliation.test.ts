// Reconciliation finds every drift injected between an ERP snapshot and the ledger (and between
// a channel and the ledger), reports nothing when there is none, and its corrections close it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AvailabilityLedger,
  compareWithChannel,
  compareWithErp,
  correctionFor,
  positionsForReconciliation,
  type ErpStockLine,
} from '../../../src/domains/inventory/index.js';
import { BACKENDS, openInventoryStore, seededRandom } from './support.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');

for (const backend of BACKENDS) {
  describe(`reconciliation: ${backend.name}`, { skip: backend.skip }, () => {
    test('every injected drift is found, nothing when there is none, corrections close it', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const ledger = new AvailabilityLedger();
        const random = seededRandom(5);
        const snapshot: ErpStockLine[] = [];
        for (let i = 0; i < 60; i++) {
          const line = {
            sku: `SKU-${i}`,
            location: i % 2 ? 'DC-1' : 'STORE-1',
            onHand: Math.floor(random() * 50),
          };
          snapshot.push(line);
          await store.transaction((tx) =>
            ledger.applyAdjustment(tx, {
              ...line,
              reason: 'cycle_count',
              count: line.onHand,
              sourceSystem: 'erp',
              sourceSequence: 1,
              sourceTimestamp: T0,
            }),
          );
        }
        const snapshotAt = T0 + 60_000;
        const skus = snapshot.map((l) => l.sku);
        let positions = await positionsForReconciliation(store, skus);
        assert.deepEqual(
          compareWithErp(snapshot, positions, { snapshotAt, complete: true }).drifts,
          [],
        );

        // The ERP is altered behind Middlemart's back for 7 positions, one is new at the ERP.
        const altered = new Set([3, 9, 17, 22, 38, 41, 59]);
        const erp = snapshot.map((l, i) =>
          altered.has(i) ? { ...l, onHand: l.onHand + 1 + i } : l,
        );
        erp.push({ sku: 'SKU-NEW', location: 'DC-1', onHand: 4 });
        positions = await positionsForReconciliation(store, [...skus, 'SKU-NEW']);
        const report = compareWithErp(erp, positions, { snapshotAt, complete: true });
        assert.deepEqual(
          report.drifts.map((d) => d.sku).sort(),
          [...[...altered].map((i) => `SKU-${i}`), 'SKU-NEW'].sort(),
        );
        for (const d of report.drifts) assert.equal(d.difference, d.ledgerOnHand - d.erpOnHand);

        // A position that moved after the snapshot is not comparable.
        await store.transaction((tx) =>
          ledger.applyAdjustment(tx, {
            sku: 'SKU-3',
            location: 'DC-1',
            reason: 'sale',
            delta: -1,
            sourceSystem: 'pos',
            sourceSequence: 1,
            sourceTimestamp: snapshotAt + 1,
          }),
        );
        positions = await positionsForReconciliation(store, 'all');
        const later = compareWithErp(erp, positions, { snapshotAt, complete: true });
        assert.deepEqual(later.moving, [{ sku: 'SKU-3', location: 'DC-1' }]);
        assert.equal(later.drifts.length, report.drifts.length - 1);

        for (const d of later.drifts) {
          await store.transaction((tx) =>
            ledger.applyAdjustment(
              tx,
              correctionFor(d, { sourceSystem: 'reconciliation', sourceSequence: 1, snapshotAt }),
            ),
          );
        }
        positions = await positionsForReconciliation(store, 'all');
        const after = compareWithErp(erp, positions, {
          snapshotAt: snapshotAt + 1,
          complete: true,
        });
        assert.deepEqual(
          after.drifts.map((d) => d.sku),
          ['SKU-3'],
        );
        // Not corrected while moving: the ERP's +4 and the later sale of 1.
        assert.equal(after.drifts[0]?.difference, -5);

        // A channel showing the wrong figure for two keys.
        const shown = positions.map((p) => ({
          sku: p.sku,
          location: p.location,
          available: p.available,
        }));
        shown[4] = { ...shown[4]!, available: shown[4]!.available + 2 };
        shown[10] = { ...shown[10]!, available: shown[10]!.available + 5 };
        const channelDrift = compareWithChannel('web', shown, positions);
        assert.deepEqual(
          channelDrift.map((d) => [d.sku, d.difference]),
          [
            [shown[4]!.sku, 2],
            [shown[10]!.sku, 5],
          ],
        );
        assert.deepEqual(compareWithChannel('web', shown.slice(0, 4), positions), []);
      } finally {
        await close();
      }
    });
  });
}
