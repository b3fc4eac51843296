// The availability ledger's decision rules, free of SQL: given what is known of one
// sku@location, what does an `inventory.adjusted` do to its on-hand stock?
//
// - Sequences are per source system; they order that source's movements. Across sources only
//   the source timestamps compare.
// - A delta is applied once, whatever order it arrives in (deltas commute). The same source and
//   sequence again is a duplicate and changes nothing.
// - An absolute count is a stock take at its source time: it resets on-hand and includes every
//   movement older than it. A delta it includes is superseded: ignored when it arrives later,
//   and folded into the count when it had already been applied. Deltas newer than the count are
//   carried on top of it, whatever order count and deltas arrive in.
// - A count older than the last applied count is superseded.
//
// With consistent sources (each source's sequence and time rise together) every arrival order,
// with duplicates and late events, converges to the on-hand of the in-order stream.

export type AdjustmentOutcome = 'applied' | 'duplicate' | 'superseded';

/** An adjustment as the ledger decides on it (times as epoch milliseconds). */
export interface StockAdjustment {
  sku: string;
  location: string;
  reason: string;
  /** Exactly one of delta and count. */
  delta?: number;
  count?: number;
  sourceSystem: string;
  sourceSequence: number;
  sourceTimestamp: number;
}

/** Where in a source's history an adjustment sits. */
export interface SourceMark {
  sourceSystem: string;
  sourceSequence: number;
  sourceTimestamp: number;
}

/** An applied delta recorded in the current count epoch (since the last applied count). */
export interface RecordedDelta extends SourceMark {
  logId: number;
  delta: number;
}

export interface LedgerState {
  onHand: number;
  /** Increments with every applied count. */
  countEpoch: number;
  /** The last applied count, if any. */
  lastCount: SourceMark | null;
}

export type AdjustmentDecision =
  | { outcome: 'duplicate'; onHand: number }
  | { outcome: 'superseded'; onHand: number; supersededBy: SourceMark }
  | { outcome: 'applied'; kind: 'delta'; onHand: number }
  | {
      outcome: 'applied';
      kind: 'count';
      onHand: number;
      countEpoch: number;
      /** Deltas newer than the count: they stay applied, on top of it. */
      carried: RecordedDelta[];
      /** Deltas the count already includes: now superseded by it. */
      folded: RecordedDelta[];
    };

/** True when a stock take at `count` already includes the movement at `mark`. */
export function countIncludes(count: SourceMark, mark: SourceMark): boolean {
  if (count.sourceSystem === mark.sourceSystem) return mark.sourceSequence < count.sourceSequence;
  return mark.sourceTimestamp <= count.sourceTimestamp;
}

/** True when count `candidate` is older than the applied count `current`. */
export function countIsStale(current: SourceMark, candidate: SourceMark): boolean {
  if (current.sourceSystem === candidate.sourceSystem) {
    return candidate.sourceSequence < current.sourceSequence;
  }
  return candidate.sourceTimestamp < current.sourceTimestamp;
}

export function isCount(adj: StockAdjustment): adj is StockAdjustment & { count: number } {
  return adj.count !== undefined;
}

/**
 * Decides what an adjustment does.
 * @param alreadyRecorded the same sku@location, source system and sequence was applied or
 *   superseded before
 * @param deltasSinceCount the deltas applied in the current count epoch (only read for counts)
 */
export function decideAdjustment(
  state: LedgerState,
  adj: StockAdjustment,
  alreadyRecorded: boolean,
  deltasSinceCount: readonly RecordedDelta[] = [],
): AdjustmentDecision {
  if (alreadyRecorded) return { outcome: 'duplicate', onHand: state.onHand };
  const mark: SourceMark = {
    sourceSystem: adj.sourceSystem,
    sourceSequence: adj.sourceSequence,
    sourceTimestamp: adj.sourceTimestamp,
  };
  if (!isCount(adj)) {
    const delta = adj.delta ?? 0;
    if (state.lastCount && countIncludes(state.lastCount, mark)) {
      return { outcome: 'superseded', onHand: state.onHand, supersededBy: state.lastCount };
    }
    return { outcome: 'applied', kind: 'delta', onHand: state.onHand + delta };
  }
  if (state.lastCount && countIsStale(state.lastCount, mark)) {
    return { outcome: 'superseded', onHand: state.onHand, supersededBy: state.lastCount };
  }
  const carried: RecordedDelta[] = [];
  const folded: RecordedDelta[] = [];
  for (const d of deltasSinceCount) (countIncludes(mark, d) ? folded : carried).push(d);
  const onHand = carried.reduce((sum, d) => sum + d.delta, adj.count);
  return {
    outcome: 'applied',
    kind: 'count',
    onHand,
    countEpoch: state.countEpoch + 1,
    carried,
    folded,
  };
}

/**
 * An in-memory ledger of one sku@location built on `decideAdjustment`: the reference the SQL
 * ledger is tested against, and a reader's model of the rules.
 */
export class LedgerModel {
  state: LedgerState = { onHand: 0, countEpoch: 0, lastCount: null };
  private readonly recorded = new Set<string>();
  private epochDeltas: RecordedDelta[] = [];
  private nextId = 1;
  readonly log: { adjustment: StockAdjustment; outcome: AdjustmentOutcome; onHand: number }[] = [];

  apply(adj: StockAdjustment): AdjustmentDecision {
    const key = `${adj.sourceSystem}\u0000${adj.sourceSequence}`;
    const decision = decideAdjustment(this.state, adj, this.recorded.has(key), this.epochDeltas);
    if (decision.outcome !== 'duplicate') this.recorded.add(key);
    if (decision.outcome === 'applied') {
      if (decision.kind === 'delta') {
        this.epochDeltas.push({
          logId: this.nextId++,
          sourceSystem: adj.sourceSystem,
          sourceSequence: adj.sourceSequence,
          sourceTimestamp: adj.sourceTimestamp,
          delta: adj.delta ?? 0,
        });
        this.state = { ...this.state, onHand: decision.onHand };
      } else {
        this.epochDeltas = [...decision.carried];
        this.state = {
          onHand: decision.onHand,
          countEpoch: decision.countEpoch,
          lastCount: {
            sourceSystem: adj.sourceSystem,
            sourceSequence: adj.sourceSequence,
            sourceTimestamp: adj.sourceTimestamp,
          },
        };
      }
    }
    this.log.push({ adjustment: adj, outcome: decision.outcome, onHand: this.state.onHand });
    return decision;
  }
}
