// What the order and return processes ask of customer identity: resolve the customer a channel
// names (by Middlemart id, the channel's own id or a guest email) to a golden customer id,
// creating a provisional identity when none is known. `src/domains/customers` implements it.
import type { CustomerReference } from '../canonical/index.js';
import type { SqlRunner } from './sql.js';

export interface ResolvedCustomer {
  customerId: string;
  /** True when no identity was known and a provisional one was created for this order. */
  provisional: boolean;
  /** Source ids of the identity in other systems (system id → id), e.g. the loyalty member id. */
  sourceIds: Record<string, string>;
  email?: string;
}

export interface CustomerResolverPort {
  resolve(
    tx: SqlRunner,
    ref: CustomerReference & { source: string; name?: string },
  ): Promise<ResolvedCustomer>;
}
