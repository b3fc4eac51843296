// Which commits wait for the disk. An accept (answered to its client) and a handler's commit
// (its effects, which later work reads and sends on) are durable; a claim and a delivery's
// outcome are relaxed (`relaxed: true`): losing one with the machine only hands the work back,
// and a delivery sent again carries the idempotency key stored on it. Operator actions
// (replay) are durable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../src/runtime/engine.js';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTx, TransactionOptions } from '../../src/store/port.js';
import { passThroughGate, waitFor } from './support.js';

interface Recorded {
  relaxed: boolean;
  statements: string[];
}

/** The store, with each transaction's statements and whether it was relaxed recorded. */
function recording(store: Store): { store: Store; log: Recorded[] } {
  const log: Recorded[] = [];
  const wrapped = Object.create(store) as Store;
  wrapped.transaction = <T>(fn: (tx: StoreTx) => Promise<T>, opts?: TransactionOptions) => {
    const entry: Recorded = { relaxed: opts?.relaxed === true, statements: [] };
    log.push(entry);
    return store.transaction((tx) => {
      const seen: StoreTx = {
        dialect: tx.dialect,
        query: (sql, params) => {
          entry.statements.push(sql.replace(/\s+/g, ' ').trim());
          return tx.query(sql, params);
        },
        execute: (sql, params) => {
          entry.statements.push(sql.replace(/\s+/g, ' ').trim());
          return tx.execute(sql, params);
        },
      };
      return fn(seen);
    }, opts);
  };
  return { store: wrapped, log };
}

const wrote = (log: Recorded[], pattern: RegExp) =>
  log.filter((t) => t.statements.some((s) => pattern.test(s)));

test('accepts and handler commits wait for the disk; claims and delivery outcomes do not', async () => {
  const base = await openStore('sqlite::memory:');
  const { store, log } = recording(base);
  const engine = createEngine({
    store,
    gate: passThroughGate({ maxAttempts: 1 }),
    deliveryMaxAttempts: 1,
    pollMs: { min: 2, max: 20 },
  });
  engine.registerHandler('order.placed', async (msg, tx) => {
    await tx.deliver({ destination: 'erp', payload: msg.payload });
  });
  const sent: string[] = [];
  engine.registerSender('erp', async (d) => {
    sent.push(d.idempotencyKey);
    // The first order is applied; the second is refused for good (a dead letter).
    return { status: (d.payload as { n: number }).n === 1 ? 201 : 422 };
  });
  try {
    for (const n of [1, 2]) {
      await engine.accept({
        source: 'shop',
        idempotencyKey: `o-${n}`,
        requestHash: 'h',
        type: 'order.placed',
        partitionKey: `order-${n}`,
        priority: 'standard',
        payload: { n },
      });
    }
    engine.start();
    await waitFor('delivered and dead-lettered', () => {
      return engine.counters.delivered === 1 && engine.counters.deadLettered === 1;
    });
    const accepts = wrote(log, /^INSERT INTO messages/);
    const handlers = wrote(log, /^UPDATE messages SET status = 'done'/);
    const delivered = wrote(log, /^UPDATE deliveries SET status = 'delivered'/);
    const dead = wrote(log, /^INSERT INTO dead_letters/);
    const claims = wrote(log, /^UPDATE (messages|deliveries) SET lease_until/);
    for (const [what, found] of Object.entries({ accepts, handlers, delivered, dead, claims })) {
      assert.ok(found.length > 0, `no ${what} transaction was recorded`);
    }
    for (const t of [...accepts, ...handlers]) assert.equal(t.relaxed, false, t.statements[0]);
    for (const t of [...delivered, ...dead, ...claims]) {
      assert.equal(t.relaxed, true, t.statements[0]);
    }

    // An operator's replay is durable: it is answered to someone.
    const [letter] = (await engine.deadLetters.list({})).items;
    assert.ok(letter);
    const before = log.length;
    await engine.deadLetters.replay(letter.id);
    const replays = log
      .slice(before)
      .filter((t) => t.statements.some((s) => /dead_letters/.test(s)));
    assert.ok(replays.length > 0, 'no replay transaction was recorded');
    for (const t of replays) assert.equal(t.relaxed, false, t.statements[0]);
    // Both were sent before the replay (which the running engine may already be sending again).
    assert.ok(sent.length >= 2);
  } finally {
    await engine.stop();
    await base.close();
  }
});
