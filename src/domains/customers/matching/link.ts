// Batch deduplication (one set) and linkage (two sets): block, compare, estimate the parameters
// by EM unless given, score every candidate pair, and group linked records into clusters
// (connected components over the linked pairs).
import type { MatchDecision, NormalisedCustomer } from './contract.js';
import {
  candidatePairs,
  estimateParameters,
  pairLevels,
  type BlockingOptions,
  type EstimateDiagnostics,
  type EstimateOptions,
} from './estimate.js';
import {
  createMatcher,
  decisionOf,
  defaultParameters,
  DEFAULT_THRESHOLDS,
  probabilityOf,
  TermFrequencies,
  type EngineMatcher,
  type MatchParameters,
} from './matcher.js';

export interface LinkRecord {
  id: string;
  record: NormalisedCustomer;
}

export interface ScoredPair {
  idA: string;
  idB: string;
  /** Match weight (log2 odds). */
  score: number;
  probability: number;
  decision: MatchDecision;
  rule?: string;
}

export interface LinkOptions {
  /** Fixed parameters (from config); estimated from the records when absent. */
  parameters?: MatchParameters;
  estimate?: Omit<EstimateOptions, 'against' | 'pairs' | 'levels'>;
  blocking?: BlockingOptions;
  /** Below this many records (default 50), generic parameters replace estimation. */
  minRecordsToEstimate?: number;
  /** Keep `review` pairs in the result too (default false: linked pairs only). */
  includeReview?: boolean;
  /** Called as candidate pairs are scored: (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface LinkResult {
  /** Linked pairs (and review pairs when asked), best score first. */
  pairs: ScoredPair[];
  /**
   * Cluster number per record, in input order: `clusters.a[i]` for `a[i]`, `clusters.b[j]` for
   * `b[j]`. Records linked directly or through others share a number; numbers start at 1.
   */
  clusters: { a: number[]; b: number[] };
  parameters: MatchParameters;
  matcher: EngineMatcher;
  candidatePairs: number;
  /** Where the parameters came from: the options, EM over the records, or generic defaults. */
  parameterSource: 'given' | 'estimated' | 'defaults';
  diagnostics?: EstimateDiagnostics;
}

class UnionFind {
  private readonly parent: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(x: number): number {
    let root = x;
    while (this.parent[root] !== root) root = this.parent[root]!;
    while (this.parent[x] !== root) {
      const next = this.parent[x]!;
      this.parent[x] = root;
      x = next;
    }
    return root;
  }
  union(x: number, y: number): void {
    const rx = this.find(x);
    const ry = this.find(y);
    if (rx !== ry) this.parent[Math.max(rx, ry)] = Math.min(rx, ry);
  }
}

/** Dedupes `a` (without `b`) or links `a` to `b`. */
export function linkRecords(
  a: readonly LinkRecord[],
  b?: readonly LinkRecord[],
  opts: LinkOptions = {},
): LinkResult {
  const ra = a.map((x) => x.record);
  const rb = b?.map((x) => x.record);
  const other = rb ?? ra;
  const pairs = candidatePairs(ra, rb, opts.blocking);
  const levels = pairLevels(ra, other, pairs);
  let parameters = opts.parameters;
  let diagnostics: EstimateDiagnostics | undefined;
  let source: LinkResult['parameterSource'] = 'given';
  const records = a.length + (b?.length ?? 0);
  if (!parameters && records < (opts.minRecordsToEstimate ?? 50)) {
    // Too few records for value frequencies and EM to mean anything: generic parameters.
    source = 'defaults';
    parameters = {
      ...defaultParameters(Math.max(records, 2)),
      thresholds: opts.estimate?.thresholds ?? { ...DEFAULT_THRESHOLDS },
    };
  }
  if (!parameters) {
    source = 'estimated';
    const estimated = estimateParameters(ra, {
      ...opts.estimate,
      ...(rb ? { against: rb } : {}),
      pairs,
      levels,
    });
    diagnostics = estimated.diagnostics;
    parameters = estimated;
  }
  const tf = new TermFrequencies(rb ? [...ra, ...rb] : ra);
  const matcher = createMatcher(parameters, { termFrequencies: tf });
  const width = levels.length / Math.max(pairs.count, 1);
  const kept: ScoredPair[] = [];
  const uf = new UnionFind(a.length + (b?.length ?? 0));
  const offset = b ? a.length : 0;
  const step = Math.max(1, Math.floor(pairs.count / 100));
  for (let p = 0; p < pairs.count; p++) {
    const i = pairs.left[p]!;
    const j = pairs.right[p]!;
    const x = ra[i]!;
    const y = other[j]!;
    const lv = levels.subarray(p * width, (p + 1) * width);
    const score = matcher.scoreLevels(lv, x);
    const probability = probabilityOf(score);
    const rule = matcher.rule(x, y);
    const decision = rule ? 'link' : decisionOf(probability, parameters.thresholds);
    if (decision === 'link') uf.union(i, offset + j);
    if (decision === 'link' || (decision === 'review' && opts.includeReview)) {
      const pair: ScoredPair = {
        idA: a[i]!.id,
        idB: (b ?? a)[j]!.id,
        score: Math.round(score * 1000) / 1000,
        probability,
        decision,
      };
      if (rule) pair.rule = rule;
      kept.push(pair);
    }
    if (opts.onProgress && p % step === 0) opts.onProgress(p, pairs.count);
  }
  opts.onProgress?.(pairs.count, pairs.count);
  kept.sort((x, y) => y.score - x.score);
  const numbers = new Map<number, number>();
  const clusterOf = (k: number) => {
    const root = uf.find(k);
    let n = numbers.get(root);
    if (n === undefined) {
      n = numbers.size + 1;
      numbers.set(root, n);
    }
    return n;
  };
  const clusters = {
    a: a.map((_, i) => clusterOf(i)),
    b: (b ?? []).map((_, j) => clusterOf(offset + j)),
  };
  const result: LinkResult = {
    pairs: kept,
    clusters,
    parameters,
    matcher,
    candidatePairs: pairs.count,
    parameterSource: source,
  };
  if (diagnostics) result.diagnostics = diagnostics;
  return result;
}
