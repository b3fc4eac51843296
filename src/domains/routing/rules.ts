// Routing rules as the routing domain reads them: a name, conditions over the facts of a
// transaction, and the system that gets it. A condition is a list of accepted values; an absent
// condition accepts anything. First match wins.
import type { ErpProcess, RoutingFacts } from '../../ports/routing.js';

export const ROUTED_PROCESSES: readonly ErpProcess[] = [
  'order',
  'return',
  'inventory',
  'customer',
  'price',
];

/** The dimensions a rule may test, in the order explanations list them. */
export const DIMENSIONS = [
  'process',
  'event',
  'businessUnit',
  'country',
  'region',
  'channel',
  'store',
] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** Dimensions that narrow a transaction beyond its kind (process / event). */
export const ATTRIBUTE_DIMENSIONS: readonly Dimension[] = [
  'businessUnit',
  'country',
  'region',
  'channel',
  'store',
];

/** A condition as written in the estate config: one value or a list. */
export type ConditionValue = string | readonly string[];

export interface RouteRule {
  name: string;
  when: Partial<Record<Dimension, ConditionValue>>;
  to: string;
}

/** A rule with every condition as a set. */
export interface NormalizedRule {
  name: string;
  /** Position in the configured list. */
  index: number;
  to: string;
  conditions: Partial<Record<Dimension, ReadonlySet<string>>>;
}

/** `order.created` → `order`; undefined when the event's domain is no routed process. */
export function processOfEvent(event: string): ErpProcess | undefined {
  const domain = event.split('.')[0] as ErpProcess;
  return ROUTED_PROCESSES.includes(domain) ? domain : undefined;
}

export function normalizeRule(rule: RouteRule, index: number): NormalizedRule {
  const conditions: Partial<Record<Dimension, ReadonlySet<string>>> = {};
  for (const dim of DIMENSIONS) {
    const value = rule.when[dim];
    if (value === undefined) continue;
    conditions[dim] = new Set(typeof value === 'string' ? [value] : value);
  }
  return { name: rule.name, index, to: rule.to, conditions };
}

/**
 * The processes a rule can match: its `process` condition, narrowed by the processes its
 * events belong to (undefined = any process).
 */
export function processesOf(rule: NormalizedRule): ReadonlySet<string> | undefined {
  const explicit = rule.conditions.process;
  const events = rule.conditions.event;
  if (!events) return explicit;
  const implied = new Set<string>();
  for (const e of events) {
    const p = processOfEvent(e);
    if (p) implied.add(p);
  }
  // An event outside the routed processes (e.g. shipment.confirmed) can only match by name.
  if (implied.size < events.size) return explicit;
  return explicit ? new Set([...implied].filter((p) => explicit.has(p))) : implied;
}

export interface ConditionCheck {
  dimension: Dimension;
  expected: readonly string[];
  actual: string | undefined;
  ok: boolean;
}

/** Every condition of `rule` checked against `facts`. */
export function checkRule(rule: NormalizedRule, facts: RoutingFacts): ConditionCheck[] {
  const checks: ConditionCheck[] = [];
  for (const dim of DIMENSIONS) {
    const accepted = rule.conditions[dim];
    if (!accepted) continue;
    const actual = facts[dim];
    let ok = actual !== undefined && accepted.has(actual);
    if (dim === 'event' && actual === undefined) {
      // A caller that names no event is matched by the process its events belong to.
      ok = [...accepted].some((e) => processOfEvent(e) === facts.process);
    }
    checks.push({ dimension: dim, expected: [...accepted], actual, ok });
  }
  return checks;
}

export function ruleMatches(rule: NormalizedRule, facts: RoutingFacts): boolean {
  return checkRule(rule, facts).every((c) => c.ok);
}

/** `country=DE, channel in [web, mobile]`, or `anything` for a rule without conditions. */
export function describeConditions(rule: NormalizedRule): string {
  const parts = DIMENSIONS.filter((d) => rule.conditions[d]).map((d) => {
    const values = [...rule.conditions[d]!];
    return values.length === 1 ? `${d}=${values[0]}` : `${d} in [${values.join(', ')}]`;
  });
  return parts.length ? parts.join(', ') : 'anything';
}
