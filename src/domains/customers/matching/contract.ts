// The matching engine's contract: what the customer domain (golden records, stewardship) and the
// `middlemart match` CLI use. The engine itself knows nothing of storage: it normalises records,
// proposes blocking keys, and explains how two records compare.

/** A customer record as any source gives it (all optional; unknown = absent). */
export interface CustomerFields {
  givenName?: string;
  surname?: string;
  /** A full name when the source has no split (split by the normaliser). */
  fullName?: string;
  email?: string;
  /** True when the source verified the email (deterministic rule). */
  emailVerified?: boolean;
  phone?: string;
  /** ISO date (YYYY-MM-DD) or a common form the normaliser understands (YYYYMMDD, DD/MM/YYYY). */
  dateOfBirth?: string;
  street?: string;
  streetNumber?: string;
  addressLine2?: string;
  postcode?: string;
  city?: string;
  state?: string;
  /** ISO 3166-1 alpha-2; also the default region for phone parsing. */
  country?: string;
  loyaltyId?: string;
  erpAccount?: string;
  /** Only in benchmark data sets (FEBRL); retail data has none. */
  nationalId?: string;
}

/** The normalised form every comparison and blocking key is computed on. */
export interface NormalisedCustomer {
  givenName?: string;
  /** Nickname-resolved given name (bill → william). */
  givenNameCanonical?: string;
  surname?: string;
  email?: string;
  emailVerified?: boolean;
  /** E.164. */
  phone?: string;
  /** YYYY-MM-DD. */
  dateOfBirth?: string;
  /** Standardised tokens (street → st, …), number included. */
  street?: string;
  /** The house number alone (compared on its own when present). */
  streetNumber?: string;
  /** The street without its number, standardised tokens. */
  streetName?: string;
  /** Second address line (building, locality), standardised tokens. */
  addressLine2?: string;
  postcode?: string;
  city?: string;
  state?: string;
  country?: string;
  loyaltyId?: string;
  erpAccount?: string;
  nationalId?: string;
}

/** How one field compared: the level reached and the log2 Bayes factor it contributed. */
export interface FieldComparison {
  field: string;
  /** e.g. `exact`, `jaro-winkler>=0.92`, `levenshtein<=1`, `date-within-1y`, `else`, `null`. */
  level: string;
  /** log2(m/u) of the level, term-frequency adjusted where it applies; 0 for `null`. */
  weight: number;
}

export type MatchDecision = 'link' | 'review' | 'distinct';

export interface MatchExplanation {
  /** Match weight: the prior's log2 odds plus every field's weight. */
  score: number;
  /** Match probability from the score. */
  probability: number;
  decision: MatchDecision;
  /** The deterministic rule that linked the pair (e.g. `same-verified-email`), if any. */
  rule?: string;
  fields: FieldComparison[];
}

export interface MatchThresholds {
  /** Probability at or above which a pair is linked automatically. */
  link: number;
  /** Probability at or above which (and below `link`) a pair goes to stewardship review. */
  review: number;
}

export interface Matcher {
  readonly thresholds: MatchThresholds;
  /** Keys under which a record is indexed; two records are compared when they share one. */
  blockingKeys(record: NormalisedCustomer): string[];
  explain(a: NormalisedCustomer, b: NormalisedCustomer): MatchExplanation;
}
