// The ledger's decision rules, without SQL: every arrival order of a consistent stream, with
// duplicates and late events, converges to the in-order on-hand.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LedgerModel,
  countIncludes,
  decideAdjustment,
  type StockAdjustment,
} from '../../../src/domains/inventory/index.js';
import { seededRandom, shuffle } from './support.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');

function delta(source: string, seq: number, d: number, t = T0 + seq * 1000): StockAdjustment {
  return {
    sku: 'SKU-1',
    location: 'STORE-1',
    reason: d > 0 ? 'receipt' : 'sale',
    delta: d,
    sourceSystem: source,
    sourceSequence: seq,
    sourceTimestamp: t,
  };
}

function count(source: string, seq: number, c: number, t = T0 + seq * 1000): StockAdjustment {
  return {
    sku: 'SKU-1',
    location: 'STORE-1',
    reason: 'cycle_count',
    count: c,
    sourceSystem: source,
    sourceSequence: seq,
    sourceTimestamp: t,
  };
}

function run(events: StockAdjustment[]): LedgerModel {
  const m = new LedgerModel();
  for (const e of events) m.apply(e);
  return m;
}

describe('ledger rules', () => {
  test('deltas in order add up', () => {
    assert.equal(
      run([delta('wms', 1, 10), delta('wms', 2, -3), delta('wms', 3, 5)]).state.onHand,
      12,
    );
  });

  test('out-of-order deltas apply once each', () => {
    assert.equal(
      run([delta('wms', 3, 5), delta('wms', 1, 10), delta('wms', 2, -3)]).state.onHand,
      12,
    );
  });

  test('a duplicate never double-counts, and is logged as duplicate', () => {
    const m = run([
      delta('wms', 1, 10),
      delta('wms', 1, 10),
      delta('wms', 2, -3),
      delta('wms', 1, 10),
    ]);
    assert.equal(m.state.onHand, 7);
    assert.deepEqual(
      m.log.map((l) => l.outcome),
      ['applied', 'duplicate', 'applied', 'duplicate'],
    );
  });

  test('a count after deltas resets on-hand', () => {
    const m = run([delta('erp', 1, 10), delta('erp', 2, -3), count('erp', 3, 4)]);
    assert.equal(m.state.onHand, 4);
  });

  test('deltas with a higher sequence after a count apply on top', () => {
    assert.equal(
      run([count('erp', 3, 4), delta('erp', 4, 6), delta('erp', 5, -1)]).state.onHand,
      9,
    );
  });

  test('a late delta older than the last count is superseded', () => {
    const m = run([count('erp', 3, 4), delta('erp', 2, -3)]);
    assert.equal(m.state.onHand, 4);
    assert.equal(m.log[1]?.outcome, 'superseded');
  });

  test('a late count carries the newer deltas already applied and folds the older', () => {
    const m = run([delta('erp', 1, 10), delta('erp', 4, 2), count('erp', 3, 7)]);
    assert.equal(m.state.onHand, 9);
    const d = decideAdjustment(
      { onHand: 0, countEpoch: 0, lastCount: null },
      count('erp', 3, 7),
      false,
      [
        { logId: 1, sourceSystem: 'erp', sourceSequence: 1, sourceTimestamp: T0 + 1000, delta: 10 },
        { logId: 2, sourceSystem: 'erp', sourceSequence: 4, sourceTimestamp: T0 + 4000, delta: 2 },
      ],
    );
    assert.equal(d.outcome, 'applied');
    if (d.outcome === 'applied' && d.kind === 'count') {
      assert.deepEqual(
        d.folded.map((x) => x.logId),
        [1],
      );
      assert.deepEqual(
        d.carried.map((x) => x.logId),
        [2],
      );
      assert.equal(d.countEpoch, 1);
    }
  });

  test('an older count after a newer one is superseded', () => {
    const m = run([count('erp', 5, 20), count('erp', 3, 4)]);
    assert.equal(m.state.onHand, 20);
    assert.equal(m.log[1]?.outcome, 'superseded');
  });

  test('the same count twice is a duplicate', () => {
    const m = run([count('erp', 5, 20), delta('erp', 6, 1), count('erp', 5, 20)]);
    assert.equal(m.state.onHand, 21);
    assert.equal(m.log[2]?.outcome, 'duplicate');
  });

  test('across sources a count includes movements up to its source time', () => {
    // WMS movement at t=2s, ERP count at t=3s, POS sale at t=4s.
    const events = [
      delta('wms', 100, 5, T0 + 2000),
      count('erp', 7, 50, T0 + 3000),
      delta('pos', 9, -1, T0 + 4000),
    ];
    for (const order of [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ]) {
      assert.equal(run(order.map((i) => events[i]!)).state.onHand, 49, `order ${order.join(',')}`);
    }
  });

  test('sequences of different sources are independent', () => {
    assert.equal(
      run([delta('wms', 1, 5), delta('pos', 1, -1), delta('wms', 1, 5)]).state.onHand,
      4,
    );
  });

  test('countIncludes: same source by sequence, other sources by time', () => {
    const c = { sourceSystem: 'erp', sourceSequence: 10, sourceTimestamp: T0 };
    assert.equal(
      countIncludes(c, { sourceSystem: 'erp', sourceSequence: 9, sourceTimestamp: T0 + 9e6 }),
      true,
    );
    assert.equal(
      countIncludes(c, { sourceSystem: 'erp', sourceSequence: 11, sourceTimestamp: T0 - 9e6 }),
      false,
    );
    assert.equal(
      countIncludes(c, { sourceSystem: 'wms', sourceSequence: 1, sourceTimestamp: T0 }),
      true,
    );
    assert.equal(
      countIncludes(c, { sourceSystem: 'wms', sourceSequence: 1, sourceTimestamp: T0 + 1 }),
      false,
    );
  });

  test('random streams of three sources converge under shuffles, duplicates and late events', () => {
    const random = seededRandom(42);
    for (let round = 0; round < 300; round++) {
      const stream: StockAdjustment[] = [];
      const seq: Record<string, number> = { erp: 0, wms: 0, pos: 0 };
      let t = T0;
      for (let i = 0; i < 25; i++) {
        const source = (['erp', 'wms', 'pos'] as const)[Math.floor(random() * 3)]!;
        seq[source]! += 1 + Math.floor(random() * 3);
        t += 1 + Math.floor(random() * 1000);
        const isCount = source === 'erp' && random() < 0.3;
        stream.push(
          isCount
            ? count(source, seq[source]!, Math.floor(random() * 100), t)
            : delta(
                source,
                seq[source]!,
                (random() < 0.5 ? -1 : 1) * (1 + Math.floor(random() * 9)),
                t,
              ),
        );
      }
      const expected = run(stream).state.onHand;
      const arrivals = [...stream];
      for (let i = 0; i < 8; i++) arrivals.push(stream[Math.floor(random() * stream.length)]!);
      shuffle(arrivals, random);
      assert.equal(run(arrivals).state.onHand, expected, `round ${round}`);
    }
  });
});
