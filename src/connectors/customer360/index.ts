// The customer 360 sources over the estate's real HTTP APIs: the CRM's contacts and preferences,
// the loyalty programme's members, the cloud ERP's customer accounts and open invoices (OAuth2
// client credentials) and the commerce platform's Admin REST orders. Each finds the customer by
// its source id in that system first, then by the golden id as external reference, then by email.
// Id look-ups and tokens are cached (reference data); balances, invoices and orders never are.
import type {
  CrmProfile,
  CrmProfileSource,
  CustomerIdentity,
  CustomerSources,
  LoyaltySource,
  LoyaltyStanding,
  OpenInvoice,
  OrderHistorySource,
  ReceivablesSource,
  RecentOrder,
  SourceCallContext,
} from '../../ports/customer-sources.js';
import { joinUrl, requestJson, SourceHttpError, TtlCache, type FetchLike } from './http.js';

export { SourceHttpError, TtlCache } from './http.js';

/** A system of the estate, as the 360 sources need it. */
export interface SourceSystem {
  id: string;
  kind: string;
  baseUrl: string;
  credentials: Readonly<Record<string, string>>;
  settings?: Readonly<Record<string, unknown>>;
}

export interface CustomerSourcesOptions {
  systems: readonly SourceSystem[];
  /** How long id look-ups are cached (ms). */
  cacheTtlMs: number;
  fetch?: FetchLike;
  now?: () => number;
}

const idsIn = (identity: CustomerIdentity, system: string): string[] =>
  identity.sourceIds.filter((s) => s.system === system).map((s) => s.id);

/** Builds one source per kind from the first system of that kind in the estate. */
export function createCustomerSources(opts: CustomerSourcesOptions): CustomerSources {
  const f = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  const first = (...kinds: string[]) => opts.systems.find((s) => kinds.includes(s.kind));
  const out: CustomerSources = {};
  const crm = first('crm');
  if (crm) out.crm = crmSource(crm, f, new TtlCache<string>(opts.cacheTtlMs, now));
  const loyalty = first('loyalty');
  if (loyalty) out.loyalty = loyaltySource(loyalty, f, new TtlCache<string>(opts.cacheTtlMs, now));
  const erp = first('rest-erp');
  if (erp) out.receivables = receivablesSource(erp, f, opts.cacheTtlMs, now);
  const commerce = first('shopify');
  if (commerce) out.orders = ordersSource(commerce, f);
  return out;
}

interface CrmContactWire {
  id: string;
  externalId?: string;
  email?: string;
  firstName?: string;
  lastName?: string;
  phone?: string;
  properties?: Record<string, unknown>;
  updatedAt?: string;
}

function crmSource(sys: SourceSystem, f: FetchLike, ids: TtlCache<string>): CrmProfileSource {
  const headers = { 'x-api-key': sys.credentials.apiKey ?? '' };
  const get = <T>(path: string, ctx: SourceCallContext) =>
    requestJson<T>(f, joinUrl(sys.baseUrl, path), { headers, signal: ctx.signal });
  const findContact = async (identity: CustomerIdentity, ctx: SourceCallContext) => {
    const cached = ids.get(identity.customerId);
    if (cached) {
      const c = await get<CrmContactWire>(`/contacts/${encodeURIComponent(cached)}`, ctx);
      if (c) return c;
    }
    for (const id of idsIn(identity, sys.id)) {
      const c =
        (await get<CrmContactWire>(`/contacts/${encodeURIComponent(id)}`, ctx)) ??
        (await get<CrmContactWire>(`/contacts/by-external-id/${encodeURIComponent(id)}`, ctx));
      if (c) return c;
    }
    const byRef = await get<CrmContactWire>(
      `/contacts/by-external-id/${encodeURIComponent(identity.customerId)}`,
      ctx,
    );
    if (byRef) return byRef;
    if (identity.email) {
      const found = await get<{ results: CrmContactWire[] }>(
        `/contacts?email=${encodeURIComponent(identity.email)}`,
        ctx,
      );
      return found?.results[0];
    }
    return undefined;
  };
  return {
    system: sys.id,
    async profile(identity, ctx): Promise<CrmProfile | undefined> {
      const c = await findContact(identity, ctx);
      if (!c) return undefined;
      ids.set(identity.customerId, c.id);
      const prefs = await get<{
        consents: Array<{ purpose: string; channel: string; granted: boolean; source?: string }>;
      }>(`/contacts/${encodeURIComponent(c.id)}/preferences`, ctx);
      const profile: CrmProfile = {
        contactId: c.id,
        properties: c.properties ?? {},
        consents: (prefs?.consents ?? []).map((k) => ({
          purpose: k.purpose,
          channel: k.channel,
          granted: k.granted,
          ...(k.source ? { source: k.source } : {}),
        })),
      };
      if (c.email) profile.email = c.email;
      if (c.firstName) profile.givenName = c.firstName;
      if (c.lastName) profile.familyName = c.lastName;
      if (c.phone) profile.phone = c.phone;
      if (c.updatedAt) profile.updatedAt = c.updatedAt;
      return profile;
    },
  };
}

interface MemberWire {
  id: string;
  balance: number;
  lifetimePoints: number;
  tier: string;
  nextTier: { name: string; pointsNeeded: number } | null;
  enrolledAt?: string;
}

function loyaltySource(sys: SourceSystem, f: FetchLike, ids: TtlCache<string>): LoyaltySource {
  const headers = { 'x-api-key': sys.credentials.apiKey ?? '' };
  const get = <T>(path: string, ctx: SourceCallContext) =>
    requestJson<T>(f, joinUrl(sys.baseUrl, path), { headers, signal: ctx.signal });
  return {
    system: sys.id,
    async standing(identity, ctx): Promise<LoyaltyStanding | undefined> {
      const candidates = [
        ids.get(identity.customerId),
        ...idsIn(identity, sys.id),
        identity.loyaltyId,
      ].filter((x): x is string => typeof x === 'string');
      let member: MemberWire | undefined;
      for (const id of new Set(candidates)) {
        member = await get<MemberWire>(`/members/${encodeURIComponent(id)}`, ctx);
        if (member) break;
      }
      if (!member && identity.email) {
        const found = await get<{ data: MemberWire[] }>(
          `/members?email=${encodeURIComponent(identity.email)}`,
          ctx,
        );
        member = found?.data[0];
      }
      if (!member) return undefined;
      ids.set(identity.customerId, member.id);
      return {
        memberId: member.id,
        balance: member.balance,
        lifetimePoints: member.lifetimePoints,
        tier: member.tier,
        nextTier: member.nextTier,
        ...(member.enrolledAt ? { enrolledAt: member.enrolledAt } : {}),
      };
    },
  };
}

interface ErpPage<T> {
  items: T[];
}

interface InvoiceWire {
  id: string;
  tranId?: string;
  currency: string;
  amount: number;
  amountRemaining: number;
  dueDate?: string;
  createdAt?: string;
}

/** Decimal amount of the ERP → minor units (two decimals). */
export function decimalToMinor(amount: number): number {
  return Math.round(amount * 100);
}

function receivablesSource(
  sys: SourceSystem,
  f: FetchLike,
  cacheTtlMs: number,
  now: () => number,
): ReceivablesSource {
  const tokens = new TtlCache<string>(cacheTtlMs, now);
  const accounts = new TtlCache<string>(cacheTtlMs, now);
  const token = async (ctx: SourceCallContext): Promise<string> => {
    const cached = tokens.get('token');
    if (cached) return cached;
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: sys.credentials.clientId ?? 'middlemart',
      client_secret: sys.credentials.clientSecret ?? '',
    }).toString();
    const res = await f(joinUrl(sys.baseUrl, '/oauth2/token'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      signal: ctx.signal,
    });
    if (!res.ok) throw new SourceHttpError(`token request answered ${res.status}`, res.status);
    const t = (await res.json()) as { access_token: string; expires_in?: number };
    // Renew a minute before the ERP would refuse it.
    tokens.set('token', t.access_token, Math.max(0, ((t.expires_in ?? 3600) - 60) * 1000));
    return t.access_token;
  };
  const get = async <T>(path: string, ctx: SourceCallContext) =>
    requestJson<T>(f, joinUrl(sys.baseUrl, path), {
      headers: { authorization: `Bearer ${await token(ctx)}` },
      signal: ctx.signal,
    });
  const account = async (identity: CustomerIdentity, ctx: SourceCallContext) => {
    const cached = accounts.get(identity.customerId);
    if (cached) return cached;
    let id: string | undefined = idsIn(identity, sys.id)[0];
    if (!id) {
      const byRef = await get<ErpPage<{ id: string }>>(
        `/api/v1/customers?externalReference=${encodeURIComponent(identity.customerId)}`,
        ctx,
      );
      id = byRef?.items[0]?.id;
    }
    if (!id && identity.email) {
      const byEmail = await get<ErpPage<{ id: string }>>(
        `/api/v1/customers?email=${encodeURIComponent(identity.email)}`,
        ctx,
      );
      id = byEmail?.items[0]?.id;
    }
    if (id) accounts.set(identity.customerId, id);
    return id;
  };
  return {
    system: sys.id,
    async openInvoices(identity, ctx): Promise<OpenInvoice[] | undefined> {
      const id = await account(identity, ctx);
      if (!id) return undefined;
      const page = await get<ErpPage<InvoiceWire>>(
        `/api/v1/invoices?status=open&customer=${encodeURIComponent(id)}`,
        ctx,
      );
      return (page?.items ?? []).map((i) => ({
        id: i.id,
        ...(i.tranId ? { number: i.tranId } : {}),
        currency: i.currency,
        amountMinor: decimalToMinor(i.amount),
        remainingMinor: decimalToMinor(i.amountRemaining),
        ...(i.dueDate ? { dueDate: i.dueDate } : {}),
        ...(i.createdAt ? { createdAt: i.createdAt } : {}),
      }));
    },
  };
}

interface OrderWire {
  id: number | string;
  name?: string;
  email?: string | null;
  created_at?: string;
  currency?: string;
  total_price?: string;
  financial_status?: string;
  fulfillment_status?: string | null;
  customer?: { id: number | string; email?: string | null } | null;
}

function ordersSource(sys: SourceSystem, f: FetchLike): OrderHistorySource {
  const version =
    typeof sys.settings?.apiVersion === 'string' ? sys.settings.apiVersion : '2024-10';
  const headers = { 'x-shopify-access-token': sys.credentials.accessToken ?? '' };
  return {
    system: sys.id,
    async recentOrders(identity, limit, ctx): Promise<RecentOrder[]> {
      const page = await requestJson<{ orders: OrderWire[] }>(
        f,
        joinUrl(sys.baseUrl, `/admin/api/${version}/orders.json?limit=250`),
        { headers, signal: ctx.signal },
      );
      const customerIds = new Set(idsIn(identity, sys.id));
      const email = identity.email?.toLowerCase();
      const mine = (page?.orders ?? []).filter(
        (o) =>
          (o.customer && customerIds.has(String(o.customer.id))) ||
          (email !== undefined &&
            (o.email?.toLowerCase() === email || o.customer?.email?.toLowerCase() === email)),
      );
      mine.sort((a, b) => (b.created_at ?? '').localeCompare(a.created_at ?? ''));
      return mine.slice(0, limit).map((o) => ({
        id: String(o.id),
        ...(o.name ? { name: o.name } : {}),
        ...(o.created_at ? { createdAt: o.created_at } : {}),
        ...(o.currency ? { currency: o.currency } : {}),
        ...(o.total_price !== undefined
          ? { totalMinor: decimalToMinor(Number(o.total_price)) }
          : {}),
        ...(o.financial_status ? { financialStatus: o.financial_status } : {}),
        ...(o.fulfillment_status !== undefined ? { fulfillmentStatus: o.fulfillment_status } : {}),
      }));
    },
  };
}
