// The stock reservation port (src/ports/stock.ts) over the ledger: an order's lines are reserved
// all or none, idempotently per order id; release and consume (whole or part) close what the
// order holds; changes are recorded for the channel push. On SQLite and PostgreSQL.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AvailabilityLedger,
  createStockReservations,
  readPosition,
  type InventorySql,
} from '../../../src/domains/inventory/index.js';
import { BACKENDS, openInventoryStore } from './support.js';

const LOC = 'DC-EU-1';

async function stock(db: InventorySql, sku: string, count: number): Promise<void> {
  await new AvailabilityLedger().applyAdjustment(db, {
    sku,
    location: LOC,
    reason: 'cycle_count',
    count,
    sourceSystem: 'erp',
    sourceSequence: 1,
    sourceTimestamp: Date.now() - 1000,
  });
}

for (const backend of BACKENDS) {
  describe(`stock reservation port (${backend.name})`, { skip: backend.skip }, () => {
    test('releaseLines gives back cut quantities; a released order reserves afresh', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const port = createStockReservations({ channels: ['commerce'] });
        await store.transaction(async (tx) => {
          await stock(tx, 'C', 10);
          await stock(tx, 'D', 2);
        });
        const first = await store.transaction((tx) =>
          port.reserve(tx, {
            orderId: 'o-cut',
            location: LOC,
            lines: [
              { sku: 'C', quantity: 4 },
              { sku: 'D', quantity: 2 },
            ],
          }),
        );
        assert.equal(first.ok, true);
        // Cut 1 of C and all of D.
        await store.transaction((tx) =>
          port.releaseLines!(
            tx,
            'o-cut',
            [
              { sku: 'C', quantity: 1 },
              { sku: 'D', quantity: 2 },
            ],
            'lines cut',
          ),
        );
        assert.equal((await readPosition(store, 'C', LOC))!.reserved, 3);
        assert.equal((await readPosition(store, 'D', LOC))!.reserved, 0);
        const rows = await store.query(
          'SELECT id, quantity, status FROM inventory_reservations WHERE order_id = ? ORDER BY id',
          ['o-cut'],
        );
        assert.deepEqual(
          rows.map((r) => [r.id, Number(r.quantity), r.status]),
          [
            ['order/o-cut/C', 3, 'active'],
            ['order/o-cut/D', 2, 'released'],
          ],
        );
        // The whole order released (rejected), then booked after all: it holds stock again.
        await store.transaction((tx) => port.release(tx, 'o-cut', 'rejected'));
        assert.equal((await readPosition(store, 'C', LOC))!.reserved, 0);
        const again = await store.transaction((tx) =>
          port.reserve(tx, { orderId: 'o-cut', location: LOC, lines: [{ sku: 'C', quantity: 3 }] }),
        );
        assert.deepEqual(again, { ok: true, reservationIds: ['order/o-cut/C/r2'] });
        assert.equal((await readPosition(store, 'C', LOC))!.reserved, 3);
        // Idempotent: the same request answers the new round's reservation.
        const repeat = await store.transaction((tx) =>
          port.reserve(tx, { orderId: 'o-cut', location: LOC, lines: [{ sku: 'C', quantity: 3 }] }),
        );
        assert.deepEqual(repeat, again);
        assert.equal((await readPosition(store, 'C', LOC))!.reserved, 3);
      } finally {
        await close();
      }
    });

    test('all lines or none; idempotent per order; refusal leaves nothing behind', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const port = createStockReservations({ channels: ['commerce'] });
        await store.transaction(async (tx) => {
          await stock(tx, 'A', 5);
          await stock(tx, 'B', 1);
        });
        const ok = await store.transaction((tx) =>
          port.reserve(tx, {
            orderId: 'o-1',
            location: LOC,
            lines: [
              { sku: 'B', quantity: 1 },
              { sku: 'A', quantity: 2 },
              { sku: 'A', quantity: 1 },
            ],
          }),
        );
        assert.deepEqual(ok, { ok: true, reservationIds: ['order/o-1/A', 'order/o-1/B'] });
        const again = await store.transaction((tx) =>
          port.reserve(tx, { orderId: 'o-1', location: LOC, lines: [{ sku: 'A', quantity: 3 }] }),
        );
        assert.deepEqual(again, ok);
        const short = await store.transaction((tx) =>
          port.reserve(tx, {
            orderId: 'o-2',
            location: LOC,
            lines: [
              { sku: 'A', quantity: 2 },
              { sku: 'B', quantity: 1 },
              { sku: 'NONE', quantity: 1 },
            ],
          }),
        );
        assert.deepEqual(short, {
          ok: false,
          short: [
            { sku: 'B', requested: 1, available: 0 },
            { sku: 'NONE', requested: 1, available: 0 },
          ],
        });
        const a = (await readPosition(store, 'A', LOC))!;
        assert.equal(a.reserved, 3, 'o-2 holds nothing of A');
        const o2 = await store.query('SELECT id FROM inventory_reservations WHERE order_id = ?', [
          'o-2',
        ]);
        assert.deepEqual(o2, []);
        // The change was recorded for the channel.
        const sync = await store.query(
          'SELECT latest_available FROM inventory_channel_sync WHERE channel = ? AND sku = ?',
          ['commerce', 'A'],
        );
        assert.equal(Number(sync[0]!.latest_available), 2);
        // After a restock the refused order can reserve.
        await store.transaction((tx) =>
          new AvailabilityLedger().applyAdjustment(tx, {
            sku: 'B',
            location: LOC,
            reason: 'receipt',
            delta: 1,
            sourceSystem: 'wms',
            sourceSequence: 1,
            sourceTimestamp: Date.now(),
          }),
        );
        const retried = await store.transaction((tx) =>
          port.reserve(tx, {
            orderId: 'o-2',
            location: LOC,
            lines: [
              { sku: 'A', quantity: 2 },
              { sku: 'B', quantity: 1 },
            ],
          }),
        );
        assert.equal(retried.ok, true);
      } finally {
        await close();
      }
    });

    test('release and consume (whole and part) are idempotent', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const port = createStockReservations();
        await store.transaction((tx) => stock(tx, 'A', 10));
        await store.transaction((tx) =>
          port.reserve(tx, { orderId: 'o-1', location: LOC, lines: [{ sku: 'A', quantity: 4 }] }),
        );
        await store.transaction((tx) =>
          port.reserve(tx, { orderId: 'o-2', location: LOC, lines: [{ sku: 'A', quantity: 3 }] }),
        );
        await store.transaction((tx) => port.release(tx, 'o-1', 'cancelled'));
        await store.transaction((tx) => port.release(tx, 'o-1', 'cancelled'));
        let a = (await readPosition(store, 'A', LOC))!;
        assert.deepEqual([a.onHand, a.reserved, a.available], [10, 3, 7]);
        await store.transaction((tx) => port.consume(tx, 'o-2', [{ sku: 'A', quantity: 1 }]));
        a = (await readPosition(store, 'A', LOC))!;
        assert.deepEqual([a.onHand, a.reserved, a.available], [9, 2, 7]);
        await store.transaction((tx) => port.consume(tx, 'o-2'));
        await store.transaction((tx) => port.consume(tx, 'o-2'));
        a = (await readPosition(store, 'A', LOC))!;
        assert.deepEqual([a.onHand, a.reserved, a.available], [7, 0, 7]);
        const statuses = await store.query(
          'SELECT order_id, status FROM inventory_reservations ORDER BY order_id',
        );
        assert.deepEqual(
          statuses.map((r) => [r.order_id, r.status]),
          [
            ['o-1', 'released'],
            ['o-2', 'committed'],
          ],
        );
      } finally {
        await close();
      }
    });
  });
}
