// Group commit: which items share a batch, over turns of the event loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit } from '../../src/runtime/group-commit.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

function recorder(over: { maxBatch?: number; maxInFlight?: number; gatherMs?: number } = {}) {
  const batches: number[][] = [];
  const group = new GroupCommit<number>({
    maxBatch: over.maxBatch ?? 100,
    maxInFlight: over.maxInFlight ?? 4,
    gatherMs: over.gatherMs ?? 1000,
    commit: async (batch) => {
      batches.push(batch);
      await turn();
    },
  });
  return { batches, group };
}

test('a lone item is committed in the first turn', async () => {
  const { batches, group } = recorder();
  group.add(1);
  await turn();
  assert.deepEqual(batches, [[1]]);
});

test('while each turn brings more, the batch waits; the first quiet turn commits it', async () => {
  const { batches, group } = recorder();
  group.add(1);
  group.add(2);
  await turn();
  group.add(3);
  await turn();
  assert.deepEqual(batches, []);
  await turn();
  assert.deepEqual(batches, [[1, 2, 3]]);
});

test('without a gathering window each turn commits what it gathered', async () => {
  const { batches, group } = recorder({ gatherMs: 0 });
  group.add(1);
  group.add(2);
  await turn();
  group.add(3);
  await turn();
  await turn();
  assert.deepEqual(batches, [[1, 2], [3]]);
});

test('a full batch is committed at once, the rest in its own batch', async () => {
  const { batches, group } = recorder({ maxBatch: 3 });
  for (let i = 1; i <= 5; i++) group.add(i);
  assert.deepEqual(batches, [[1, 2, 3]]);
  await turn();
  await turn();
  assert.deepEqual(batches, [
    [1, 2, 3],
    [4, 5],
  ]);
});

test('drain commits what is still gathering and waits for every commit', async () => {
  const { batches, group } = recorder({ maxBatch: 2 });
  let done = 0;
  const slow = new GroupCommit<number>({
    maxBatch: 10,
    maxInFlight: 1,
    gatherMs: 1000,
    commit: async () => {
      await new Promise((r) => setTimeout(r, 20));
      done++;
    },
  });
  slow.add(1);
  await slow.drain();
  assert.equal(done, 1);
  group.add(1);
  group.add(2);
  group.add(3);
  await group.drain();
  assert.deepEqual(batches, [[1, 2], [3]]);
});
