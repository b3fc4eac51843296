// Unsupervised estimation of the Fellegi–Sunter parameters, as Splink does it: u probabilities
// from pairs drawn at random (almost all of them different customers; the exact level's u is
// computed from the value counts instead, which is exact and cheap), m probabilities and the
// share of matches by expectation–maximisation over the blocked pairs. EM sees each distinct
// comparison pattern once, with its count, so it costs nothing next to comparing the pairs.
import type { MatchThresholds, NormalisedCustomer } from './contract.js';
import { FIELDS, NULL_LEVEL } from './fields.js';
import {
  BLOCKING_FAMILIES,
  blockingKeys,
  DEFAULT_THRESHOLDS,
  defaultParameters,
  type LevelParameter,
  type MatchParameters,
} from './matcher.js';

/** Candidate pairs: indices into `a` and `b` (into `a` twice when deduplicating). */
export interface CandidatePairs {
  left: Uint32Array;
  right: Uint32Array;
  count: number;
  /** Per pair, a bit per blocking-key family (the key's prefix) that proposed it. */
  families: Uint32Array;
  /** Family name of each bit. */
  familyNames: string[];
}

export interface BlockingOptions {
  /** A key held by more records than this is too common to block on (default 300). */
  maxBlockSize?: number;
  keys?: (r: NormalisedCustomer) => string[];
}

/**
 * Every pair sharing at least one blocking key, once. Without `b`, pairs within `a` (i < j);
 * with `b`, pairs across the two.
 */
export function candidatePairs(
  a: readonly NormalisedCustomer[],
  b?: readonly NormalisedCustomer[],
  opts: BlockingOptions = {},
): CandidatePairs {
  const maxBlock = opts.maxBlockSize ?? 300;
  const keysOf = opts.keys ?? blockingKeys;
  // Most keys are held by one record: a bare index until a second record shares the key keeps
  // the garbage down.
  const blocksA = new Map<string, number | number[]>();
  for (let i = 0; i < a.length; i++) {
    for (const k of keysOf(a[i]!)) {
      const held = blocksA.get(k);
      if (held === undefined) blocksA.set(k, i);
      else if (typeof held === 'number') blocksA.set(k, [held, i]);
      else held.push(i);
    }
  }
  const seen = new Map<number, number>();
  const left: number[] = [];
  const right: number[] = [];
  const families: number[] = [];
  const familyBits = new Map<string, number>();
  const bitOf = (key: string): number => {
    const family = key.slice(0, Math.max(0, key.indexOf(':')));
    let bit = familyBits.get(family);
    if (bit === undefined) {
      bit = Math.min(familyBits.size, 31);
      familyBits.set(family, bit);
    }
    return 1 << bit;
  };
  const push = (i: number, j: number, width: number, bit: number) => {
    const code = i * width + j;
    const at = seen.get(code);
    if (at !== undefined) {
      families[at]! |= bit;
      return;
    }
    seen.set(code, left.length);
    left.push(i);
    right.push(j);
    families.push(bit);
  };
  if (b === undefined) {
    const n = a.length;
    for (const [key, list] of blocksA) {
      if (typeof list === 'number' || list.length > maxBlock) continue;
      const bit = bitOf(key);
      for (let x = 0; x < list.length; x++) {
        for (let y = x + 1; y < list.length; y++) push(list[x]!, list[y]!, n, bit);
      }
    }
  } else {
    const keysB = b.map((r) => keysOf(r));
    const sizeB = new Map<string, number>();
    for (const keys of keysB) for (const k of keys) sizeB.set(k, (sizeB.get(k) ?? 0) + 1);
    for (let j = 0; j < b.length; j++) {
      for (const k of keysB[j]!) {
        const held = blocksA.get(k);
        if (held === undefined || sizeB.get(k)! > maxBlock) continue;
        const bit = bitOf(k);
        if (typeof held === 'number') push(held, j, b.length, bit);
        else if (held.length <= maxBlock) for (const i of held) push(i, j, b.length, bit);
      }
    }
  }
  const familyNames: string[] = [];
  for (const [name, bit] of familyBits) familyNames[bit] = name;
  return {
    left: Uint32Array.from(left),
    right: Uint32Array.from(right),
    count: left.length,
    families: Uint32Array.from(families),
    familyNames,
  };
}

/** Levels of every candidate pair, `FIELDS.length` entries per pair. */
export function pairLevels(
  a: readonly NormalisedCustomer[],
  b: readonly NormalisedCustomer[],
  pairs: CandidatePairs,
): Int8Array {
  const width = FIELDS.length;
  const out = new Int8Array(pairs.count * width);
  for (let p = 0; p < pairs.count; p++) {
    const ra = a[pairs.left[p]!]!;
    const rb = b[pairs.right[p]!]!;
    for (let f = 0; f < width; f++) out[p * width + f] = FIELDS[f]!.compare(ra, rb);
  }
  return out;
}

/** A small seeded generator (mulberry32) so estimates are reproducible. */
export function seededRandom(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

export interface EstimateOptions {
  /** Link against this second set instead of deduplicating `records`. */
  against?: readonly NormalisedCustomer[];
  /** Pairs drawn at random for u (default 30,000). */
  randomPairs?: number;
  /** EM iterations at most, per run (default 60). */
  maxIterations?: number;
  seed?: number;
  thresholds?: MatchThresholds;
  /** Weight, in pseudo-pairs, of the generic m values EM starts from (default 10). */
  priorStrength?: number;
  /** Let EM move u too (classic EM) instead of keeping the random-pair u. */
  freeU?: boolean;
  blocking?: BlockingOptions;
  /** Candidate pairs and their levels when the caller has computed them already. */
  pairs?: CandidatePairs;
  levels?: Int8Array;
}

export interface EstimateDiagnostics {
  candidatePairs: number;
  patterns: number;
  iterations: number;
  /** Share of matches among the candidate pairs, as EM found it. */
  candidateMatchShare: number;
  /** Matches EM expects among the candidate pairs. */
  expectedMatches: number;
}

export interface EstimatedParameters extends MatchParameters {
  diagnostics: EstimateDiagnostics;
}

/** u of each field's levels, from value counts (exact) and random pairs (the others). */
function estimateU(
  a: readonly NormalisedCustomer[],
  b: readonly NormalisedCustomer[],
  dedupe: boolean,
  samples: number,
  random: () => number,
): number[][] {
  const width = FIELDS.length;
  const sampled = FIELDS.map((f) => new Float64Array(f.levels.length));
  if (a.length > 0 && b.length > 0 && (!dedupe || a.length > 1)) {
    for (let s = 0; s < samples; s++) {
      const i = Math.floor(random() * a.length);
      let j = Math.floor(random() * b.length);
      if (dedupe && i === j) j = (j + 1) % b.length;
      const ra = a[i]!;
      const rb = b[j]!;
      for (let f = 0; f < width; f++) {
        const level = FIELDS[f]!.compare(ra, rb);
        if (level !== NULL_LEVEL) sampled[f]![level]! += 1;
      }
    }
  }
  return FIELDS.map((f, fi) => {
    // Exact agreement by chance: sum over values of the product of their shares.
    const countsA = new Map<string, number>();
    const countsB = new Map<string, number>();
    let na = 0;
    let nb = 0;
    for (const r of a) {
      const v = f.value(r);
      if (v === undefined) continue;
      countsA.set(v, (countsA.get(v) ?? 0) + 1);
      na++;
    }
    if (!dedupe) {
      for (const r of b) {
        const v = f.value(r);
        if (v === undefined) continue;
        countsB.set(v, (countsB.get(v) ?? 0) + 1);
        nb++;
      }
    }
    let agree = 0;
    if (dedupe) {
      for (const c of countsA.values()) agree += c * (c - 1);
      agree = na > 1 ? agree / (na * (na - 1)) : 0;
    } else {
      for (const [v, c] of countsA) agree += c * (countsB.get(v) ?? 0);
      agree = na > 0 && nb > 0 ? agree / (na * nb) : 0;
    }
    const levels = f.levels.length;
    const counts = sampled[fi]!;
    let rest = 0;
    for (let l = 1; l < levels; l++) rest += counts[l]!;
    const total = rest;
    const floor = 1 / (2 * Math.max(samples, 1) * levels);
    const uExact = Math.max(agree, floor);
    const u = new Array<number>(levels).fill(0);
    u[0] = uExact;
    for (let l = 1; l < levels; l++) {
      const share = total > 0 ? counts[l]! / total : l === levels - 1 ? 1 : 0;
      u[l] = Math.max((1 - uExact) * share, floor);
    }
    return u;
  });
}

/** Starting m: most mass on exact, the rest falling off level by level. */
function initialM(levels: number): number[] {
  if (levels === 2) return [0.9, 0.1];
  const rest = 0.1;
  const m = [0.9];
  let weightSum = 0;
  for (let l = 1; l < levels; l++) weightSum += 1 / l;
  for (let l = 1; l < levels; l++) m.push((rest * (1 / l)) / weightSum);
  return m;
}

interface Patterns {
  patterns: Int8Array[];
  counts: number[];
  total: number;
}

/** Distinct comparison patterns with their counts (mixed-radix code: level + 1 per field). */
function aggregate(levels: Int8Array, count: number, keep: (p: number) => boolean): Patterns {
  const width = FIELDS.length;
  const radix = FIELDS.map((f) => f.levels.length + 1);
  const byCode = new Map<number, number>();
  let total = 0;
  for (let p = 0; p < count; p++) {
    if (!keep(p)) continue;
    let code = 0;
    for (let f = 0; f < width; f++) code = code * radix[f]! + (levels[p * width + f]! + 1);
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
    total++;
  }
  const patterns: Int8Array[] = [];
  const counts: number[] = [];
  for (const [code, n] of byCode) {
    const v = new Int8Array(width);
    let rest = code;
    for (let f = width - 1; f >= 0; f--) {
      v[f] = (rest % radix[f]!) - 1;
      rest = Math.floor(rest / radix[f]!);
    }
    patterns.push(v);
    counts.push(n);
  }
  return { patterns, counts, total };
}

interface EmSettings {
  maxIterations: number;
  priorStrength: number;
  mPrior: number[][];
}

interface EmResult {
  m: number[][];
  u: number[][];
  lambda: number;
  matches: number;
  iterations: number;
  /** Expected matches with a value in each field. */
  observed: number[];
}

/**
 * EM over aggregated patterns: fields where `include` is false are left out of the likelihood;
 * with `fixU`, u stays at `uStart` and only m and the match share move.
 */
function runEm(
  data: Patterns,
  mStart: number[][],
  uStart: number[][],
  include: boolean[],
  fixU: boolean,
  settings: EmSettings,
): EmResult {
  const width = FIELDS.length;
  let m = mStart.map((row) => [...row]);
  let u = uStart.map((row) => [...row]);
  let lambda = 0.1;
  let matches = 0;
  let observed = FIELDS.map(() => 0);
  let iterations = 0;
  const posterior = new Float64Array(data.patterns.length);
  for (; iterations < settings.maxIterations; iterations++) {
    // log(u/m) per field and level, once per iteration.
    const logRatio = FIELDS.map((_, f) => m[f]!.map((mv, l) => Math.log(u[f]![l]! / mv)));
    const base = Math.log(1 - lambda) - Math.log(lambda);
    for (let p = 0; p < data.patterns.length; p++) {
      let d = base;
      const v = data.patterns[p]!;
      for (let f = 0; f < width; f++) {
        const l = v[f]!;
        if (l === NULL_LEVEL || !include[f]) continue;
        d += logRatio[f]![l]!;
      }
      posterior[p] = d > 50 ? 0 : d < -50 ? 1 : 1 / (1 + Math.exp(d));
    }
    const mNext = FIELDS.map((f) => new Array<number>(f.levels.length).fill(0));
    const uNext = FIELDS.map((f) => new Array<number>(f.levels.length).fill(0));
    matches = 0;
    observed = FIELDS.map(() => 0);
    for (let p = 0; p < data.patterns.length; p++) {
      const c = data.counts[p]!;
      const w = posterior[p]! * c;
      matches += w;
      const v = data.patterns[p]!;
      for (let f = 0; f < width; f++) {
        const l = v[f]!;
        if (l === NULL_LEVEL) continue;
        mNext[f]![l]! += w;
        uNext[f]![l]! += c - w;
        observed[f]! += w;
      }
    }
    // MAP rather than plain maximum likelihood: the generic m values count as `priorStrength`
    // pseudo-pairs, which steadies a small file and vanishes next to a large one.
    const mNew = mNext.map((row, f) => {
      const sum = row.reduce((acc, x) => acc + x, 0) + settings.priorStrength;
      return row.map((x, l) => (x + settings.priorStrength * settings.mPrior[f]![l]!) / sum);
    });
    const lambdaNew = Math.min(Math.max(matches / Math.max(data.total, 1), 1e-9), 1 - 1e-9);
    let change = Math.abs(lambdaNew - lambda);
    for (let f = 0; f < width; f++) {
      for (let l = 0; l < mNew[f]!.length; l++) {
        change = Math.max(change, Math.abs(mNew[f]![l]! - m[f]![l]!));
      }
    }
    m = mNew;
    if (!fixU) {
      u = uNext.map((row) => {
        const sum = row.reduce((acc, x) => acc + x, 0) + 0.5 * row.length;
        return row.map((x) => (x + 0.5) / sum);
      });
    }
    lambda = lambdaNew;
    if (change < 1e-5) {
      iterations++;
      break;
    }
  }
  return { m, u, lambda, matches, iterations, observed };
}

/**
 * Estimates m, u and the prior from the records themselves (no labels): u from random pairs,
 * m by EM over the blocked candidate pairs.
 */
export function estimateParameters(
  records: readonly NormalisedCustomer[],
  opts: EstimateOptions = {},
): EstimatedParameters {
  const dedupe = opts.against === undefined;
  const a = records;
  const b = opts.against ?? records;
  const pairs = opts.pairs ?? candidatePairs(a, opts.against, opts.blocking);
  const levels = opts.levels ?? pairLevels(a, b, pairs);
  const width = FIELDS.length;
  const random = seededRandom(opts.seed ?? 20_240_601);
  const uRandom = estimateU(a, b, dedupe, opts.randomPairs ?? 30_000, random);

  const defaults = defaultParameters();
  const mPrior = FIELDS.map((f) => {
    const row = f.levels.map(
      (level, l) => defaults.fields[f.name]?.[level]?.m ?? initialM(f.levels.length)[l]!,
    );
    const sum = row.reduce((acc, x) => acc + x, 0);
    return row.map((x) => x / sum);
  });
  const settings: EmSettings = {
    maxIterations: opts.maxIterations ?? 60,
    priorStrength: opts.priorStrength ?? 10,
    mPrior,
  };
  const all = aggregate(levels, pairs.count, () => true);
  const everyField = FIELDS.map(() => true);

  // 1. Classic EM (m and u free) over all candidate pairs: a starting point, and the fallback
  //    for a field that every blocking family involves.
  const classic = runEm(all, mPrior, uRandom, everyField, false, settings);

  // 2. As Splink does: one EM per blocking family with u fixed to the random-pair u, each
  //    estimating m only for the fields its keys do not involve (pairs proposed by a surname key
  //    agree on surname because of the blocking, which says nothing of matches).
  const mSum = FIELDS.map((f) => new Array<number>(f.levels.length).fill(0));
  const mWeight = FIELDS.map(() => 0);
  let iterations = classic.iterations;
  pairs.familyNames.forEach((family, bit) => {
    const involved = BLOCKING_FAMILIES[family];
    if (!involved) return;
    const include = FIELDS.map((f) => !involved.includes(f.name));
    const mask = 1 << bit;
    const subset = aggregate(levels, pairs.count, (p) => (pairs.families[p]! & mask) !== 0);
    if (subset.total < 10) return;
    const run = runEm(subset, classic.m, uRandom, include, true, settings);
    iterations += run.iterations;
    FIELDS.forEach((_, f) => {
      if (!include[f] || run.observed[f]! <= 0) return;
      const w = run.matches;
      mWeight[f]! += w;
      run.m[f]!.forEach((x, l) => (mSum[f]![l]! += w * x));
    });
  });
  const m = FIELDS.map((_, f) =>
    mWeight[f]! > 0 ? mSum[f]!.map((x) => x / mWeight[f]!) : classic.m[f]!,
  );

  // 3. The prior over all pairs: the share of matches the final model expects, pairs outside
  //    every block counting as non-matches.
  const totalPairs = dedupe ? (a.length * (a.length - 1)) / 2 : a.length * b.length;
  let prior = Math.min(Math.max(classic.matches / Math.max(totalPairs, 1), 1e-12), 0.5);
  let expectedMatches = classic.matches;
  const bayes = all.patterns.map((v) => {
    let lr = 0;
    for (let f = 0; f < width; f++) {
      const l = v[f]!;
      if (l !== NULL_LEVEL) lr += Math.log(m[f]![l]! / uRandom[f]![l]!);
    }
    return lr;
  });
  for (let i = 0; i < 100; i++) {
    const logOdds = Math.log(prior / (1 - prior));
    let matches = 0;
    for (let p = 0; p < bayes.length; p++) {
      const z = logOdds + bayes[p]!;
      matches += all.counts[p]! * (z > 40 ? 1 : z < -40 ? 0 : 1 / (1 + Math.exp(-z)));
    }
    const next = Math.min(Math.max(matches / Math.max(totalPairs, 1), 1e-12), 0.5);
    expectedMatches = matches;
    if (Math.abs(next - prior) <= prior * 1e-6) {
      prior = next;
      break;
    }
    prior = next;
  }
  const patterns = all.patterns;
  const lambda = expectedMatches / Math.max(all.total, 1);
  const fields: Record<string, Record<string, LevelParameter>> = {};
  FIELDS.forEach((f, fi) => {
    const row: Record<string, LevelParameter> = {};
    // A field no pair has a value in has nothing to say.
    let seen = false;
    for (let p = 0; p < patterns.length && !seen; p++) seen = patterns[p]![fi] !== NULL_LEVEL;
    if (!seen) return;
    f.levels.forEach((level, l) => {
      row[level] = { m: m[fi]![l]!, u: uRandom[fi]![l]! };
    });
    fields[f.name] = row;
  });
  return {
    prior,
    fields,
    thresholds: opts.thresholds ?? { ...DEFAULT_THRESHOLDS },
    termFrequencyAdjustment: true,
    diagnostics: {
      candidatePairs: pairs.count,
      patterns: patterns.length,
      iterations,
      candidateMatchShare: Math.min(lambda, 1),
      expectedMatches,
    },
  };
}
