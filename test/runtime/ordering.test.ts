// Per-key order under concurrency: interleaved messages of 1,000 keys, 8 workers; never two
// messages of one key in flight, each key's messages in accept order; and a failing message
// holds back only its own key.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS } from '../store/backends.js';
import { createEngine } from '../../src/runtime/engine.js';
import { waitFor } from './support.js';

const KEYS = 1000;
const PER_KEY = 3;

for (const backend of BACKENDS) {
  describe(`ordering: ${backend.name}`, { skip: backend.skip }, () => {
    test('1,000 interleaved keys, 8 workers: per-key order, never two of a key in flight', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        const engine = createEngine({ store, workers: 8, pollMs: { min: 1, max: 10 } });
        const inFlight = new Set<string>();
        const seen = new Map<string, number[]>();
        let overlaps = 0;
        let maxConcurrent = 0;
        let concurrent = 0;
        engine.registerHandler('step', async (msg) => {
          const { key, n } = msg.payload as { key: string; n: number };
          if (inFlight.has(key)) overlaps++;
          inFlight.add(key);
          concurrent++;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          await new Promise((r) => setImmediate(r));
          (seen.get(key) ?? seen.set(key, []).get(key)!).push(n);
          concurrent--;
          inFlight.delete(key);
        });
        // Interleaved: round n of every key before round n+1, keys shuffled within a round.
        for (let n = 0; n < PER_KEY; n++) {
          const keys = Array.from({ length: KEYS }, (_, i) => `key-${i}`);
          for (let i = keys.length - 1; i > 0; i--) {
            const j = Math.floor(Math.random() * (i + 1));
            [keys[i], keys[j]] = [keys[j]!, keys[i]!];
          }
          // Each round is committed before the next starts, so accept order is known.
          await Promise.all(
            keys.map((key) =>
              engine.accept({
                source: 'test',
                idempotencyKey: `${key}-${n}`,
                requestHash: 'h',
                type: 'step',
                partitionKey: key,
                priority: n % 2 ? 'critical' : 'standard',
                payload: { key, n },
              }),
            ),
          );
        }
        engine.start();
        await waitFor('all processed', () => engine.counters.processed === KEYS * PER_KEY, 45_000);
        await engine.stop();
        assert.equal(overlaps, 0);
        assert.equal(seen.size, KEYS);
        for (const [key, ns] of seen) assert.deepEqual(ns, [0, 1, 2], key);
        // SQLite runs one transaction (so one handler) at a time; PostgreSQL runs them in parallel.
        if (backend.name === 'postgres') assert.ok(maxConcurrent > 1, 'workers ran concurrently');
      } finally {
        await store.close();
        await db.drop();
      }
    });

    test('a failing message holds back only its own key', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        const engine = createEngine({
          store,
          workers: 8,
          pollMs: { min: 1, max: 10 },
          handlerRetry: { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 100 },
        });
        const order: string[] = [];
        let failures = 0;
        engine.registerHandler('step', async (msg) => {
          const { key, n } = msg.payload as { key: string; n: number };
          if (key === 'stuck' && n === 0 && failures < 3) {
            failures++;
            throw new Error('not yet');
          }
          order.push(`${key}:${n}`);
        });
        for (let n = 0; n < 3; n++) {
          for (const key of ['stuck', 'a', 'b', 'c']) {
            await engine.accept({
              source: 'test',
              idempotencyKey: `${key}-${n}`,
              requestHash: 'h',
              type: 'step',
              partitionKey: key,
              priority: 'standard',
              payload: { key, n },
            });
          }
        }
        engine.start();
        await waitFor('all processed', () => order.length === 12, 20_000);
        await engine.stop();
        assert.equal(failures, 3);
        const stuck = order.filter((x) => x.startsWith('stuck:'));
        assert.deepEqual(stuck, ['stuck:0', 'stuck:1', 'stuck:2']);
        // Every other key finished before the stuck key's first message got through.
        const firstStuck = order.indexOf('stuck:0');
        assert.equal(firstStuck, 9, order.join(' '));
      } finally {
        await store.close();
        await db.drop();
      }
    });
  });
}
