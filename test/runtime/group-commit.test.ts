// Group commit: which items share a batch, over turns of the event loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommit } from '../../src/runtime/group-commit.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

interface Item {
  n: number;
  reject(e: unknown): void;
}
const item = (n: number): Item => ({ n, reject: () => undefined });

function recorder(over: { maxBatch?: number; maxInFlight?: number; gatherMs?: number } = {}) {
  const batches: number[][] = [];
  const group = new GroupCommit<Item>({
    maxBatch: over.maxBatch ?? 100,
    maxInFlight: over.maxInFlight ?? 4,
    gatherMs: over.gatherMs ?? 1000,
    commit: async (batch) => {
      batches.push(batch.map((i) => i.n));
      await turn();
    },
  });
  return { batches, group };
}

test('a lone item is committed in the first turn', async () => {
  const { batches, group } = recorder();
  group.add(item(1));
  await turn();
  assert.deepEqual(batches, [[1]]);
});

test('while each turn brings more, the batch waits; the first quiet turn commits it', async () => {
  const { batches, group } = recorder();
  group.add(item(1));
  group.add(item(2));
  await turn();
  group.add(item(3));
  await turn();
  assert.deepEqual(batches, []);
  await turn();
  assert.deepEqual(batches, [[1, 2, 3]]);
});

test('without a gathering window each turn commits what it gathered', async () => {
  const { batches, group } = recorder({ gatherMs: 0 });
  group.add(item(1));
  group.add(item(2));
  await turn();
  group.add(item(3));
  await turn();
  await turn();
  assert.deepEqual(batches, [[1, 2], [3]]);
});

test('a full batch is committed at once, the rest in its own batch', async () => {
  const { batches, group } = recorder({ maxBatch: 3 });
  for (let i = 1; i <= 5; i++) group.add(item(i));
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
  const slow = new GroupCommit<Item>({
    maxBatch: 10,
    maxInFlight: 1,
    gatherMs: 1000,
    commit: async () => {
      await new Promise((r) => setTimeout(r, 20));
      done++;
    },
  });
  slow.add(item(1));
  await slow.drain();
  assert.equal(done, 1);
  group.add(item(1));
  group.add(item(2));
  group.add(item(3));
  await group.drain();
  assert.deepEqual(batches, [[1, 2], [3]]);
});

test('drain also commits items added while it waits for a commit', async () => {
  const batches: number[][] = [];
  let late = false;
  const group = new GroupCommit<Item>({
    maxBatch: 10,
    maxInFlight: 1,
    gatherMs: 1000,
    commit: async (batch) => {
      batches.push(batch.map((i) => i.n));
      await new Promise((r) => setTimeout(r, 20));
      // A caller adds one more while the first commit runs (as an accept can during stop).
      if (!late) {
        late = true;
        group.add(item(2));
      }
    },
  });
  group.add(item(1));
  await group.drain();
  assert.deepEqual(batches, [[1], [2]]);
});

test('a commit that rejects rejects each item of its batch; later batches still commit', async () => {
  const batches: number[][] = [];
  const refused: [number, string][] = [];
  const group = new GroupCommit<Item>({
    maxBatch: 2,
    maxInFlight: 1,
    gatherMs: 0,
    commit: async (batch) => {
      batches.push(batch.map((i) => i.n));
      if (batch.some((i) => i.n === 1)) throw new Error('store gone');
    },
  });
  const failing = (n: number): Item => ({
    n,
    reject: (e) => refused.push([n, (e as Error).message]),
  });
  group.add(failing(1));
  group.add(failing(2));
  group.add(failing(3));
  await group.drain();
  assert.deepEqual(batches, [[1, 2], [3]]);
  assert.deepEqual(refused, [
    [1, 'store gone'],
    [2, 'store gone'],
  ]);
});
