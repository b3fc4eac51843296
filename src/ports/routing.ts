// Which ERP instance a transaction goes to during a phased ERP migration: routing rules in the
// estate config, first match wins, a default is required. The order and return processes ask
// this port; `src/domains/routing` implements it.

/** Process domains a rule may route separately (finance posting vs stock, …). */
export type ErpProcess = 'order' | 'return' | 'inventory' | 'customer' | 'price';

export interface RoutingFacts {
  process: ErpProcess;
  /** Canonical event name that caused the routing decision, e.g. `order.created`. */
  event?: string;
  businessUnit?: string;
  /** ISO 3166-1 alpha-2. */
  country?: string;
  region?: string;
  /** Sales channel (web, mobile, store, marketplace …). */
  channel?: string;
  store?: string;
}

export interface RoutingDecision {
  /** The chosen ERP's system id. */
  system: string;
  /** The rule that chose it (`default` when none matched). */
  rule: string;
  /** Why, for people: which conditions matched. */
  reason: string;
}

export interface ErpRouter {
  route(facts: RoutingFacts): RoutingDecision;
}
