// The Fellegi–Sunter matcher: per-field comparison levels, each with an m probability (the level
// is seen when the two records are the same customer) and a u probability (when they are not).
// A level's weight is log2(m/u); a pair's score is the prior's log2 odds plus every field's
// weight; the probability follows from the score. Deterministic rules (same verified email, same
// loyalty id, same ERP account) link a pair whatever the score says, and say which rule did.
import { soundex } from './comparators.js';
import type {
  FieldComparison,
  Matcher,
  MatchDecision,
  MatchExplanation,
  MatchThresholds,
  NormalisedCustomer,
} from './contract.js';
import { compareLevels, FIELDS, NULL_LEVEL } from './fields.js';

export interface LevelParameter {
  /** P(level | same customer). */
  m: number;
  /** P(level | different customers). */
  u: number;
}

export interface MatchParameters {
  /** Probability that two records drawn at random are the same customer. */
  prior: number;
  /** Field name → level name → m/u. A field or level missing here contributes weight 0. */
  fields: Record<string, Record<string, LevelParameter>>;
  thresholds: MatchThresholds;
  /** Adjust exact-match weights of names, city and postcode by value frequency (default true). */
  termFrequencyAdjustment?: boolean;
}

export const DEFAULT_THRESHOLDS: MatchThresholds = { link: 0.95, review: 0.5 };

/** How common a value is among the records a matcher works on. */
export interface TermFrequencySource {
  /** Share of the records (with a value in this field) that hold `value`; undefined if unknown. */
  frequency(field: string, value: string): number | undefined;
}

/** Value counts per term-frequency field, kept up to date as records come and go. */
export class TermFrequencies implements TermFrequencySource {
  private readonly counts = new Map<string, Map<string, number>>();
  private readonly totals = new Map<string, number>();

  constructor(records: Iterable<NormalisedCustomer> = []) {
    for (const f of FIELDS) {
      if (f.termFrequency) {
        this.counts.set(f.name, new Map());
        this.totals.set(f.name, 0);
      }
    }
    for (const r of records) this.add(r);
  }

  add(record: NormalisedCustomer): void {
    this.change(record, 1);
  }

  remove(record: NormalisedCustomer): void {
    this.change(record, -1);
  }

  private change(record: NormalisedCustomer, delta: number): void {
    for (const f of FIELDS) {
      if (!f.termFrequency) continue;
      const v = f.value(record);
      if (v === undefined) continue;
      const counts = this.counts.get(f.name)!;
      const next = (counts.get(v) ?? 0) + delta;
      if (next <= 0) counts.delete(v);
      else counts.set(v, next);
      this.totals.set(f.name, (this.totals.get(f.name) ?? 0) + delta);
    }
  }

  frequency(field: string, value: string): number | undefined {
    const total = this.totals.get(field);
    if (!total || total <= 0) return undefined;
    const c = this.counts.get(field)?.get(value);
    return c === undefined ? undefined : c / total;
  }
}

export interface EngineMatcher extends Matcher {
  readonly parameters: MatchParameters;
  /** The comparison level of every field (index into each field's levels; -1 = null). */
  compareLevels(a: NormalisedCustomer, b: NormalisedCustomer): Int8Array;
  /** The score of a pair from its levels (term frequencies looked up on `a`'s values). */
  scoreLevels(levels: Int8Array, a: NormalisedCustomer): number;
  /** The deterministic rule two records satisfy, if any. */
  rule(a: NormalisedCustomer, b: NormalisedCustomer): string | undefined;
  /** The full explanation from levels already computed. */
  explainLevels(levels: Int8Array, a: NormalisedCustomer, b: NormalisedCustomer): MatchExplanation;
}

export interface MatcherOptions {
  termFrequencies?: TermFrequencySource;
}

/** Probability from a match weight (log2 odds). */
export function probabilityOf(score: number): number {
  if (score > 60) return 1;
  if (score < -60) return 0;
  const odds = 2 ** score;
  return odds / (1 + odds);
}

export function decisionOf(probability: number, thresholds: MatchThresholds): MatchDecision {
  if (probability >= thresholds.link) return 'link';
  if (probability >= thresholds.review) return 'review';
  return 'distinct';
}

function log2(x: number): number {
  return Math.log(x) / Math.LN2;
}

function initial(s: string | undefined): string {
  return s ? s[0]! : '';
}

/**
 * The fields each blocking-key family (the key's prefix) involves: pairs it proposes agree on
 * them by construction, so EM over those pairs learns nothing about them.
 */
export const BLOCKING_FAMILIES: Readonly<Record<string, readonly string[]>> = {
  em: ['email'],
  el: ['email'],
  ph: ['phone'],
  ly: [],
  erp: [],
  nid: ['nationalId'],
  dob: ['dateOfBirth'],
  sy: ['surname', 'dateOfBirth'],
  gy: ['givenName', 'dateOfBirth'],
  sx: ['surname', 'givenName'],
  pg: ['postcode', 'givenName'],
  ps: ['postcode', 'surname'],
  ad: ['streetNumber', 'streetName'],
  cs: ['city', 'surname'],
};

/**
 * Keys under which a record is indexed: two records are compared when they share one. Several
 * independent keys so one corrupted field does not hide a match.
 */
export function blockingKeys(r: NormalisedCustomer): string[] {
  const keys: string[] = [];
  const year = r.dateOfBirth?.slice(0, 4);
  const given = r.givenNameCanonical ?? r.givenName;
  if (r.email) keys.push(`em:${r.email}`);
  if (r.phone) keys.push(`ph:${r.phone}`);
  if (r.loyaltyId) keys.push(`ly:${r.loyaltyId}`);
  if (r.erpAccount) keys.push(`erp:${r.erpAccount}`);
  if (r.nationalId) keys.push(`nid:${r.nationalId}`);
  if (r.dateOfBirth) keys.push(`dob:${r.dateOfBirth}`);
  if (r.surname && year) keys.push(`sy:${r.surname}|${year}`);
  if (given && year) keys.push(`gy:${given}|${year}`);
  if (r.surname && given) {
    // Order-free, so a given name and surname entered the wrong way round still meet.
    const codes = [soundex(r.surname), soundex(given)].sort();
    keys.push(`sx:${codes[0]}|${codes[1]}`);
  }
  if (r.email) keys.push(`el:${r.email.slice(0, r.email.lastIndexOf('@'))}`);
  if (r.postcode && given) keys.push(`pg:${r.postcode}|${initial(given)}`);
  if (r.postcode && r.surname) keys.push(`ps:${r.postcode}|${initial(r.surname)}`);
  if (r.streetNumber && r.streetName) keys.push(`ad:${r.streetNumber}|${r.streetName}`);
  if (r.city && r.surname) keys.push(`cs:${r.city}|${soundex(r.surname)}`);
  return keys;
}

interface CompiledField {
  name: string;
  levels: readonly string[];
  /** log2(m/u) per level; 0 when the level has no parameters. */
  weights: Float64Array;
  m0: number;
  u0: number;
  termFrequency: boolean;
}

function compile(params: MatchParameters): CompiledField[] {
  return FIELDS.map((f) => {
    const p = params.fields[f.name] ?? {};
    const weights = new Float64Array(f.levels.length);
    f.levels.forEach((level, i) => {
      const lp = p[level];
      weights[i] = lp && lp.m > 0 && lp.u > 0 ? log2(lp.m / lp.u) : 0;
    });
    const exact = p['exact'];
    return {
      name: f.name,
      levels: f.levels,
      weights,
      m0: exact?.m ?? 0,
      u0: exact?.u ?? 0,
      termFrequency: f.termFrequency && params.termFrequencyAdjustment !== false,
    };
  });
}

/** A matcher over fixed parameters (estimated by {@link estimateParameters} or from config). */
export function createMatcher(
  params: MatchParameters,
  options: MatcherOptions = {},
): EngineMatcher {
  const compiled = compile(params);
  const priorWeight = log2(params.prior / (1 - params.prior));
  const tf = options.termFrequencies;

  function weightOf(i: number, level: number, a: NormalisedCustomer): number {
    if (level === NULL_LEVEL) return 0;
    const c = compiled[i]!;
    if (level === 0 && tf && c.termFrequency && c.m0 > 0 && c.u0 > 0) {
      const value = FIELDS[i]!.value(a);
      const freq = value === undefined ? undefined : tf.frequency(c.name, value);
      // A value rarer than the average agreement weighs more, a common one less.
      if (freq !== undefined && freq > 0) return log2(c.m0 / freq);
    }
    return c.weights[level] ?? 0;
  }

  function scoreLevels(levels: Int8Array, a: NormalisedCustomer): number {
    let score = priorWeight;
    for (let i = 0; i < levels.length; i++) score += weightOf(i, levels[i]!, a);
    return score;
  }

  function rule(a: NormalisedCustomer, b: NormalisedCustomer): string | undefined {
    if (a.email && a.emailVerified && b.emailVerified && a.email === b.email) {
      return 'same-verified-email';
    }
    if (a.loyaltyId && a.loyaltyId === b.loyaltyId) return 'same-loyalty-id';
    if (a.erpAccount && a.erpAccount === b.erpAccount) return 'same-erp-account';
    return undefined;
  }

  function explainLevels(
    levels: Int8Array,
    a: NormalisedCustomer,
    b: NormalisedCustomer,
  ): MatchExplanation {
    const fields: FieldComparison[] = [];
    let score = priorWeight;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      const weight = weightOf(i, level, a);
      score += weight;
      fields.push({
        field: compiled[i]!.name,
        level: level === NULL_LEVEL ? 'null' : compiled[i]!.levels[level]!,
        weight: Math.round(weight * 1000) / 1000,
      });
    }
    const probability = probabilityOf(score);
    const matchedRule = rule(a, b);
    const explanation: MatchExplanation = {
      score: Math.round(score * 1000) / 1000,
      probability,
      decision: matchedRule ? 'link' : decisionOf(probability, params.thresholds),
      fields,
    };
    if (matchedRule) explanation.rule = matchedRule;
    return explanation;
  }

  return {
    parameters: params,
    thresholds: params.thresholds,
    blockingKeys,
    compareLevels,
    scoreLevels,
    rule,
    explainLevels,
    explain: (a, b) => explainLevels(compareLevels(a, b), a, b),
  };
}

/** Generic m/u per level for a start without data: [m, u]. */
const DEFAULT_LEVELS: Record<string, Record<string, [number, number]>> = {
  givenName: {
    exact: [0.85, 0.005],
    nickname: [0.04, 0.001],
    'jaro-winkler>=0.92': [0.05, 0.003],
    'swapped-with-surname': [0.01, 0.00001],
    'jaro-winkler>=0.8': [0.03, 0.02],
    else: [0.02, 0.97],
  },
  surname: {
    exact: [0.88, 0.002],
    'jaro-winkler>=0.92': [0.06, 0.002],
    'swapped-with-given-name': [0.01, 0.00001],
    'jaro-winkler>=0.8': [0.03, 0.02],
    else: [0.02, 0.976],
  },
  dateOfBirth: {
    exact: [0.9, 0.0001],
    'day-month-transposed': [0.02, 0.00001],
    'levenshtein<=1': [0.04, 0.002],
    'levenshtein<=2': [0.02, 0.02],
    else: [0.02, 0.978],
  },
  streetNumber: { exact: [0.85, 0.03], else: [0.15, 0.97] },
  streetName: {
    exact: [0.8, 0.001],
    'jaro-winkler>=0.9': [0.1, 0.002],
    'jaro-winkler>=0.75': [0.04, 0.02],
    else: [0.06, 0.977],
  },
  addressLine2: { exact: [0.8, 0.002], 'jaro-winkler>=0.9': [0.1, 0.003], else: [0.1, 0.995] },
  city: { exact: [0.85, 0.01], 'jaro-winkler>=0.9': [0.08, 0.005], else: [0.07, 0.985] },
  postcode: { exact: [0.85, 0.005], 'levenshtein<=1': [0.08, 0.03], else: [0.07, 0.965] },
  state: { exact: [0.9, 0.2], else: [0.1, 0.8] },
  email: {
    exact: [0.8, 0.00001],
    'same-local-part': [0.05, 0.0005],
    'levenshtein<=2': [0.05, 0.0001],
    'jaro-winkler>=0.88': [0.04, 0.001],
    else: [0.06, 0.9984],
  },
  phone: { exact: [0.8, 0.00001], 'levenshtein<=1': [0.05, 0.0001], else: [0.15, 0.9999] },
  nationalId: {
    exact: [0.9, 0.00001],
    'levenshtein<=1': [0.05, 0.0001],
    'levenshtein<=2': [0.02, 0.001],
    else: [0.03, 0.9989],
  },
};

/**
 * Parameters for a start without data: moderate, generic m/u values (m from typical keying-error
 * rates, u from typical value diversity in a retail customer base). Estimating from the data
 * (`estimateParameters`) replaces them as soon as there are records.
 */
export function defaultParameters(expectedCustomers = 100_000): MatchParameters {
  const fields: Record<string, Record<string, LevelParameter>> = {};
  for (const f of FIELDS) {
    const row: Record<string, LevelParameter> = {};
    for (const level of f.levels) {
      const mu = DEFAULT_LEVELS[f.name]?.[level];
      if (mu) row[level] = { m: mu[0], u: mu[1] };
    }
    fields[f.name] = row;
  }
  return { prior: 1 / expectedCustomers, thresholds: { ...DEFAULT_THRESHOLDS }, fields };
}
