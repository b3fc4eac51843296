// What the customer 360 view asks of the systems around a customer: the CRM profile, the loyalty
// standing, the ERP's open invoices and the commerce platform's recent orders, each for one golden
// identity. Connectors implement each source over their system's own API (src/connectors/customer360);
// the customer domain calls them in parallel, each with its own timeout, and answers partially when
// one fails.

/** Who the 360 is about: the golden id and every id the systems know the customer by. */
export interface CustomerIdentity {
  customerId: string;
  sourceIds: ReadonlyArray<{ system: string; id: string }>;
  email?: string;
  loyaltyId?: string;
}

export interface SourceCallContext {
  /** Aborted when the source's timeout passes or the caller goes away. */
  signal: AbortSignal;
}

export interface CrmProfile {
  contactId: string;
  email?: string;
  givenName?: string;
  familyName?: string;
  phone?: string;
  /** The CRM's own properties (segments, preferences …). */
  properties: Record<string, unknown>;
  consents: Array<{ purpose: string; channel: string; granted: boolean; source?: string }>;
  updatedAt?: string;
}

export interface LoyaltyStanding {
  memberId: string;
  balance: number;
  lifetimePoints: number;
  tier: string;
  nextTier: { name: string; pointsNeeded: number } | null;
  enrolledAt?: string;
}

export interface OpenInvoice {
  id: string;
  number?: string;
  currency: string;
  /** Invoice total in minor units. */
  amountMinor: number;
  /** Still to pay, in minor units. */
  remainingMinor: number;
  /** YYYY-MM-DD. */
  dueDate?: string;
  createdAt?: string;
}

export interface RecentOrder {
  id: string;
  /** The order number a customer would quote. */
  name?: string;
  createdAt?: string;
  currency?: string;
  totalMinor?: number;
  financialStatus?: string;
  fulfillmentStatus?: string | null;
}

/** Each source names the system it reads; undefined means the identity is unknown there. */
export interface CrmProfileSource {
  readonly system: string;
  profile(identity: CustomerIdentity, ctx: SourceCallContext): Promise<CrmProfile | undefined>;
}

export interface LoyaltySource {
  readonly system: string;
  standing(
    identity: CustomerIdentity,
    ctx: SourceCallContext,
  ): Promise<LoyaltyStanding | undefined>;
}

export interface ReceivablesSource {
  readonly system: string;
  /** Open invoices; undefined when the ERP has no account for the customer. */
  openInvoices(
    identity: CustomerIdentity,
    ctx: SourceCallContext,
  ): Promise<OpenInvoice[] | undefined>;
}

export interface OrderHistorySource {
  readonly system: string;
  /** The newest orders first, at most `limit`. */
  recentOrders(
    identity: CustomerIdentity,
    limit: number,
    ctx: SourceCallContext,
  ): Promise<RecentOrder[]>;
}

/** The sources configured in the estate (absent: no such system). */
export interface CustomerSources {
  crm?: CrmProfileSource;
  loyalty?: LoyaltySource;
  receivables?: ReceivablesSource;
  orders?: OrderHistorySource;
}
