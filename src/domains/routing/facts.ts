// The routing facts of canonical transactions: what the rules can test about an order.
import type { OrderV1 } from '../../canonical/index.js';
import type { ErpProcess, RoutingFacts } from '../../ports/routing.js';

export interface FactsExtra {
  /** The business unit (brand, banner, legal entity …) the order belongs to. */
  businessUnit?: string;
  /** Default `order.created`. */
  event?: string;
  /** Default `order`. */
  process?: ErpProcess;
}

/**
 * An order's facts: its channel, region, the country it ships to (else its billing country), and
 * the store it was sold in or is collected from.
 */
export function orderRoutingFacts(order: OrderV1, extra: FactsExtra = {}): RoutingFacts {
  const country = order.shippingAddress?.country ?? order.billingAddress?.country;
  const store = order.fulfilment.storeLocation ?? order.fulfilment.pickupLocation;
  const facts: RoutingFacts = {
    process: extra.process ?? 'order',
    event: extra.event ?? 'order.created',
    channel: order.channel,
    region: order.region,
  };
  if (extra.businessUnit) facts.businessUnit = extra.businessUnit;
  if (country) facts.country = country;
  if (store) facts.store = store;
  return facts;
}
