// Which commits wait for the disk. An accept (answered to its client) is durable; a claim and a
// delivery's outcome are relaxed (`relaxed: true`): losing one with the machine only hands the
// work back, and a delivery sent again carries the idempotency key stored on it. On SQLite a
// batch of handlers commits relaxed too, and nothing it wrote is sent before `store.durable()`
// has put it on disk. Operator actions (replay) are durable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../src/runtime/engine.js';
import { openStore } from '../../src/store/index.js';
import type { Store, StoreTx, TransactionOptions } from '../../src/store/port.js';
import { passThroughGate, sleep, waitFor } from './support.js';

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
        atCommit: (sql, params) => {
          entry.statements.push(sql.replace(/\s+/g, ' ').trim());
          tx.atCommit(sql, params);
        },
      };
      return fn(seen);
    }, opts);
  };
  return { store: wrapped, log };
}

const wrote = (log: Recorded[], pattern: RegExp) =>
  log.filter((t) => t.statements.some((s) => pattern.test(s)));

test('accepts wait for the disk; claims, delivery outcomes and SQLite handler batches do not', async () => {
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
    for (const t of accepts) assert.equal(t.relaxed, false, t.statements[0]);
    for (const t of [...handlers, ...delivered, ...dead, ...claims]) {
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

test('no delivery is sent before the relaxed handler commit that wrote it is on disk', async () => {
  const base = await openStore('sqlite::memory:');
  // The store's durable() waits for the test to let it resolve (a slow disk).
  let flush!: () => void;
  const disk = new Promise<void>((r) => (flush = r));
  let durableCalls = 0;
  let flushed = false;
  const store = Object.create(base) as Store;
  store.durable = async () => {
    durableCalls++;
    await disk;
    await base.durable();
    flushed = true;
  };
  const engine = createEngine({
    store,
    gate: passThroughGate({ maxAttempts: 1 }),
    pollMs: { min: 2, max: 20 },
  });
  engine.registerHandler('order.placed', async (msg, tx) => {
    await tx.deliver({ destination: 'erp', payload: msg.payload });
  });
  const sent: { key: string; flushed: boolean }[] = [];
  engine.registerSender('erp', async (d) => {
    sent.push({ key: d.idempotencyKey, flushed });
    return { status: 201 };
  });
  try {
    await engine.accept({
      source: 'shop',
      idempotencyKey: 'o-1',
      requestHash: 'h',
      type: 'order.placed',
      partitionKey: 'order-1',
      priority: 'standard',
      payload: { n: 1 },
    });
    engine.start();
    await waitFor('the handler committed', () => engine.counters.processed === 1);
    // The delivery is claimable, but its handler's commit is not on disk yet: nothing leaves.
    await waitFor('the delivery loop waits for the disk', () => durableCalls > 0);
    await sleep(100);
    assert.equal(sent.length, 0, 'sent before its handler commit was on disk');
    flush();
    await waitFor('delivered', () => engine.counters.delivered === 1);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.flushed, true);
  } finally {
    flush();
    await engine.stop();
    await base.close();
  }
});
