// The routing domain: which ERP instance gets each transaction (docs/decisions/0015).
export {
  ATTRIBUTE_DIMENSIONS,
  DIMENSIONS,
  ROUTED_PROCESSES,
  checkRule,
  describeConditions,
  normalizeRule,
  processOfEvent,
  processesOf,
  ruleMatches,
  type ConditionCheck,
  type ConditionValue,
  type Dimension,
  type NormalizedRule,
  type RouteRule,
} from './rules.js';
export {
  analyseRouting,
  intersects,
  subsumes,
  type AnalyseOptions,
  type RoutingFinding,
} from './analysis.js';
export {
  NoRouteError,
  RoutingRulesError,
  RuleBasedErpRouter,
  type RouteExplanation,
  type RuleEvaluation,
  type RuleRouterOptions,
} from './router.js';
export { orderRoutingFacts, type FactsExtra } from './facts.js';
