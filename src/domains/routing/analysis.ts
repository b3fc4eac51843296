// What `middlemart config validate` and a routing reload say about a rule list: rules that can
// never match (an earlier rule takes everything they match), rules that partly overlap with a
// rule routing elsewhere (their order decides, silently), and conditional rules with no default
// behind them (a transaction they do not take would have nowhere to go).
import {
  ATTRIBUTE_DIMENSIONS,
  DIMENSIONS,
  describeConditions,
  normalizeRule,
  processOfEvent,
  processesOf,
  type NormalizedRule,
  type RouteRule,
} from './rules.js';

export interface RoutingFinding {
  severity: 'error' | 'warning';
  kind: 'unreachable' | 'overlap' | 'no-default';
  /** Index of the rule the finding is about. */
  index: number;
  rule: string;
  message: string;
}

function subset(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const v of a) if (!b.has(v)) return false;
  return true;
}

function meets(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const v of a) if (b.has(v)) return true;
  return false;
}

/** True when every transaction `b` matches is matched by `a` too. */
export function subsumes(a: NormalizedRule, b: NormalizedRule): boolean {
  for (const dim of DIMENSIONS) {
    const accepted = a.conditions[dim];
    if (!accepted) continue;
    if (dim === 'process') {
      const bp = processesOf(b);
      if (!bp || !subset(bp, accepted)) return false;
      continue;
    }
    const other = b.conditions[dim];
    if (!other || !subset(other, accepted)) return false;
  }
  return true;
}

/** True when some transaction matches both rules. */
export function intersects(a: NormalizedRule, b: NormalizedRule): boolean {
  const ap = processesOf(a);
  const bp = processesOf(b);
  if (ap && bp && !meets(ap, bp)) return false;
  for (const dim of DIMENSIONS) {
    if (dim === 'process') continue;
    const x = a.conditions[dim];
    const y = b.conditions[dim];
    if (!x || !y) continue;
    if (dim === 'event') {
      // Without an event in the facts, events match by their process.
      const px = new Set([...x].map(processOfEvent).filter((p): p is NonNullable<typeof p> => !!p));
      const py = new Set([...y].map(processOfEvent).filter((p): p is NonNullable<typeof p> => !!p));
      if (!meets(x, y) && !meets(px, py)) return false;
      continue;
    }
    if (!meets(x, y)) return false;
  }
  return true;
}

function hasAttributes(rule: NormalizedRule): boolean {
  return ATTRIBUTE_DIMENSIONS.some((d) => rule.conditions[d]);
}

export interface AnalyseOptions {
  /** Systems that are ERPs: their rules form the ERP routing and need a default. */
  erpSystems?: ReadonlySet<string>;
}

/** Findings about `rules`, in rule order. */
export function analyseRouting(
  rules: readonly RouteRule[],
  opts: AnalyseOptions = {},
): RoutingFinding[] {
  const all = rules.map(normalizeRule);
  const erp = opts.erpSystems ?? new Set<string>();
  const families = [all.filter((r) => erp.has(r.to)), all.filter((r) => !erp.has(r.to))];
  const findings: RoutingFinding[] = [];
  for (const [f, family] of families.entries()) {
    const unreachable = new Set<NormalizedRule>();
    family.forEach((rule, j) => {
      const earlier = family.slice(0, j).filter((e) => !unreachable.has(e));
      const shadow = earlier.find((e) => subsumes(e, rule));
      if (shadow) {
        unreachable.add(rule);
        findings.push({
          severity: 'error',
          kind: 'unreachable',
          index: rule.index,
          rule: rule.name,
          message:
            `unreachable: rule '${shadow.name}' (routing[${shadow.index}], ${describeConditions(shadow)}) ` +
            `comes first and takes everything '${rule.name}' matches`,
        });
        return;
      }
      for (const other of earlier) {
        if (other.to === rule.to || subsumes(rule, other) || !intersects(other, rule)) continue;
        findings.push({
          severity: 'warning',
          kind: 'overlap',
          index: rule.index,
          rule: rule.name,
          message:
            `overlaps rule '${other.name}' (routing[${other.index}], ${describeConditions(other)} → ${other.to}): ` +
            `a transaction matching both goes to ${other.to}, not ${rule.to}, because '${other.name}' comes first`,
        });
      }
      if (f === 0 && hasAttributes(rule)) {
        const fallback = family.some(
          (d) => d !== rule && !hasAttributes(d) && d.index > rule.index && subsumes(d, rule),
        );
        if (!fallback) {
          findings.push({
            severity: 'error',
            kind: 'no-default',
            index: rule.index,
            rule: rule.name,
            message:
              `no default behind rule '${rule.name}': add a later rule for the same ` +
              `process/event without businessUnit, country, region, channel or store conditions ` +
              `(or a rule with 'when: {}' routing everything else)`,
          });
        }
      }
    });
  }
  if (families[0]!.length === 0 && erp.size > 1) {
    findings.push({
      severity: 'error',
      kind: 'no-default',
      index: -1,
      rule: '',
      message:
        `${erp.size} ERP systems (${[...erp].join(', ')}) and no routing rule chooses between ` +
        `them: add at least a default rule (e.g. 'when: {}') routing to one of them`,
    });
  }
  return findings.sort((a, b) => a.index - b.index);
}
