// The customer matching engine, usable alone: normalise records, block, compare, score with
// Fellegi–Sunter weights estimated by EM, explain every decision. The customer domain and the
// `middlemart match` CLI import from here.
export type {
  CustomerFields,
  FieldComparison,
  Matcher,
  MatchDecision,
  MatchExplanation,
  MatchThresholds,
  NormalisedCustomer,
} from './contract.js';
export {
  dayMonthTransposed,
  daysOf,
  jaro,
  jaroWinkler,
  levenshtein,
  soundex,
} from './comparators.js';
export { compareLevels, FIELDS, NULL_LEVEL, type FieldDefinition } from './fields.js';
export {
  BLOCKING_FAMILIES,
  blockingKeys,
  createMatcher,
  decisionOf,
  defaultParameters,
  DEFAULT_THRESHOLDS,
  probabilityOf,
  TermFrequencies,
  type EngineMatcher,
  type LevelParameter,
  type MatcherOptions,
  type MatchParameters,
  type TermFrequencySource,
} from './matcher.js';
export {
  candidatePairs,
  estimateParameters,
  pairLevels,
  seededRandom,
  type BlockingOptions,
  type CandidatePairs,
  type EstimateDiagnostics,
  type EstimatedParameters,
  type EstimateOptions,
} from './estimate.js';
export {
  linkRecords,
  type LinkOptions,
  type LinkRecord,
  type LinkResult,
  type ScoredPair,
} from './link.js';
export {
  MatchIndex,
  type IndexMatch,
  type MatchIndexOptions,
  type MatchQueryOptions,
} from './match-index.js';
export {
  DEFAULT_EMAIL_RULES,
  normaliseAddressLine,
  normaliseCustomer,
  normaliseDate,
  normaliseEmail,
  normaliseName,
  normalisePhone,
  normalisePostcode,
  type EmailProviderRule,
  type NormaliseOptions,
} from '../normalise.js';
export { canonicalGivenName } from '../nicknames.js';
export {
  COLUMN_ALIASES,
  fieldsFromRow,
  recogniseColumns,
  type ColumnMapping,
  type CustomerFieldName,
} from './columns.js';
export {
  MatchConfigSchema,
  parametersFromConfig,
  parseMatchConfig,
  type MatchConfig,
  type MatchConfigIssue,
  type MatchConfigResult,
} from './config.js';
