// Downstream outage and poison deliveries, through the real delivery gate: nothing is lost while
// a destination is down, the backlog drains after recovery with critical work first; a delivery
// that keeps failing is dead-lettered, and once the destination is fixed its replay applies once.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS } from '../store/backends.js';
import { createEngine } from '../../src/runtime/engine.js';
import { createDeliveryGate } from '../../src/runtime/delivery/index.js';
import type { DestinationPolicy } from '../../src/runtime/delivery/types.js';
import type { PriorityClass } from '../../src/runtime/types.js';
import { postTo, sleep, startStub, waitFor } from './support.js';

function policy(id: string, maxAttempts: number): DestinationPolicy {
  return {
    id,
    timeoutMs: 2000,
    retry: { maxAttempts, baseDelayMs: 20, maxDelayMs: 150 },
    circuitBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 150 },
    concurrency: { max: 4, adaptive: false },
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

for (const backend of BACKENDS) {
  describe(`downstream failures: ${backend.name}`, { skip: backend.skip }, () => {
    test('an outage loses nothing; the backlog drains after recovery, critical first', async () => {
      const db = await backend.create();
      const store = await db.open();
      const stub = await startStub();
      let down = true;
      stub.respond = () => (down ? 503 : 200);
      try {
        const engine = createEngine({
          store,
          workers: 8,
          deliveryWorkers: 4,
          perDestinationInFlight: 4,
          pollMs: { min: 2, max: 20 },
          gate: createDeliveryGate([policy('wms', 1000)]),
          deliveryMaxAttempts: 1000,
        });
        engine.registerHandler('pick', async (msg, tx) => {
          await tx.deliver({ destination: 'wms', payload: msg.payload });
        });
        engine.registerSender('wms', postTo(stub.url));
        const classes: PriorityClass[] = ['deferrable', 'standard', 'critical'];
        let i = 0;
        for (const priority of classes) {
          for (let k = 0; k < 60; k++, i++) {
            await engine.accept({
              source: 'test',
              idempotencyKey: `pick-${i}`,
              requestHash: 'h',
              type: 'pick',
              partitionKey: `order-${i}`,
              priority,
              payload: { i, priority },
            });
          }
        }
        engine.start();
        await waitFor('handlers done', () => engine.counters.processed === 180, 20_000);
        await sleep(1000);
        assert.equal(stub.applied.size, 0);
        const during = await engine.stats();
        assert.equal(during.deliveries.byDestination.wms?.depth, 180);
        assert.equal(during.deliveries.byDestination.wms?.byClass.critical, 60);
        const recoveredAt = stub.attempts.length;
        down = false;
        await waitFor('backlog drained', () => stub.applied.size === 180, 30_000);
        await engine.stop();
        assert.equal((await engine.deadLetters.list()).items.length, 0);
        // Each delivery applied once, under one key.
        const bodies = [...stub.applied.values()] as { i: number; priority: PriorityClass }[];
        assert.equal(new Set(bodies.map((b) => b.i)).size, 180);
        // Critical first: successes after recovery, by class, in order of application.
        const position = (p: PriorityClass) =>
          bodies.map((b, idx) => (b.priority === p ? idx : -1)).filter((x) => x >= 0);
        const crit = mean(position('critical'));
        const std = mean(position('standard'));
        const def = mean(position('deferrable'));
        assert.ok(crit < std && crit < def, `mean positions ${crit} ${std} ${def}`);
        assert.ok(stub.attempts.length > recoveredAt);
        const after = await engine.stats();
        assert.equal(after.deliveries.total.depth, 0);
      } finally {
        await stub.close();
        await store.close();
        await db.drop();
      }
    });

    test('poison delivery: dead letter after max attempts, fix, replay, applied once', async () => {
      const db = await backend.create();
      const store = await db.open();
      const stub = await startStub();
      let broken = true;
      stub.respond = (_key, body) =>
        (body as { sku?: string }).sku === 'bad' && broken ? 500 : 200;
      try {
        const engine = createEngine({
          store,
          pollMs: { min: 2, max: 20 },
          gate: createDeliveryGate([
            {
              ...policy('erp', 4),
              circuitBreaker: { consecutiveFailures: 100, halfOpenAfterMs: 100 },
            },
          ]),
        });
        engine.registerHandler('post', async (msg, tx) => {
          await tx.deliver({ destination: 'erp', payload: msg.payload, priority: 'critical' });
        });
        engine.registerSender('erp', postTo(stub.url));
        for (const sku of ['good-1', 'bad', 'good-2']) {
          await engine.accept({
            source: 'test',
            idempotencyKey: sku,
            requestHash: 'h',
            type: 'post',
            partitionKey: sku,
            priority: 'critical',
            payload: { sku },
          });
        }
        engine.start();
        await waitFor(
          'poison dead-lettered',
          async () => (await engine.deadLetters.list()).items.length === 1,
          15_000,
        );
        await waitFor('good ones applied', () => stub.applied.size === 2);
        const [dl] = (await engine.deadLetters.list({ destination: 'erp', error: '500' })).items;
        assert.ok(dl);
        assert.equal(dl.attempts, 4);
        assert.equal(dl.history.length, 4);
        assert.ok(dl.history.every((h) => h.status === 500 && typeof h.latencyMs === 'number'));
        const badAttempts = stub.attempts.filter((a) => (a.body as { sku: string }).sku === 'bad');
        assert.equal(badAttempts.length, 4);
        assert.ok(badAttempts.every((a) => a.key === dl.idempotencyKey));
        broken = false;
        const replayed = await engine.deadLetters.replayMatching({ destination: 'erp' });
        assert.equal(replayed.length, 1);
        await waitFor('poison applied after replay', () => stub.applied.size === 3);
        await sleep(100);
        await engine.stop();
        assert.equal(stub.applied.get(dl.idempotencyKey) !== undefined, true);
        assert.equal(
          stub.attempts.filter((a) => a.key === dl.idempotencyKey && a.status === 200).length,
          1,
        );
        assert.equal(engine.counters.deadLettered, 1);
        assert.equal(engine.counters.replayed, 1);
      } finally {
        await stub.close();
        await store.close();
        await db.drop();
      }
    });
  });
}
