// The ledger, reservations and channel sync tables on SQLite and PostgreSQL: the SQL ledger
// agrees with the rule model under shuffled, duplicated streams; reservations are idempotent
// and respect safety stock and channel allocation; the log explains every adjustment.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AvailabilityLedger,
  LedgerModel,
  consumeReservation,
  expireReservations,
  readPosition,
  readReservation,
  releaseReservation,
  reserveStock,
  channelAvailableAt,
  type AvailabilityRules,
  type StockAdjustment,
} from '../../../src/domains/inventory/index.js';
import { BACKENDS, openInventoryStore, seededRandom, shuffle } from './support.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');

function adj(
  source: string,
  seq: number,
  v: { delta?: number; count?: number },
  t = T0 + seq * 1000,
  sku = 'SKU-1',
  location = 'DC-1',
): StockAdjustment {
  return {
    sku,
    location,
    reason: v.count === undefined ? 'receipt' : 'cycle_count',
    ...v,
    sourceSystem: source,
    sourceSequence: seq,
    sourceTimestamp: t,
  };
}

for (const backend of BACKENDS) {
  describe(`inventory store: ${backend.name}`, { skip: backend.skip }, () => {
    test('the SQL ledger agrees with the rule model under shuffles and duplicates', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const random = seededRandom(7);
        const ledger = new AvailabilityLedger();
        for (let k = 0; k < 12; k++) {
          const sku = `SKU-${k}`;
          const stream: StockAdjustment[] = [];
          const seq: Record<string, number> = { erp: 0, wms: 0 };
          let t = T0;
          for (let i = 0; i < 20; i++) {
            const source = random() < 0.5 ? 'erp' : 'wms';
            seq[source]! += 1;
            t += 1 + Math.floor(random() * 500);
            stream.push(
              source === 'erp' && random() < 0.3
                ? adj(source, seq[source]!, { count: Math.floor(random() * 60) }, t, sku)
                : adj(
                    source,
                    seq[source]!,
                    { delta: 1 + Math.floor(random() * 5) - (random() < 0.4 ? 7 : 0) },
                    t,
                    sku,
                  ),
            );
          }
          const expected = new LedgerModel();
          for (const e of stream) expected.apply(e);
          const arrivals = shuffle([...stream, stream[3]!, stream[11]!, stream[0]!], random);
          for (const e of arrivals) {
            await store.transaction((tx) => ledger.applyAdjustment(tx, e));
          }
          const p = await readPosition(store, sku, 'DC-1');
          assert.equal(p?.onHand, expected.state.onHand, sku);
          const log = await ledger.adjustmentLog(store, sku, 'DC-1');
          assert.equal(log.length, arrivals.length);
          assert.equal(log.filter((l) => l.outcome === 'duplicate').length, 3);
        }
      } finally {
        await close();
      }
    });

    test('the adjustment log explains a count folding earlier deltas', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const ledger = new AvailabilityLedger();
        for (const e of [
          adj('erp', 1, { delta: 10 }),
          adj('erp', 4, { delta: 2 }),
          adj('erp', 3, { count: 7 }),
          adj('erp', 2, { delta: -1 }),
          adj('erp', 4, { delta: 2 }),
        ]) {
          await store.transaction((tx) => ledger.applyAdjustment(tx, e));
        }
        const log = await ledger.adjustmentLog(store, 'SKU-1', 'DC-1');
        assert.deepEqual(
          log.map((l) => [l.sourceSequence, l.outcome, l.onHandAfter]),
          [
            [1, 'superseded', 10],
            [4, 'applied', 12],
            [3, 'applied', 9],
            [2, 'superseded', 9],
            [4, 'duplicate', 9],
          ],
        );
        assert.equal(log[0]?.supersededBy, log[2]?.id);
        assert.equal((await readPosition(store, 'SKU-1', 'DC-1'))?.onHand, 9);
      } finally {
        await close();
      }
    });

    test('reservations: reserve, refuse, retry, consume, release, expire', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const rules: AvailabilityRules = { safetyStock: { bySku: { 'SKU-1': 2 } } };
        const ledger = new AvailabilityLedger({ rules });
        await store.transaction((tx) => ledger.applyAdjustment(tx, adj('erp', 1, { count: 12 })));
        const p0 = await readPosition(store, 'SKU-1', 'DC-1');
        assert.deepEqual([p0?.onHand, p0?.safetyStock, p0?.available], [12, 2, 10]);

        const req = (id: string, quantity: number, expiresAt = T0 + 60_000) => ({
          reservationId: id,
          sku: 'SKU-1',
          location: 'DC-1',
          quantity,
          orderId: `order-${id}`,
          channel: 'web',
          expiresAt,
        });
        const r1 = await store.transaction((tx) =>
          reserveStock(tx, req('r1', 6), { now: () => T0 }),
        );
        assert.equal(r1.outcome, 'reserved');
        const again = await store.transaction((tx) =>
          reserveStock(tx, req('r1', 6), { now: () => T0 }),
        );
        assert.equal(again.outcome, 'reserved');
        assert.equal(again.outcome === 'reserved' && again.replayed, true);
        assert.equal((await readPosition(store, 'SKU-1', 'DC-1'))?.reserved, 6);

        const r2 = await store.transaction((tx) =>
          reserveStock(tx, req('r2', 5), { now: () => T0 }),
        );
        assert.equal(r2.outcome, 'refused');
        assert.equal(r2.outcome === 'refused' && r2.available, 4);
        const r2again = await store.transaction((tx) => reserveStock(tx, req('r2', 5)));
        assert.equal(r2again.outcome === 'refused' && r2again.replayed, true);
        const conflict = await store.transaction((tx) => reserveStock(tx, req('r1', 2)));
        assert.equal(conflict.outcome, 'conflict');

        const r3 = await store.transaction((tx) =>
          reserveStock(tx, req('r3', 4, T0 + 1000), { now: () => T0 }),
        );
        assert.equal(r3.outcome, 'reserved');
        assert.equal((await readPosition(store, 'SKU-1', 'DC-1'))?.available, 0);

        const consumed = await store.transaction((tx) =>
          consumeReservation(tx, 'r1', { now: () => T0 + 10 }),
        );
        assert.equal(consumed.outcome, 'closed');
        const p1 = await readPosition(store, 'SKU-1', 'DC-1');
        assert.deepEqual([p1?.onHand, p1?.reserved, p1?.available], [6, 4, 0]);
        assert.equal(
          (await store.transaction((tx) => consumeReservation(tx, 'r1'))).outcome,
          'unchanged',
        );
        assert.equal(
          (await store.transaction((tx) => releaseReservation(tx, 'r1'))).outcome,
          'unchanged',
        );
        assert.equal(
          (await store.transaction((tx) => releaseReservation(tx, 'nope'))).outcome,
          'unknown',
        );

        const none = await store.transaction((tx) => expireReservations(tx, T0 + 999));
        assert.equal(none.length, 0);
        const expired = await store.transaction((tx) => expireReservations(tx, T0 + 1000));
        assert.deepEqual(
          expired.map((e) => e.reservation.id),
          ['r3'],
        );
        assert.equal((await readReservation(store, 'r3'))?.status, 'expired');
        const p2 = await readPosition(store, 'SKU-1', 'DC-1');
        assert.deepEqual([p2?.onHand, p2?.reserved, p2?.available], [6, 0, 4]);

        const r4 = await store.transaction((tx) =>
          reserveStock(tx, req('r4', 4), { now: () => T0 + 2000 }),
        );
        assert.equal(r4.outcome, 'reserved');
        await store.transaction((tx) => releaseReservation(tx, 'r4'));
        assert.equal((await readReservation(store, 'r4'))?.status, 'released');
        assert.equal((await readPosition(store, 'SKU-1', 'DC-1'))?.available, 4);

        const log = await ledger.adjustmentLog(store, 'SKU-1', 'DC-1');
        assert.deepEqual(
          log.map((l) => [l.sourceSystem, l.delta, l.outcome]),
          [
            ['erp', null, 'applied'],
            ['middlemart', -6, 'applied'],
          ],
        );
      } finally {
        await close();
      }
    });

    test('a reservation for unknown stock is refused with nothing available', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const r = await store.transaction((tx) =>
          reserveStock(tx, {
            reservationId: 'x1',
            sku: 'GHOST',
            location: 'DC-1',
            quantity: 1,
            orderId: 'o',
            channel: 'web',
            expiresAt: new Date(Date.now() + 60_000),
          }),
        );
        assert.equal(r.outcome, 'refused');
        assert.equal(r.outcome === 'refused' && r.available, 0);
      } finally {
        await close();
      }
    });

    test('channel allocation: percent, cap and locations bound what a channel may reserve', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const rules: AvailabilityRules = {
          channels: {
            marketplace: { percent: 50, cap: 30 },
            pos: { locations: ['STORE-1'] },
          },
        };
        const ledger = new AvailabilityLedger({ rules });
        await store.transaction((tx) => ledger.applyAdjustment(tx, adj('erp', 1, { count: 100 })));
        assert.equal(await channelAvailableAt(store, 'SKU-1', 'DC-1', 'marketplace', rules), 30);
        assert.equal(await channelAvailableAt(store, 'SKU-1', 'DC-1', 'pos', rules), 0);
        assert.equal(await channelAvailableAt(store, 'SKU-1', 'DC-1', 'web', rules), 100);
        const base = { sku: 'SKU-1', location: 'DC-1', orderId: 'o', expiresAt: Date.now() + 1e6 };
        const tooMany = await store.transaction((tx) =>
          reserveStock(
            tx,
            { ...base, reservationId: 'm1', quantity: 31, channel: 'marketplace' },
            { rules },
          ),
        );
        assert.equal(tooMany.outcome, 'refused');
        const ok = await store.transaction((tx) =>
          reserveStock(
            tx,
            { ...base, reservationId: 'm2', quantity: 30, channel: 'marketplace' },
            { rules },
          ),
        );
        assert.equal(ok.outcome, 'reserved');
        // 70 left at the location: 50% of it is 35, capped at 30.
        const web = await store.transaction((tx) =>
          reserveStock(
            tx,
            { ...base, reservationId: 'w1', quantity: 40, channel: 'web' },
            { rules },
          ),
        );
        assert.equal(web.outcome, 'reserved');
        // 30 left: the marketplace sees 15.
        const half = await store.transaction((tx) =>
          reserveStock(
            tx,
            { ...base, reservationId: 'm3', quantity: 16, channel: 'marketplace' },
            { rules },
          ),
        );
        assert.equal(half.outcome === 'refused' && half.available, 15);
        const pos = await store.transaction((tx) =>
          reserveStock(
            tx,
            { ...base, reservationId: 'p1', quantity: 1, channel: 'pos' },
            { rules },
          ),
        );
        assert.equal(pos.outcome === 'refused' && pos.reason, 'channel_not_allowed');
      } finally {
        await close();
      }
    });
  });
}
