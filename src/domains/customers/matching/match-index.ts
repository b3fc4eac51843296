// An in-memory blocking index over stored customers: a new record is compared only with the
// records sharing one of its blocking keys, so matching stays fast at any size. Term
// frequencies follow the stored records.
import type { MatchExplanation, NormalisedCustomer } from './contract.js';
import {
  createMatcher,
  TermFrequencies,
  type EngineMatcher,
  type MatchParameters,
} from './matcher.js';

export interface MatchIndexOptions {
  /** A key shared by more stored records than this is skipped when looking up (default 300). */
  maxBlockSize?: number;
}

export interface IndexMatch {
  id: string;
  explanation: MatchExplanation;
}

export interface MatchQueryOptions {
  /** At most this many results (default 10). */
  limit?: number;
  /** Also return pairs decided `distinct` (default false: `link` and `review` only). */
  includeDistinct?: boolean;
  /** A stored id to leave out (the record itself when re-matching it). */
  excludeId?: string;
}

export class MatchIndex {
  readonly matcher: EngineMatcher;
  private readonly records = new Map<string, NormalisedCustomer>();
  private readonly keysOfId = new Map<string, string[]>();
  private readonly blocks = new Map<string, Set<string>>();
  private readonly termFrequencies = new TermFrequencies();
  private readonly maxBlockSize: number;

  constructor(parameters: MatchParameters, options: MatchIndexOptions = {}) {
    this.matcher = createMatcher(parameters, { termFrequencies: this.termFrequencies });
    this.maxBlockSize = options.maxBlockSize ?? 300;
  }

  get size(): number {
    return this.records.size;
  }

  get(id: string): NormalisedCustomer | undefined {
    return this.records.get(id);
  }

  /** Stores (or replaces) a record under `id`. */
  add(id: string, record: NormalisedCustomer): void {
    if (this.records.has(id)) this.remove(id);
    const keys = this.matcher.blockingKeys(record);
    this.records.set(id, record);
    this.keysOfId.set(id, keys);
    this.termFrequencies.add(record);
    for (const k of keys) {
      let set = this.blocks.get(k);
      if (!set) {
        set = new Set();
        this.blocks.set(k, set);
      }
      set.add(id);
    }
  }

  remove(id: string): boolean {
    const record = this.records.get(id);
    if (!record) return false;
    for (const k of this.keysOfId.get(id) ?? []) {
      const set = this.blocks.get(k);
      set?.delete(id);
      if (set && set.size === 0) this.blocks.delete(k);
    }
    this.records.delete(id);
    this.keysOfId.delete(id);
    this.termFrequencies.remove(record);
    return true;
  }

  /** Stored ids sharing at least one blocking key with `record`. */
  candidates(record: NormalisedCustomer, excludeId?: string): string[] {
    const out = new Set<string>();
    for (const k of this.matcher.blockingKeys(record)) {
      const set = this.blocks.get(k);
      if (!set || set.size > this.maxBlockSize) continue;
      for (const id of set) if (id !== excludeId) out.add(id);
    }
    return [...out];
  }

  /** The best stored matches of `record`, best first, each with its explanation. */
  match(record: NormalisedCustomer, options: MatchQueryOptions = {}): IndexMatch[] {
    const limit = options.limit ?? 10;
    const scored: { id: string; score: number; levels: Int8Array; stored: NormalisedCustomer }[] =
      [];
    for (const id of this.candidates(record, options.excludeId)) {
      const stored = this.records.get(id)!;
      const levels = this.matcher.compareLevels(record, stored);
      // A deterministic rule ranks first whatever the score.
      const ruled = this.matcher.rule(record, stored) !== undefined;
      const score = this.matcher.scoreLevels(levels, record) + (ruled ? 1e6 : 0);
      scored.push({ id, score, levels, stored });
    }
    scored.sort((x, y) => y.score - x.score);
    const out: IndexMatch[] = [];
    for (const s of scored) {
      const explanation = this.matcher.explainLevels(s.levels, record, s.stored);
      if (!options.includeDistinct && explanation.decision === 'distinct') continue;
      out.push({ id: s.id, explanation });
      if (out.length >= limit) break;
    }
    return out;
  }
}
