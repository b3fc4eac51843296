// The ERP router: a content-based router over the estate's routing rules that go to ERP
// systems. First match wins; when no rule matches and the estate has exactly one ERP, that ERP is
// the default; otherwise the transaction has no route (a permanent error: fix the rules). The
// rule list can be replaced while running (the wiring watches the config file); a replacement
// with errors is refused and the previous rules stay in force.
import type { ErpRouter, RoutingDecision, RoutingFacts } from '../../ports/routing.js';
import { analyseRouting, type RoutingFinding } from './analysis.js';
import {
  checkRule,
  describeConditions,
  normalizeRule,
  type ConditionCheck,
  type NormalizedRule,
  type RouteRule,
} from './rules.js';

export class NoRouteError extends Error {
  override readonly name = 'NoRouteError';
  constructor(
    message: string,
    readonly facts: RoutingFacts,
  ) {
    super(message);
  }
}

/** A rule list that cannot be used (unreachable rules, no default …). */
export class RoutingRulesError extends Error {
  override readonly name = 'RoutingRulesError';
  constructor(readonly findings: readonly RoutingFinding[]) {
    super(
      `routing rules refused: ${findings
        .filter((f) => f.severity === 'error')
        .map((f) => (f.rule ? `${f.rule}: ${f.message}` : f.message))
        .join('; ')}`,
    );
  }
}

export interface RuleEvaluation {
  rule: string;
  index: number;
  to: string;
  conditions: string;
  matched: boolean;
  checks: ConditionCheck[];
}

export interface RouteExplanation {
  facts: RoutingFacts;
  /** The decision, or undefined when nothing routes these facts. */
  decision: RoutingDecision | undefined;
  /** Every ERP rule up to the one that matched (all of them when none did), in order. */
  evaluated: RuleEvaluation[];
  /** Why there is no decision. */
  error?: string;
}

function factsText(facts: RoutingFacts): string {
  return Object.entries(facts)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(', ');
}

function mismatch(check: ConditionCheck): string {
  const wanted =
    check.expected.length === 1 ? check.expected[0] : `one of [${check.expected.join(', ')}]`;
  return `${check.dimension} is ${check.actual ?? '(none)'}, wants ${wanted}`;
}

export interface RuleRouterOptions {
  /** The ERP systems of the estate; only rules routing to them take part. */
  erpSystems: readonly string[];
}

export class RuleBasedErpRouter implements ErpRouter {
  private rules: NormalizedRule[] = [];
  private configured: RouteRule[] = [];
  private erpSystems: ReadonlySet<string>;
  /** Incremented on every accepted replacement. */
  version = 0;

  constructor(rules: readonly RouteRule[], opts: RuleRouterOptions) {
    this.erpSystems = new Set(opts.erpSystems);
    this.replace(rules, opts);
  }

  /** The rules in force (as configured, ERP and other). */
  get currentRules(): readonly RouteRule[] {
    return this.configured;
  }

  /**
   * Puts a new rule list in force; returns the warnings. Throws `RoutingRulesError` (and keeps
   * the previous rules) when the list has errors.
   */
  replace(rules: readonly RouteRule[], opts?: RuleRouterOptions): RoutingFinding[] {
    const erpSystems = opts ? new Set(opts.erpSystems) : this.erpSystems;
    const findings = analyseRouting(rules, { erpSystems });
    if (findings.some((f) => f.severity === 'error')) throw new RoutingRulesError(findings);
    this.erpSystems = erpSystems;
    this.configured = [...rules];
    this.rules = rules.map(normalizeRule).filter((r) => erpSystems.has(r.to));
    this.version++;
    return findings;
  }

  route(facts: RoutingFacts): RoutingDecision {
    const explanation = this.explain(facts);
    if (!explanation.decision) throw new NoRouteError(explanation.error!, facts);
    return explanation.decision;
  }

  explain(facts: RoutingFacts): RouteExplanation {
    const evaluated: RuleEvaluation[] = [];
    for (const rule of this.rules) {
      const checks = checkRule(rule, facts);
      const matched = checks.every((c) => c.ok);
      evaluated.push({
        rule: rule.name,
        index: rule.index,
        to: rule.to,
        conditions: describeConditions(rule),
        matched,
        checks,
      });
      if (matched) {
        const why = checks.length
          ? checks.map((c) => `${c.dimension}=${c.actual ?? `(${facts.process})`}`).join(', ')
          : 'it has no conditions (default)';
        return {
          facts,
          evaluated,
          decision: {
            system: rule.to,
            rule: rule.name,
            reason: `rule '${rule.name}' (routing[${rule.index}]) matched: ${why}`,
          },
        };
      }
    }
    if (this.erpSystems.size === 1) {
      const [only] = this.erpSystems;
      return {
        facts,
        evaluated,
        decision: {
          system: only!,
          rule: 'default',
          reason: `no rule matched; ${only} is the estate's only ERP`,
        },
      };
    }
    return {
      facts,
      evaluated,
      decision: undefined,
      error:
        `no routing rule matches ${factsText(facts)}` +
        (evaluated.length
          ? ` (${evaluated
              .map(
                (e) =>
                  `${e.rule}: ${e.checks
                    .filter((c) => !c.ok)
                    .map(mismatch)
                    .join('; ')}`,
              )
              .join(' | ')})`
          : ' (no rule routes to an ERP)'),
    };
  }

  /** A rule's checks as text, for explanations. */
  static describeMismatch(evaluation: RuleEvaluation): string {
    return evaluation.checks
      .filter((c) => !c.ok)
      .map(mismatch)
      .join('; ');
  }
}
