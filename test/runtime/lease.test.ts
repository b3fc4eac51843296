// Lease renewal: work that runs longer than its lease keeps it while its worker is alive (the
// heartbeat extends it), so no other worker runs it again; a claim whose worker died is taken
// over once its lease expires. Short leases, on SQLite and PostgreSQL.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS } from '../store/backends.js';
import { createEngine } from '../../src/runtime/engine.js';
import { claimDeliveries, claimMessages } from '../../src/runtime/queue.js';
import { passThroughGate, sleep, waitFor } from './support.js';

const LEASE_MS = 300;

for (const backend of BACKENDS) {
  describe(`leases: ${backend.name}`, { skip: backend.skip }, () => {
    test('a delivery attempt longer than its lease is renewed and sent once', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        const calls = new Map<string, number>();
        const engines = [1, 2].map(() =>
          createEngine({
            store,
            leaseMs: LEASE_MS,
            pollMs: { min: 5, max: 20 },
            gate: passThroughGate(),
          }),
        );
        for (const engine of engines) {
          engine.registerHandler('order.created', async (_msg, tx) => {
            await tx.deliver({ destination: 'erp', payload: { posted: true } });
          });
          engine.registerSender('erp', async (d) => {
            calls.set(d.idempotencyKey, (calls.get(d.idempotencyKey) ?? 0) + 1);
            // Four leases long: without renewal the other engine would claim and send again.
            await sleep(LEASE_MS * 4);
            return { status: 200 };
          });
        }
        for (let i = 0; i < 3; i++) {
          await engines[0]!.accept({
            source: 'test',
            idempotencyKey: `slow-${i}`,
            requestHash: 'h',
            type: 'order.created',
            partitionKey: `order-${i}`,
            priority: 'standard',
            payload: { i },
          });
        }
        for (const engine of engines) engine.start();
        const delivered = () => engines.reduce((n, e) => n + e.counters.delivered, 0);
        await waitFor('three deliveries', () => delivered() === 3);
        // Give a duplicate claim time to show itself.
        await sleep(LEASE_MS * 2);
        await Promise.all(engines.map((e) => e.stop()));
        assert.equal(delivered(), 3);
        assert.equal(calls.size, 3);
        assert.deepEqual([...calls.values()], [1, 1, 1]);
        const attempts = await store.query<{ n: number }>(
          "SELECT COUNT(*) AS n FROM attempts WHERE outcome = 'delivered'",
        );
        assert.equal(Number(attempts[0]?.n), 3);
      } finally {
        await store.close();
        await db.drop();
      }
    });

    test('a handler batch longer than its leases runs each message once', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        const runs = new Map<number, number>();
        const make = () => {
          const engine = createEngine({
            store,
            leaseMs: LEASE_MS,
            workers: 2,
            handlerBatch: 2,
            pollMs: { min: 5, max: 20 },
          });
          engine.registerHandler('slow', async (msg) => {
            const { i } = msg.payload as { i: number };
            runs.set(i, (runs.get(i) ?? 0) + 1);
            // Each handler outlives the lease; the second message of the batch waits for the
            // first, so its lease must be renewed while it waits.
            await sleep(LEASE_MS * 2);
          });
          return engine;
        };
        const a = make();
        const b = make();
        for (let i = 0; i < 2; i++) {
          await a.accept({
            source: 'test',
            idempotencyKey: `batch-${i}`,
            requestHash: 'h',
            type: 'slow',
            partitionKey: `key-${i}`,
            priority: 'standard',
            payload: { i },
          });
        }
        a.start();
        await waitFor('first handler running', () => runs.size > 0);
        b.start();
        await waitFor('both processed', () => a.counters.processed + b.counters.processed === 2);
        await sleep(LEASE_MS * 2);
        await Promise.all([a.stop(), b.stop()]);
        assert.deepEqual(
          [...runs.entries()].sort((x, y) => x[0] - y[0]),
          [
            [0, 1],
            [1, 1],
          ],
        );
        assert.equal(a.counters.processed, 2);
      } finally {
        await store.close();
        await db.drop();
      }
    });

    test('a worker that dies loses its claims once their leases expire', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        // Deliveries written, not yet attempted (no sender here).
        const writer = createEngine({ store, pollMs: { min: 5, max: 20 } });
        writer.registerHandler('order.created', async (_msg, tx) => {
          await tx.deliver({ destination: 'erp', payload: {} });
        });
        await writer.accept({
          source: 'test',
          idempotencyKey: 'dies-1',
          requestHash: 'h',
          type: 'order.created',
          partitionKey: 'order-1',
          priority: 'standard',
          payload: {},
        });
        writer.start();
        await waitFor('processed', () => writer.counters.processed === 1);
        await writer.stop();
        await writer.accept({
          source: 'test',
          idempotencyKey: 'dies-2',
          requestHash: 'h',
          type: 'order.created',
          partitionKey: 'order-2',
          priority: 'standard',
          payload: {},
        });
        // A worker claims both and dies: nobody renews its leases.
        const claimedAt = Date.now();
        const messages = await claimMessages(store, {
          limit: 10,
          leaseMs: LEASE_MS,
          now: claimedAt,
        });
        const deliveries = await claimDeliveries(store, {
          limit: 10,
          leaseMs: LEASE_MS,
          now: claimedAt,
          destinations: ['erp'],
        });
        assert.equal(messages.length, 1);
        assert.equal(deliveries.length, 1);

        const engine = createEngine({
          store,
          leaseMs: LEASE_MS,
          pollMs: { min: 5, max: 20 },
          gate: passThroughGate(),
        });
        const handledAt: number[] = [];
        const sentAt: number[] = [];
        engine.registerHandler('order.created', async (_msg, tx) => {
          handledAt.push(Date.now());
          await tx.deliver({ destination: 'erp', payload: {} });
        });
        engine.registerSender('erp', async () => {
          sentAt.push(Date.now());
          return { status: 200 };
        });
        engine.start();
        await waitFor('both deliveries sent', () => engine.counters.delivered === 2);
        await engine.stop();
        assert.equal(handledAt.length, 1);
        assert.ok(handledAt[0]! >= claimedAt + LEASE_MS, 'the message waited for the lease');
        // The dead worker's delivery only after its lease; the new one whenever.
        assert.ok(
          sentAt.some((t) => t >= claimedAt + LEASE_MS),
          'the claimed delivery waited for the lease',
        );
        const attempts = await store.query<{ attempts: number }>(
          "SELECT attempts FROM messages WHERE idempotency_key = 'dies-2'",
        );
        assert.equal(attempts[0]?.attempts, 2);
      } finally {
        await store.close();
        await db.drop();
      }
    });
  });
}
