// End to end through a real engine: `inventory.adjusted` events accepted out of order and
// duplicated (a source re-sending under new message ids) are processed by the workers; the
// ledger converges to the in-order on-hand, `inventory.availability_changed` is emitted with the
// catalogue's partition key and priority, and the channel's pending availability is the newest.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../../src/runtime/index.js';
import { eventByName, makeEvent, type InventoryPositionV1 } from '../../../src/canonical/index.js';
import {
  AvailabilityLedger,
  LedgerModel,
  consumeReservation,
  publishAvailability,
  publishReservationCreated,
  publishReservationReleased,
  reserveStock,
  readPosition,
  registerInventoryHandlers,
  type StockAdjustment,
} from '../../../src/domains/inventory/index.js';
import { BACKENDS, openInventoryStore, seededRandom, shuffle } from './support.js';
import { waitFor } from '../../runtime/support.js';

const ADJUSTED = eventByName('inventory.adjusted');
const CHANGED = eventByName('inventory.availability_changed');
const T0 = Date.parse('2026-11-01T00:00:00Z');

for (const backend of BACKENDS) {
  describe(`inventory handlers: ${backend.name}`, { skip: backend.skip }, () => {
    test('shuffled and duplicated adjustments converge; availability changes are emitted', async () => {
      const { store, close } = await openInventoryStore(backend);
      const engine = createEngine({ store, workers: 4, pollMs: { min: 1, max: 10 } });
      try {
        registerInventoryHandlers(engine, {
          rules: { safetyStock: { default: 1 } },
          channels: ['web'],
        });
        const changes: { partitionKey: string; priority: string; data: InventoryPositionV1 }[] = [];
        engine.registerHandler(CHANGED.type, async (msg) => {
          const event = msg.payload as { data: InventoryPositionV1 };
          changes.push({
            partitionKey: msg.partitionKey,
            priority: msg.priority,
            data: event.data,
          });
        });

        const random = seededRandom(3);
        const models = new Map<string, LedgerModel>();
        const arrivals: StockAdjustment[] = [];
        for (let k = 0; k < 5; k++) {
          const sku = `SKU-${k}`;
          const model = new LedgerModel();
          models.set(sku, model);
          const stream: StockAdjustment[] = [];
          for (let seq = 1; seq <= 12; seq++) {
            const t = T0 + seq * 1000;
            const base = {
              sku,
              location: 'DC-1',
              sourceSystem: 'erp',
              sourceSequence: seq,
              sourceTimestamp: t,
            };
            stream.push(
              seq % 5 === 0
                ? { ...base, reason: 'cycle_count', count: 20 + Math.floor(random() * 20) }
                : { ...base, reason: 'receipt', delta: 1 + Math.floor(random() * 4) },
            );
          }
          for (const e of stream) model.apply(e);
          arrivals.push(...stream, stream[2]!, stream[7]!);
        }
        shuffle(arrivals, random);
        let n = 0;
        for (const a of arrivals) {
          const data = {
            sku: a.sku,
            location: a.location,
            reason: a.reason as 'receipt' | 'cycle_count',
            ...(a.delta === undefined ? {} : { delta: a.delta }),
            ...(a.count === undefined ? {} : { count: a.count }),
            sourceSystem: a.sourceSystem,
            sourceSequence: a.sourceSequence,
            sourceTimestamp: new Date(a.sourceTimestamp).toISOString(),
          };
          const event = makeEvent('inventory.adjusted', data, { source: '/erp/a' });
          const r = await engine.accept({
            source: 'erp-a',
            idempotencyKey: `msg-${n++}`,
            requestHash: 'h',
            type: ADJUSTED.type,
            partitionKey: ADJUSTED.partitionKey(data),
            priority: ADJUSTED.priority,
            payload: event,
          });
          assert.equal(r.outcome, 'accepted');
        }
        engine.start();
        await waitFor(
          'every adjustment and emitted change processed',
          async () => {
            const stats = await engine.stats();
            return (
              engine.counters.processed >= arrivals.length &&
              stats.messages.total.depth === 0 &&
              stats.messages.inFlight === 0
            );
          },
          30_000,
        );
        await engine.stop();

        for (const [sku, model] of models) {
          const p = await readPosition(store, sku, 'DC-1');
          assert.equal(p?.onHand, model.state.onHand, sku);
          assert.equal(p?.safetyStock, 1);
          const mine = changes.filter((c) => c.data.sku === sku);
          assert.ok(mine.length > 0, `${sku}: availability_changed emitted`);
          for (const c of mine) {
            assert.equal(c.partitionKey, `${sku}@DC-1`);
            assert.equal(c.priority, CHANGED.priority);
          }
          const versions = mine.map((c) => c.data.sourceSequence);
          assert.deepEqual(
            versions,
            [...versions].sort((a, b) => a - b),
            `${sku}: in order`,
          );
          assert.equal(mine.at(-1)!.data.available, p!.available);
        }
        const pending = await store.query(
          `SELECT sku, location, latest_available FROM inventory_channel_sync
           WHERE channel = 'web' AND pending_since IS NOT NULL AND latest_version > acked_version`,
        );
        assert.equal(pending.length, models.size);
        for (const row of pending) {
          const p = await readPosition(store, String(row.sku), String(row.location));
          assert.equal(Number(row.latest_available), p!.available);
        }
      } finally {
        await engine.stop();
        await close();
      }
    });

    test('a reservation taken in a handler emits reservation and availability events', async () => {
      const { store, close } = await openInventoryStore(backend);
      const engine = createEngine({ store, workers: 2, pollMs: { min: 1, max: 10 } });
      try {
        await store.transaction((tx) =>
          new AvailabilityLedger().applyAdjustment(tx, {
            sku: 'SKU-R',
            location: 'DC-1',
            reason: 'cycle_count',
            count: 3,
            sourceSystem: 'erp',
            sourceSequence: 1,
            sourceTimestamp: T0,
          }),
        );
        const seen: { type: string; data: Record<string, unknown> }[] = [];
        for (const name of [
          'inventory.availability_changed',
          'reservation.created',
          'reservation.released',
        ] as const) {
          engine.registerHandler(eventByName(name).type, async (msg) => {
            seen.push({
              type: name,
              data: (msg.payload as { data: Record<string, unknown> }).data,
            });
          });
        }
        engine.registerHandler('test.order', async (msg, tx) => {
          const { step } = msg.payload as { step: 'reserve' | 'fulfil' };
          if (step === 'reserve') {
            const r = await reserveStock(tx, {
              reservationId: 'res-1',
              sku: 'SKU-R',
              location: 'DC-1',
              quantity: 2,
              orderId: 'order-1',
              channel: 'web',
              expiresAt: Date.now() + 3_600_000,
            });
            assert.equal(r.outcome, 'reserved');
            if (r.outcome === 'reserved' && !r.replayed) {
              await publishReservationCreated(tx, r.reservation);
              await publishAvailability(tx, r.position);
            }
          } else {
            const c = await consumeReservation(tx, 'res-1');
            if (c.outcome === 'closed') await publishReservationReleased(tx, c.reservation);
          }
        });
        for (const step of ['reserve', 'fulfil']) {
          await engine.accept({
            source: 'test',
            idempotencyKey: step,
            requestHash: 'h',
            type: 'test.order',
            partitionKey: 'order-1',
            priority: 'critical',
            payload: { step },
          });
        }
        engine.start();
        await waitFor('events handled', () => seen.length === 3, 10_000);
        assert.deepEqual(seen.map((s) => s.type).sort(), [
          'inventory.availability_changed',
          'reservation.created',
          'reservation.released',
        ]);
        const changed = seen.find((s) => s.type === 'inventory.availability_changed')!;
        assert.equal(changed.data.available, 1);
        assert.equal(changed.data.reserved, 2);
        const released = seen.find((s) => s.type === 'reservation.released')!;
        assert.equal(released.data.reason, 'committed');
        const p = await readPosition(store, 'SKU-R', 'DC-1');
        assert.deepEqual([p?.onHand, p?.reserved, p?.available], [1, 0, 1]);
      } finally {
        await engine.stop();
        await close();
      }
    });

    test('an invalid adjustment is dead-lettered at once', async () => {
      const { store, close } = await openInventoryStore(backend);
      const engine = createEngine({ store, workers: 1, pollMs: { min: 1, max: 10 } });
      try {
        registerInventoryHandlers(engine);
        await engine.accept({
          source: 'erp-a',
          idempotencyKey: 'bad-1',
          requestHash: 'h',
          type: ADJUSTED.type,
          partitionKey: 'SKU-1@DC-1',
          priority: 'standard',
          payload: { data: { sku: 'SKU-1', location: 'DC-1', delta: 1, count: 2 } },
        });
        engine.start();
        await waitFor('dead-lettered', () => engine.counters.deadLettered === 1, 10_000);
      } finally {
        await engine.stop();
        await close();
      }
    });
  });
}
