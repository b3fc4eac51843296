// Back-pressure on deliveries: while a destination is congested (the gate says so, or its
// backlog is above the configured threshold) its deferrable deliveries wait; critical go.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS } from '../store/backends.js';
import { createEngine } from '../../src/runtime/engine.js';
import { openStore } from '../../src/store/index.js';
import type { Row, SqlValue, Store } from '../../src/store/port.js';
import type { PriorityClass } from '../../src/runtime/types.js';
import { passThroughGate, sleep, waitFor } from './support.js';

type Engine = ReturnType<typeof createEngine>;

/** Each `note` message delivers to crm; ten deferrable notes are accepted, then two critical. */
async function acceptNotes(engine: Engine): Promise<void> {
  engine.registerHandler('note', async (msg, tx) => {
    await tx.deliver({ destination: 'crm', payload: msg.payload });
  });
  for (let i = 0; i < 12; i++) {
    await engine.accept({
      source: 'test',
      idempotencyKey: `n-${i}`,
      requestHash: 'h',
      type: 'note',
      partitionKey: `c-${i}`,
      priority: i < 10 ? 'deferrable' : 'critical',
      payload: { i },
    });
  }
}

interface Sent {
  priority: PriorityClass;
  at: number;
  done?: number;
}

/** crm's sender: records when each delivery started and ended; critical ones take `criticalMs`. */
function recordCrm(engine: Engine, criticalMs: number): Sent[] {
  const sent: Sent[] = [];
  engine.registerSender('crm', async (d) => {
    const entry: Sent = { priority: d.priority, at: Date.now() };
    sent.push(entry);
    if (d.priority === 'critical') await sleep(criticalMs);
    entry.done = Date.now();
    return { status: 200 };
  });
  return sent;
}

/**
 * `base`, with `onRead` run before each read of the messages' depths (the backlog refresh's,
 * numbered from 1); `reads()` tells how many have started.
 */
function watchDepthReads(
  base: Store,
  onRead: (n: number) => Promise<void>,
): { store: Store; reads: () => number } {
  let n = 0;
  const store = Object.create(base) as Store;
  store.query = async <T extends Row = Row>(sql: string, params?: readonly SqlValue[]) => {
    if (/FROM queue_counts/.test(sql) && /'messages'/.test(sql)) await onRead(++n);
    return base.query<T>(sql, params);
  };
  return { store, reads: () => n };
}

/** A promise that resolves once `open()` is called. */
function latch(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
}

/** No deferrable delivery started before every critical one had ended. */
function assertDeferrableAfterCritical(sent: readonly Sent[]): void {
  const criticalDone = Math.max(
    ...sent.filter((s) => s.priority === 'critical').map((s) => s.done ?? Infinity),
  );
  const firstDeferrable = Math.min(
    ...sent.filter((s) => s.priority === 'deferrable').map((s) => s.at),
  );
  assert.ok(firstDeferrable >= criticalDone, 'deferrable waited for the critical backlog');
}

for (const backend of BACKENDS) {
  describe(`delivery back-pressure: ${backend.name}`, { skip: backend.skip }, () => {
    for (const via of ['gate status', 'backlog threshold'] as const) {
      test(`congestion by ${via} holds deferrable deliveries, not critical`, async () => {
        const db = await backend.create();
        const store = await db.open();
        let congested = true;
        const base = passThroughGate();
        const engine = createEngine({
          store,
          pollMs: { min: 2, max: 20 },
          gate: {
            attempt: (a) => base.attempt(a),
            status: (id) => ({
              id,
              circuit: 'closed',
              inFlight: 0,
              concurrencyLimit: 4,
              congested: via === 'gate status' && congested,
            }),
          },
          // A backlog limit of 0: crm's deferrable deliveries wait while any critical one is
          // queued (with 1 they may go once the first of the two has ended, before the second).
          backpressure:
            via === 'backlog threshold' ? { destinationBacklog: { crm: 0 }, refreshMs: 10 } : {},
        });
        try {
          // Deliveries are written first (no sender yet), so the backlog is known before claims.
          await acceptNotes(engine);
          engine.start();
          await waitFor('handlers done', () => engine.counters.processed === 12);
          await sleep(50);
          const sent = recordCrm(engine, 200);
          await waitFor('critical delivered', () => sent.filter((s) => s.done).length >= 2);
          if (via === 'gate status') {
            await sleep(200);
            // The gate still reports congestion: only critical went.
            assert.deepEqual(
              sent.map((s) => s.priority),
              ['critical', 'critical'],
            );
            congested = false;
          }
          await waitFor('all delivered', () => sent.length === 12);
          assertDeferrableAfterCritical(sent);
        } finally {
          // Stopped here too when an assertion failed, so no loop outlives its store.
          await engine.stop();
          await store.close();
          await db.drop();
        }
      });
    }
  });
}

test('a slow read of the depths spaces the backlog refresh (at most 1/20 of the time)', async () => {
  const base = await openStore('sqlite::memory:');
  // Every read of the messages' depths takes 40 ms, as a count over a large PostgreSQL queue.
  const { store, reads } = watchDepthReads(base, () => sleep(40));
  const engine = createEngine({ store, backpressure: { refreshMs: 10 } });
  try {
    engine.start();
    await sleep(1200);
    // Every 10 ms would be about 24 reads of 50 ms; spaced, one at start and one after 800 ms.
    assert.ok(reads() >= 1, 'the backlog was read');
    assert.ok(reads() <= 3, `${reads()} reads in 1.2 s`);
  } finally {
    await engine.stop();
    await base.close();
  }
});

test('deliveries the engine writes count at once, however long since the depths were read', async () => {
  const base = await openStore('sqlite::memory:');
  // The first read of the depths answers; the next one waits until the test ends (a slow count
  // over a large PostgreSQL queue, or reads spaced far apart): back-pressure must still see the
  // critical deliveries the handlers write meanwhile, and their delivery.
  const end = latch();
  const { store, reads } = watchDepthReads(base, async (n) => {
    if (n > 1) await end.opened;
  });
  const engine = createEngine({
    store,
    pollMs: { min: 2, max: 20 },
    gate: passThroughGate(),
    // A backlog limit of 0: crm's deferrable deliveries wait while any critical one is queued.
    backpressure: { destinationBacklog: { crm: 0 }, refreshMs: 10 },
  });
  try {
    engine.start();
    await waitFor('the first read of the depths', () => reads() >= 2);
    await acceptNotes(engine);
    await waitFor('handlers done', () => engine.counters.processed === 12);
    const sent = recordCrm(engine, 150);
    // No read of the depths answers during the test: what holds the deferrable deliveries back
    // is the engine's own count of the critical ones its handlers wrote (two, over crm's 0),
    // and what lets them go is its count of those delivered.
    await waitFor('all delivered', () => sent.filter((s) => s.done).length === 12);
    assert.equal(reads(), 2, 'no depth read answered after the first');
    assertDeferrableAfterCritical(sent);
  } finally {
    end.open();
    await engine.stop();
    await base.close();
  }
});

test('dead letters replayed count at once, however long since the depths were read', async () => {
  const base = await openStore('sqlite::memory:');
  // The second read of the depths answers when the engine stops (which waits for it), before
  // anything is replayed; later ones wait until the test ends.
  const stopping = latch();
  const end = latch();
  const { store, reads } = watchDepthReads(base, async (n) => {
    if (n === 2) await stopping.opened;
    if (n > 2) await end.opened;
  });
  const engine = createEngine({
    store,
    pollMs: { min: 2, max: 20 },
    handlerRetry: { maxAttempts: 1 },
    backpressure: { deferrableBacklogLimit: 1, refreshMs: 10 },
  });
  engine.registerHandler('note', async () => {
    throw new Error('crm down');
  });
  const note = (i: number) =>
    engine.accept({
      source: 'test',
      idempotencyKey: `n-${i}`,
      requestHash: 'h',
      type: 'note',
      partitionKey: `c-${i}`,
      priority: 'deferrable',
      payload: { i },
    });
  try {
    engine.start();
    await waitFor('the first read of the depths', () => reads() >= 2);
    for (const i of [1, 2]) assert.equal((await note(i)).outcome, 'accepted');
    await waitFor('both dead', () => engine.counters.deadLettered === 2);
    // Dead, the two no longer count: a deferrable accept is taken (and dies too).
    assert.equal((await note(3)).outcome, 'accepted');
    await waitFor('the third dead', () => engine.counters.deadLettered === 3);
    // Stopped, the engine claims nothing more: what is replayed stays queued.
    stopping.open();
    await engine.stop();
    const replayed = await engine.deadLetters.replayMatching({});
    assert.equal(replayed.length, 3);
    assert.ok(replayed.every((r) => r.kind === 'message' && r.priority === 'deferrable'));
    // Three deferrable messages queued again, over the limit of 1, with no read answered since:
    // refused.
    assert.equal((await note(4)).outcome, 'backpressure');
  } finally {
    end.open();
    await engine.stop();
    await base.close();
  }
});
