// The cloud ERP connector (kind `rest-erp`): a NetSuite-class REST API behind OAuth 2.0 client
// credentials. Implements ErpPort: sales orders deduplicated by external reference, credit memos,
// the item master (SKU = itemId), inventory by location, status changes since a watermark, and
// customer accounts by external reference. Money goes out as decimals in the document currency.
//
// One call attempt per method: the delivery gate around it applies the ERP's rate limit,
// concurrency, timeout, retries and circuit breaker. Failures become ErpErrors: business errors
// (INVALID_KEY_OR_REF, USER_ERROR, INVALID_FLD_VALUE, NONEXISTENT_ID) are permanent with the
// ERP's own detail text; 429 (RATE_LIMIT_EXCEEDED, CONCURRENCY_LIMIT_EXCEEDED), 5xx, transport
// errors and unreadable answers are transient (with Retry-After when the ERP sent one).
import {
  ErpError,
  type ErpBooking,
  type ErpCallContext,
  type ErpCancellation,
  type ErpCancellationResult,
  type ErpCredit,
  type ErpCreditResult,
  type ErpItem,
  type ErpOrderStatusChange,
  type ErpPort,
  type ErpSalesOrder,
  type ErpStockLevel,
} from '../../ports/erp.js';
import {
  TransportError,
  basicAuth,
  firstHeader,
  httpCall,
  isRecord,
  joinUrl,
  retryAfterSecondsOf,
  type HttpAnswer,
} from './json-http.js';
import { minorToDecimal, netUnitRate } from './money.js';

export interface CloudErpClientOptions {
  /** The system id of the estate config. */
  system: string;
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  /** Epoch ms clock (token expiry). */
  now?: () => number;
  /** Renew a token this long before it expires (default 60 s). */
  tokenRenewalMarginMs?: number;
}

/** A customer account as the ERP is asked to keep it (create-once by external reference). */
export interface CloudErpCustomerInput {
  /** Middlemart's golden customer id (the ERP's external reference). */
  externalReference: string;
  companyName?: string;
  email?: string;
  country?: string;
  currency?: string;
  taxId?: string;
  terms?: string;
}

interface Collection {
  count: number;
  hasMore: boolean;
  offset: number;
  totalResults: number;
  items: unknown[];
}

/** How long "the ERP has no account for this customer" is believed before asking again. */
const NO_ACCOUNT_MEMORY_MS = 5 * 60_000;

const PERMANENT_CODES = new Set([
  'INVALID_KEY_OR_REF',
  'USER_ERROR',
  'INVALID_FLD_VALUE',
  'NONEXISTENT_ID',
]);

/** How the ERP's sales order statuses read as order status changes. */
export function statusKindOf(status: string): ErpOrderStatusChange['kind'] {
  const s = status.toLowerCase();
  if (['cancelled', 'canceled', 'closed', 'rejected'].includes(s)) return 'cancelled';
  if (
    ['partiallyfulfilled', 'pendingbilling', 'pendingbillingpartfulfilled', 'fullybilled'].includes(
      s,
    ) ||
    s === 'fulfilled' ||
    s === 'shipped'
  ) {
    return 'shipped';
  }
  if (s === 'billed' || s === 'invoiced') return 'invoiced';
  return 'other';
}

interface Watermark {
  salesOrders: number;
  invoices: number;
}

function parseWatermark(raw: string | undefined): Watermark {
  if (raw === undefined) return { salesOrders: 0, invoices: 0 };
  const m = /^so:(\d+);inv:(\d+)$/.exec(raw);
  if (!m) throw new ErpError(`unreadable status watermark ${JSON.stringify(raw)}`, 'permanent');
  return { salesOrders: Number(m[1]), invoices: Number(m[2]) };
}

function formatWatermark(w: Watermark): string {
  return `so:${w.salesOrders};inv:${w.invoices}`;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}

function refId(value: unknown): string | undefined {
  return isRecord(value) ? str(value.id) : undefined;
}

export class CloudErpClient implements ErpPort {
  readonly system: string;
  /** This ERP reports order status changes (the status poller runs for it). */
  readonly reportsStatusChanges = true;
  private readonly baseUrl: string;
  private readonly now: () => number;
  private readonly margin: number;
  private token: { value: string; expiresAt: number } | undefined;
  private tokenRequest: Promise<string> | undefined;
  /** SKU → the ERP's internal item id (the item master changes rarely; misses are re-read). */
  private readonly itemIds = new Map<string, string>();
  /** Internal sales order id → external reference (for invoices of earlier orders). */
  private readonly orderRefs = new Map<string, string>();
  /**
   * Golden customer id → the ERP's account id (`null`: none, remembered for a few minutes), so
   * a sale of a known customer costs no extra call.
   */
  private readonly customerIds = new Map<string, { id: string | null; at: number }>();

  constructor(private readonly opts: CloudErpClientOptions) {
    this.system = opts.system;
    this.baseUrl = opts.baseUrl;
    this.now = opts.now ?? Date.now;
    this.margin = opts.tokenRenewalMarginMs ?? 60_000;
  }

  // ---- ErpPort -------------------------------------------------------------------------------

  async postSalesOrder(order: ErpSalesOrder, ctx: ErpCallContext = {}): Promise<ErpBooking> {
    if (order.lines.length === 0) {
      throw this.permanent('the sales order has no lines', 'USER_ERROR');
    }
    const lines = [];
    for (const line of order.lines) {
      if (!Number.isInteger(line.quantity) || line.quantity <= 0) {
        throw this.permanent(
          `line ${line.sku}: quantity must be a whole number greater than 0`,
          'INVALID_FLD_VALUE',
        );
      }
      lines.push({
        item: { id: line.erpItemId ?? (await this.itemIdOf(line.sku, ctx)) },
        quantity: line.quantity,
        rate: netUnitRate(line.unitPriceMinor, line.quantity, line.discountMinor, order.currency),
        ...(line.description ? { description: line.description } : {}),
      });
    }
    const customerId =
      order.party?.erpCustomerId ??
      (order.party?.customerId ? await this.customerIdOf(order.party.customerId, ctx) : undefined);
    const body = {
      externalReference: order.externalReference,
      currency: order.currency,
      orderDate: order.orderDate.slice(0, 10),
      ...(customerId ? { customer: { id: customerId } } : {}),
      ...(order.location ? { location: { id: order.location } } : {}),
      lines,
      ...(order.shipTo ? { shipTo: order.shipTo } : {}),
      ...(order.memo || order.channelOrderNumber
        ? { memo: order.memo ?? `Channel order ${order.channelOrderNumber}` }
        : {}),
    };
    const answer = await this.api('POST', '/api/v1/sales-orders', body, ctx);
    const booking = this.bookingOf(answer.json, answer.status === 200);
    return booking;
  }

  async findSalesOrder(
    externalReference: string,
    ctx: ErpCallContext = {},
  ): Promise<ErpBooking | undefined> {
    const answer = await this.api(
      'GET',
      `/api/v1/sales-orders?externalReference=${encodeURIComponent(externalReference)}`,
      undefined,
      ctx,
    );
    const first = this.collectionOf(answer).items[0];
    return first === undefined ? undefined : this.bookingOf(first, true);
  }

  /**
   * Cancels the sale (`PATCH status: cancelled`) or cuts its lines to the quantities that stay.
   * Reads the sale first: one already cancelled, or already holding those quantities, answers
   * `duplicate` without a change. A fulfilled sale is refused by the ERP (permanent).
   */
  async cancelSalesOrder(
    cancel: ErpCancellation,
    ctx: ErpCallContext = {},
  ): Promise<ErpCancellationResult> {
    const answer = await this.api(
      'GET',
      `/api/v1/sales-orders?externalReference=${encodeURIComponent(cancel.externalReference)}`,
      undefined,
      ctx,
    );
    const order = this.collectionOf(answer).items[0];
    if (!isRecord(order) || str(order.id) === undefined) {
      throw this.permanent(
        `no sales order with external reference ${cancel.externalReference} to cancel`,
        'INVALID_KEY_OR_REF',
      );
    }
    const id = str(order.id) as string;
    const status = str(order.status) ?? 'unknown';
    const path = `/api/v1/sales-orders/${encodeURIComponent(id)}`;
    if (cancel.lines === undefined) {
      if (status === 'cancelled') return { erpOrderId: id, state: status, duplicate: true };
      const changed = await this.api('PATCH', path, { status: 'cancelled' }, ctx);
      const state = isRecord(changed.json) ? (str(changed.json.status) ?? 'unknown') : 'unknown';
      return { erpOrderId: id, state, duplicate: false };
    }
    const booked = new Map<string, number>();
    for (const l of Array.isArray(order.lines) ? order.lines : []) {
      const item = isRecord(l) ? refId(l.item) : undefined;
      const q = isRecord(l) && typeof l.quantity === 'number' ? l.quantity : 0;
      if (item !== undefined) booked.set(item, (booked.get(item) ?? 0) + q);
    }
    const lines = [];
    for (const line of cancel.lines) {
      const item = line.erpItemId ?? (await this.itemIdOf(line.sku, ctx));
      lines.push({ item: { id: item }, quantity: line.remainingQuantity });
    }
    if (lines.every((l) => (booked.get(l.item.id) ?? 0) <= l.quantity)) {
      return { erpOrderId: id, state: status, duplicate: true };
    }
    const changed = await this.api(
      'PATCH',
      path,
      { lines, ...(cancel.reason ? { memo: cancel.reason } : {}) },
      ctx,
    );
    const state = isRecord(changed.json) ? (str(changed.json.status) ?? 'unknown') : 'unknown';
    return { erpOrderId: id, state, duplicate: false };
  }

  async postCredit(credit: ErpCredit, ctx: ErpCallContext = {}): Promise<ErpCreditResult> {
    if (credit.lines.length === 0) throw this.permanent('the credit has no lines', 'USER_ERROR');
    const lines = [];
    for (const line of credit.lines) {
      lines.push({
        item: { id: line.erpItemId ?? (await this.itemIdOf(line.sku, ctx)) },
        quantity: line.quantity,
        rate: minorToDecimal(line.unitPriceMinor, credit.currency),
      });
    }
    let createdFrom = credit.erpOrderId;
    if (createdFrom === undefined && credit.orderExternalReference !== undefined) {
      const original = await this.findSalesOrder(credit.orderExternalReference, ctx);
      if (original === undefined) {
        throw this.permanent(
          `no sales order with external reference ${credit.orderExternalReference} to credit`,
          'INVALID_KEY_OR_REF',
        );
      }
      createdFrom = original.erpOrderId;
    }
    const customerId =
      credit.party?.erpCustomerId ??
      (credit.party?.customerId
        ? await this.customerIdOf(credit.party.customerId, ctx)
        : undefined);
    const answer = await this.api(
      'POST',
      '/api/v1/credit-memos',
      {
        externalReference: credit.externalReference,
        currency: credit.currency,
        ...(createdFrom ? { createdFrom: { id: createdFrom } } : {}),
        ...(customerId ? { customer: { id: customerId } } : {}),
        lines,
        ...(credit.reason ? { memo: credit.reason } : {}),
      },
      ctx,
    );
    const memo = answer.json;
    const id = isRecord(memo) ? str(memo.id) : undefined;
    if (id === undefined) throw this.unreadable(answer);
    return { erpCreditId: id, state: 'booked', duplicate: answer.status === 200 };
  }

  async findItems(skus: readonly string[], ctx: ErpCallContext = {}): Promise<ErpItem[]> {
    const wanted = [...new Set(skus)];
    const found: ErpItem[] = [];
    const record = (raw: unknown) => {
      if (!isRecord(raw)) return;
      const sku = str(raw.itemId);
      const id = str(raw.id);
      if (sku === undefined || id === undefined) return;
      this.itemIds.set(sku, id);
      if (wanted.includes(sku)) found.push({ sku, erpItemId: id, active: raw.isInactive !== true });
    };
    if (wanted.length <= 20) {
      for (const sku of wanted) {
        const answer = await this.api(
          'GET',
          `/api/v1/items?itemId=${encodeURIComponent(sku)}`,
          undefined,
          ctx,
        );
        for (const item of this.collectionOf(answer).items) record(item);
      }
    } else {
      // The whole item master, page by page (bounded: the ERP says how many there are).
      let offset = 0;
      for (let page = 0; page < 1000; page++) {
        const answer = await this.api(
          'GET',
          `/api/v1/items?limit=1000&offset=${offset}`,
          undefined,
          ctx,
        );
        const collection = this.collectionOf(answer);
        for (const item of collection.items) record(item);
        offset += collection.items.length;
        if (!collection.hasMore || collection.items.length === 0) break;
      }
    }
    return found;
  }

  async stockLevels(
    locations?: readonly string[],
    ctx: ErpCallContext = {},
  ): Promise<ErpStockLevel[]> {
    const queries =
      locations === undefined
        ? ['/api/v1/inventory']
        : [...new Set(locations)].map((l) => `/api/v1/inventory?location=${encodeURIComponent(l)}`);
    const levels: ErpStockLevel[] = [];
    for (const path of queries) {
      const answer = await this.api('GET', path, undefined, ctx);
      const items = isRecord(answer.json) ? answer.json.items : undefined;
      if (!Array.isArray(items)) throw this.unreadable(answer);
      for (const raw of items) {
        if (!isRecord(raw)) continue;
        const sku = isRecord(raw.item) ? str(raw.item.itemId) : undefined;
        const location = refId(raw.location);
        const onHand = raw.quantityOnHand;
        if (sku === undefined || location === undefined || typeof onHand !== 'number') continue;
        levels.push({ sku, location, onHand });
      }
    }
    return levels;
  }

  async statusChangesSince(
    watermark: string | undefined,
    ctx: ErpCallContext = {},
  ): Promise<{ changes: ErpOrderStatusChange[]; watermark: string | undefined }> {
    const mark = parseWatermark(watermark);
    const changes: ErpOrderStatusChange[] = [];
    const orders = await this.pageFrom('/api/v1/sales-orders', mark.salesOrders, ctx);
    for (const raw of orders) {
      if (!isRecord(raw)) continue;
      const id = str(raw.id);
      const ref = str(raw.externalReference);
      const state = str(raw.status) ?? 'unknown';
      if (id === undefined || ref === undefined) continue;
      this.orderRefs.set(id, ref);
      const kind = statusKindOf(state);
      changes.push({
        externalReference: ref,
        erpOrderId: id,
        kind,
        state,
        at: str(raw.createdAt) ?? new Date(this.now()).toISOString(),
        ...(kind === 'shipped' && Array.isArray(raw.lines)
          ? { lines: raw.lines.flatMap((l) => this.shippedLineOf(l)) }
          : {}),
      });
    }
    const invoices = await this.pageFrom('/api/v1/invoices', mark.invoices, ctx);
    const unknownOrder = invoices.some((raw) => {
      const orderId = isRecord(raw) ? refId(raw.createdFrom) : undefined;
      return orderId !== undefined && !this.orderRefs.has(orderId);
    });
    if (unknownOrder) {
      // Invoices of orders read before this process started: one paged read of the sales
      // orders fills the reference table (instead of one call per invoice).
      for (const raw of await this.pageFrom('/api/v1/sales-orders', 0, ctx)) {
        const id = isRecord(raw) ? str(raw.id) : undefined;
        const ref = isRecord(raw) ? str(raw.externalReference) : undefined;
        if (id !== undefined && ref !== undefined) this.orderRefs.set(id, ref);
      }
    }
    for (const raw of invoices) {
      if (!isRecord(raw)) continue;
      const orderId = refId(raw.createdFrom);
      if (orderId === undefined) continue; // an invoice of no sales order (opening balances)
      const ref = this.orderRefs.get(orderId);
      if (ref === undefined) continue; // an invoice of a sales order the ERP no longer lists
      changes.push({
        externalReference: ref,
        erpOrderId: orderId,
        kind: 'invoiced',
        state: `invoice ${str(raw.tranId) ?? str(raw.id) ?? ''} ${str(raw.status) ?? ''}`.trim(),
        at: str(raw.createdAt) ?? new Date(this.now()).toISOString(),
      });
    }
    changes.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    return {
      changes,
      watermark: formatWatermark({
        salesOrders: mark.salesOrders + orders.length,
        invoices: mark.invoices + invoices.length,
      }),
    };
  }

  // ---- customers -----------------------------------------------------------------------------

  /**
   * Finds the customer account kept under `externalReference`, creating it when there is none.
   * The ERP's API creates accounts but does not change them: an existing account is returned
   * as it is (`created: false`).
   */
  async upsertCustomer(
    input: CloudErpCustomerInput,
    ctx: ErpCallContext = {},
  ): Promise<{ erpCustomerId: string; created: boolean }> {
    const existing = await this.customerIdOf(input.externalReference, ctx);
    if (existing !== undefined) return { erpCustomerId: existing, created: false };
    const answer = await this.api(
      'POST',
      '/api/v1/customers',
      {
        externalReference: input.externalReference,
        ...(input.companyName !== undefined ? { companyName: input.companyName } : {}),
        ...(input.email !== undefined ? { email: input.email } : {}),
        ...(input.country !== undefined ? { country: input.country } : {}),
        ...(input.currency !== undefined ? { currency: input.currency } : {}),
        ...(input.taxId !== undefined ? { taxId: input.taxId } : {}),
        ...(input.terms !== undefined ? { terms: input.terms } : {}),
      },
      ctx,
    );
    const id = isRecord(answer.json) ? str(answer.json.id) : undefined;
    if (id === undefined) throw this.unreadable(answer);
    this.rememberCustomer(input.externalReference, id);
    return { erpCustomerId: id, created: answer.status === 201 };
  }

  // ---- protocol ------------------------------------------------------------------------------

  /** The ERP's internal id of a SKU, from the item master (cached). */
  private async itemIdOf(sku: string, ctx: ErpCallContext): Promise<string> {
    const cached = this.itemIds.get(sku);
    if (cached !== undefined) return cached;
    const [item] = await this.findItems([sku], ctx);
    if (item === undefined) {
      throw this.permanent(`SKU ${sku} is not in the ERP's item master`, 'INVALID_KEY_OR_REF');
    }
    return item.erpItemId;
  }

  private async customerIdOf(
    externalReference: string,
    ctx: ErpCallContext,
  ): Promise<string | undefined> {
    const cached = this.customerIds.get(externalReference);
    if (cached && (cached.id !== null || this.now() - cached.at < NO_ACCOUNT_MEMORY_MS)) {
      return cached.id ?? undefined;
    }
    const answer = await this.api(
      'GET',
      `/api/v1/customers?externalReference=${encodeURIComponent(externalReference)}`,
      undefined,
      ctx,
    );
    const first = this.collectionOf(answer).items[0];
    const id = isRecord(first) ? str(first.id) : undefined;
    this.rememberCustomer(externalReference, id);
    return id;
  }

  private rememberCustomer(externalReference: string, id: string | undefined): void {
    if (this.customerIds.size >= 10_000) this.customerIds.clear();
    this.customerIds.set(externalReference, { id: id ?? null, at: this.now() });
  }

  private shippedLineOf(raw: unknown): Array<{ sku: string; quantity: number }> {
    if (!isRecord(raw) || !isRecord(raw.item)) return [];
    const sku = str(raw.item.itemId);
    const quantity =
      typeof raw.quantityFulfilled === 'number' ? raw.quantityFulfilled : raw.quantity;
    return sku !== undefined && typeof quantity === 'number' && quantity > 0
      ? [{ sku, quantity }]
      : [];
  }

  private async pageFrom(path: string, offset: number, ctx: ErpCallContext): Promise<unknown[]> {
    const out: unknown[] = [];
    let at = offset;
    for (let page = 0; page < 100; page++) {
      const answer = await this.api('GET', `${path}?limit=1000&offset=${at}`, undefined, ctx);
      const collection = this.collectionOf(answer);
      out.push(...collection.items);
      at += collection.items.length;
      if (!collection.hasMore || collection.items.length === 0) break;
    }
    return out;
  }

  private bookingOf(raw: unknown, duplicate: boolean): ErpBooking {
    if (!isRecord(raw) || str(raw.id) === undefined) {
      throw new ErpError(`${this.system}: the sales order answer has no id`, 'transient', {
        system: this.system,
        code: 'MALFORMED_RESPONSE',
      });
    }
    const id = str(raw.id) as string;
    const ref = str(raw.externalReference);
    if (ref !== undefined) this.orderRefs.set(id, ref);
    const number = str(raw.tranId);
    return {
      erpOrderId: id,
      ...(number !== undefined ? { erpOrderNumber: number } : {}),
      state: str(raw.status) ?? 'unknown',
      duplicate,
    };
  }

  private collectionOf(answer: HttpAnswer): Collection {
    const body = answer.json;
    if (!isRecord(body) || !Array.isArray(body.items)) throw this.unreadable(answer);
    return {
      count: typeof body.count === 'number' ? body.count : body.items.length,
      hasMore: body.hasMore === true,
      offset: typeof body.offset === 'number' ? body.offset : 0,
      totalResults: typeof body.totalResults === 'number' ? body.totalResults : body.items.length,
      items: body.items,
    };
  }

  /**
   * One call to the ERP's API with a bearer token. A 401 renews the token once and repeats the
   * call (the token expired or was revoked); every other failure is classified and thrown.
   */
  private async api(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    body: unknown,
    ctx: ErpCallContext,
  ): Promise<HttpAnswer> {
    let answer = await this.send(method, path, body, ctx, await this.accessToken(ctx, false));
    if (answer.status === 401) {
      answer = await this.send(method, path, body, ctx, await this.accessToken(ctx, true));
    }
    if (answer.status >= 200 && answer.status < 300) {
      if (answer.malformed || answer.json === undefined) throw this.unreadable(answer);
      return answer;
    }
    throw this.errorOf(answer);
  }

  private async send(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    body: unknown,
    ctx: ErpCallContext,
    token: string,
  ): Promise<HttpAnswer> {
    try {
      return await httpCall({
        method,
        url: joinUrl(this.baseUrl, path),
        headers: {
          authorization: `Bearer ${token}`,
          ...(ctx.idempotencyKey && method !== 'GET'
            ? { 'idempotency-key': ctx.idempotencyKey }
            : {}),
        },
        ...(body !== undefined ? { body } : {}),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } catch (err) {
      throw this.transportError(err);
    }
  }

  /** The cached access token, or a new one (one token request at a time). */
  private async accessToken(ctx: ErpCallContext, renew: boolean): Promise<string> {
    if (renew) this.token = undefined;
    const cached = this.token;
    if (cached !== undefined && cached.expiresAt - this.margin > this.now()) return cached.value;
    this.tokenRequest ??= this.requestToken(ctx).finally(() => {
      this.tokenRequest = undefined;
    });
    return this.tokenRequest;
  }

  private async requestToken(ctx: ErpCallContext): Promise<string> {
    let answer: HttpAnswer;
    try {
      answer = await httpCall({
        method: 'POST',
        url: joinUrl(this.baseUrl, '/oauth2/token'),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basicAuth(this.opts.clientId, this.opts.clientSecret),
        },
        body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } catch (err) {
      throw this.transportError(err);
    }
    const body = isRecord(answer.json) ? answer.json : {};
    if (answer.status === 401 || answer.status === 400) {
      // Wrong client credentials are a configuration error: retrying cannot fix them.
      throw new ErpError(
        `${this.system}: the ERP refused the client credentials (${str(body.error) ?? answer.status})`,
        'permanent',
        { system: this.system, status: answer.status, code: str(body.error) ?? 'INVALID_LOGIN' },
      );
    }
    if (answer.status !== 200) throw this.errorOf(answer);
    const token = str(body.access_token);
    if (token === undefined) throw this.unreadable(answer);
    const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : 3600;
    this.token = { value: token, expiresAt: this.now() + expiresIn * 1000 };
    return token;
  }

  /** Classifies a non-2xx answer in the ERP's own error shape. */
  private errorOf(answer: HttpAnswer): ErpError {
    const body = isRecord(answer.json) ? answer.json : {};
    const details = Array.isArray(body['o:errorDetails'])
      ? body['o:errorDetails'].filter(isRecord)
      : [];
    const codes = details.map((d) => str(d['o:errorCode'])).filter((c): c is string => !!c);
    const texts = details.map((d) => {
      const path = str(d['o:errorPath']);
      return `${str(d.detail) ?? 'error'}${path ? ` (${path})` : ''}`;
    });
    const code = codes[0];
    const detail = texts.length > 0 ? texts.join('; ') : `HTTP ${answer.status}`;
    const retryAfterSeconds = retryAfterSecondsOf(answer.headers, this.now);
    const transient =
      answer.status === 429 ||
      answer.status === 408 ||
      answer.status >= 500 ||
      (code !== undefined && !PERMANENT_CODES.has(code) && answer.status === 401);
    return new ErpError(`${this.system}: ${detail}`, transient ? 'transient' : 'permanent', {
      system: this.system,
      status: answer.status,
      ...(code !== undefined ? { code } : {}),
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    });
  }

  private unreadable(answer: HttpAnswer): ErpError {
    const type = firstHeader(answer.headers['content-type']) ?? 'no content type';
    return new ErpError(
      `${this.system}: unreadable answer (HTTP ${answer.status}, ${type}, ${answer.text.length} bytes); whether the call took effect is unknown`,
      'transient',
      { system: this.system, status: answer.status, code: 'MALFORMED_RESPONSE' },
    );
  }

  private transportError(err: unknown): ErpError {
    if (err instanceof TransportError) {
      return new ErpError(`${this.system}: no answer: ${err.message}`, 'transient', {
        system: this.system,
        ...(err.code ? { code: err.code } : {}),
      });
    }
    return new ErpError(
      `${this.system}: ${err instanceof Error ? err.message : String(err)}`,
      'transient',
      { system: this.system },
    );
  }

  private permanent(message: string, code: string): ErpError {
    return new ErpError(`${this.system}: ${message}`, 'permanent', { system: this.system, code });
  }
}
