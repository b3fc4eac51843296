// Engine event listeners (observability subscribes to them): one that throws is reported as an
// engine error and fails no work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../src/runtime/engine.js';
import type { AcceptRequest } from '../../src/runtime/index.js';
import { openStore } from '../../src/store/index.js';
import { waitFor } from './support.js';

const req = (n: number): AcceptRequest => ({
  source: 'test',
  idempotencyKey: `k-${n}`,
  requestHash: 'h',
  type: 'thing.created',
  partitionKey: `p-${n % 2}`,
  priority: 'standard',
  payload: { n },
});

test('an accepted listener that throws fails no accept of its group commit', async () => {
  const store = await openStore('sqlite::memory:');
  const engine = createEngine({ store });
  const errors: string[] = [];
  engine.events.on('accepted', () => {
    throw new Error('listener bug');
  });
  engine.events.on('error', (e) => errors.push(e.where));
  try {
    const answers = await Promise.all([1, 2, 3].map((n) => engine.accept(req(n))));
    assert.deepEqual(
      answers.map((a) => a.outcome),
      ['accepted', 'accepted', 'accepted'],
    );
    assert.deepEqual(errors, ['accepted listener', 'accepted listener', 'accepted listener']);
  } finally {
    await engine.stop();
    await store.close();
  }
});

test('a processed listener that throws stops no message of its batch', async () => {
  const store = await openStore('sqlite::memory:');
  const engine = createEngine({ store, pollMs: { min: 2, max: 20 } });
  const handled: number[] = [];
  const errors: string[] = [];
  engine.registerHandler('thing.created', async (msg) => {
    handled.push((msg.payload as { n: number }).n);
  });
  engine.events.on('processed', () => {
    throw new Error('listener bug');
  });
  engine.events.on('error', (e) => errors.push(e.where));
  try {
    for (let n = 1; n <= 6; n++) await engine.accept(req(n));
    engine.start();
    await waitFor('processed', () => engine.counters.processed === 6);
    assert.deepEqual(
      [...handled].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6],
    );
    assert.equal(errors.filter((w) => w === 'processed listener').length, 6);
    const queued = await store.query<{ n: number }>(
      "SELECT COUNT(*) AS n FROM messages WHERE status = 'queued'",
    );
    assert.equal(Number(queued[0]!.n), 0);
  } finally {
    await engine.stop();
    await store.close();
  }
});
