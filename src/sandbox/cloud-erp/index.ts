// Cloud ERP simulator: a NetSuite-class REST/JSON ERP. OAuth 2.0 client-credentials tokens,
// sales orders deduplicated by external reference, credit memos, item master, stock by location,
// customer accounts and open invoices; errors in the ERP's own `o:errorDetails` shape; and the
// governance a real cloud ERP enforces: an account-wide concurrency limit and a per-account rate
// limit, every violation counted so a run can prove Middlemart never tripped them.
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { basicCredentials, createSimulator, secretsEqual } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';
import { buildCatalogue } from './catalogue.js';
import type { Catalogue, CatalogueItem, CustomerAccount } from './catalogue.js';
import { ConcurrencyGate, TokenBucket } from './limits.js';

export { buildCatalogue, skuOf, ESTATE_LOCATIONS } from './catalogue.js';
export type { Catalogue, CatalogueItem, CustomerAccount, StockLevel } from './catalogue.js';

export interface CloudErpOptions extends SimulatorOptions {
  /** OAuth client id accepted by the token endpoint (default 'middlemart'). */
  clientId?: string;
  /** OAuth client secret accepted by the token endpoint. */
  clientSecret: string;
  /** Lifetime of issued access tokens (default 3600 s). */
  tokenTtlSeconds?: number;
  /** Account-wide limit of concurrent API requests (default 4). */
  concurrencyLimit?: number;
  /** Sustained requests per second per account (default 25). */
  ratePerSecond?: number;
  /** Token-bucket capacity per account (default 25). */
  burst?: number;
  /** Time each API request holds its concurrency slot, as real processing would (default 0). */
  processingDelayMs?: number;
  /** Seed of the item master, stock and customers (default 1). */
  seed?: number;
  /** Items in the item master (default 200). */
  itemCount?: number;
}

export interface CloudErp extends Simulator {
  /** The seeded world this ERP holds (live: stock changes as orders are posted). */
  readonly catalogue: Catalogue;
}

/** One entry of a NetSuite-style error response. */
export interface ErpErrorDetail {
  detail: string;
  'o:errorPath'?: string;
  'o:errorCode': string;
}

interface OrderLine {
  line: number;
  item: { id: string; itemId: string };
  quantity: number;
  rate: number;
  amount: number;
  /** A line cancelled by an amendment (quantity 0). */
  isClosed?: boolean;
}

interface SalesOrder {
  id: string;
  tranId: string;
  externalReference: string;
  /** `pendingBilling` once fulfilled (sandbox control), `cancelled` after a cancellation. */
  status: 'pendingFulfillment' | 'pendingBilling' | 'cancelled';
  customer?: { id: string };
  currency: string;
  location: { id: string };
  orderDate: string;
  lines: OrderLine[];
  total: number;
  shipTo?: unknown;
  memo?: string;
  createdAt: string;
}

interface CreditMemo {
  id: string;
  tranId: string;
  externalReference: string;
  createdFrom?: { id: string };
  customer?: { id: string };
  currency: string;
  lines: OrderLine[];
  total: number;
  memo?: string;
  createdAt: string;
}

interface Invoice {
  id: string;
  tranId: string;
  customer: { id: string };
  createdFrom?: { id: string };
  currency: string;
  amount: number;
  amountRemaining: number;
  status: 'open' | 'paid';
  dueDate: string;
  createdAt: string;
}

const TERMS_DAYS: Record<string, number> = {
  NET15: 15,
  NET30: 30,
  NET45: 45,
  NET60: 60,
  DUE_ON_RECEIPT: 0,
};

/** Where each status is defined (RFC 9110 sections; 429 is RFC 6585). */
const STATUS_TYPES: Record<number, string> = {
  400: 'https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1',
  401: 'https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.2',
  404: 'https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.5',
  415: 'https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.16',
  429: 'https://www.rfc-editor.org/rfc/rfc6585.html#section-4',
  500: 'https://www.rfc-editor.org/rfc/rfc9110.html#section-15.6.1',
};

const STATUS_TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

/** 404 for a record that does not exist, naming it the way the ERP does. */
function sendNotFound(reply: FastifyReply, what: string, id: string): FastifyReply {
  return sendErpError(reply, 404, [
    {
      detail: `${what} ${id} does not exist.`,
      'o:errorPath': 'id',
      'o:errorCode': 'NONEXISTENT_ID',
    },
  ]);
}

/** Sends an error in the ERP's own shape (RFC 9110 type link plus `o:errorDetails`). */
function sendErpError(
  reply: FastifyReply,
  status: number,
  details: ErpErrorDetail[],
): FastifyReply {
  return reply
    .code(status)
    .type('application/vnd.oracle.resource+json; type=error')
    .send({
      type: STATUS_TYPES[status] ?? 'about:blank',
      title: STATUS_TITLES[status] ?? 'Error',
      status,
      'o:errorDetails': details,
    });
}

class Problems {
  readonly details: ErpErrorDetail[] = [];
  add(path: string, code: string, detail: string): void {
    this.details.push({ detail, 'o:errorPath': path, 'o:errorCode': code });
  }
  get empty(): boolean {
    return this.details.length === 0;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function refId(v: unknown): string | undefined {
  if (isRecord(v) && typeof v.id === 'string' && v.id.length > 0) return v.id;
  return undefined;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Creates the cloud ERP simulator (not yet listening). */
export function createCloudErp(opts: CloudErpOptions): CloudErp {
  const now = opts.now ?? Date.now;
  const sim = createSimulator('cloud-erp', opts);
  const { app } = sim;
  const clientId = opts.clientId ?? 'middlemart';
  const tokenTtlMs = (opts.tokenTtlSeconds ?? 3600) * 1000;
  const concurrencyLimit = opts.concurrencyLimit ?? 4;
  const ratePerSecond = opts.ratePerSecond ?? 25;
  const burst = opts.burst ?? 25;
  const processingDelayMs = opts.processingDelayMs ?? 0;
  const catalogue = buildCatalogue({
    seed: opts.seed ?? 1,
    ...(opts.itemCount !== undefined ? { itemCount: opts.itemCount } : {}),
  });

  const itemsById = new Map<string, CatalogueItem>(catalogue.items.map((i) => [i.id, i]));
  const customersById = new Map<string, CustomerAccount>(catalogue.customers.map((c) => [c.id, c]));
  const salesOrders = new Map<string, SalesOrder>();
  const salesOrdersByRef = new Map<string, SalesOrder>();
  const creditMemos = new Map<string, CreditMemo>();
  const creditMemosByRef = new Map<string, CreditMemo>();
  const invoices = new Map<string, Invoice>();
  const tokens = new Map<string, { clientId: string; expiresAt: number }>();
  const buckets = new Map<string, TokenBucket>();
  const gate = new ConcurrencyGate(concurrencyLimit);
  let nextTransaction = 1;
  let tokensIssued = 0;

  const iso = (ms = now()): string => new Date(ms).toISOString();
  const dateOnly = (ms: number): string => iso(ms).slice(0, 10);

  const createInvoice = (
    customer: CustomerAccount,
    amount: number,
    currency: string,
    status: 'open' | 'paid',
    createdFrom?: string,
  ): Invoice => {
    const n = nextTransaction++;
    const invoice: Invoice = {
      id: String(90000 + n),
      tranId: `INV-${String(n).padStart(6, '0')}`,
      customer: { id: customer.id },
      ...(createdFrom !== undefined ? { createdFrom: { id: createdFrom } } : {}),
      currency,
      amount: round2(amount),
      amountRemaining: status === 'open' ? round2(amount) : 0,
      status,
      dueDate: dateOnly(now() + (TERMS_DAYS[customer.terms] ?? 30) * 86_400_000),
      createdAt: iso(),
    };
    invoices.set(invoice.id, invoice);
    return invoice;
  };

  // Seeded receivables: every other account has an open invoice, every third a paid one.
  catalogue.customers.forEach((c, i) => {
    if (i % 2 === 0) createInvoice(c, 250 + i * 37.5, c.currency, 'open');
    if (i % 3 === 0) createInvoice(c, 120 + i * 11.25, c.currency, 'paid');
  });

  // ---- errors in the ERP's own shape -------------------------------------------------------
  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) => {
    const status =
      error.statusCode !== undefined && error.statusCode < 500 ? error.statusCode : 500;
    return sendErpError(reply, status, [
      { detail: error.message, 'o:errorCode': status < 500 ? 'USER_ERROR' : 'UNEXPECTED_ERROR' },
    ]);
  });
  app.setNotFoundHandler((request, reply) =>
    sendErpError(reply, 404, [
      {
        detail: `The record type or resource ${request.url.split('?')[0] ?? ''} does not exist.`,
        'o:errorCode': 'NONEXISTENT_ID',
      },
    ]),
  );

  // ---- OAuth 2.0 client credentials --------------------------------------------------------
  app.post('/oauth2/token', async (request, reply) => {
    const body = isRecord(request.body) ? request.body : {};
    const basic = basicCredentials(request.headers.authorization);
    const id = basic?.username ?? (typeof body.client_id === 'string' ? body.client_id : '');
    const secret =
      basic?.password ?? (typeof body.client_secret === 'string' ? body.client_secret : '');
    if (body.grant_type !== 'client_credentials') {
      sim.count('tokenRequestsRejected');
      return reply.code(400).send({
        error: 'unsupported_grant_type',
        error_description: 'grant_type must be client_credentials',
      });
    }
    if (!secretsEqual(id, clientId) || !secretsEqual(secret, opts.clientSecret)) {
      sim.count('tokenRequestsRejected');
      if (basic !== undefined) reply.header('www-authenticate', 'Basic realm="cloud-erp"');
      return reply.code(401).send({ error: 'invalid_client' });
    }
    const t = now();
    for (const [token, entry] of tokens) if (entry.expiresAt <= t) tokens.delete(token);
    const accessToken = randomBytes(24).toString('base64url');
    tokens.set(accessToken, { clientId: id, expiresAt: t + tokenTtlMs });
    tokensIssued += 1;
    sim.record('tokenRequests', { clientId: id, at: iso(t) });
    return reply
      .header('cache-control', 'no-store')
      .send({ access_token: accessToken, token_type: 'Bearer', expires_in: tokenTtlMs / 1000 });
  });

  // ---- governance: auth, rate limit, concurrency -------------------------------------------
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!request.url.startsWith('/api/')) return;
    const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
    const entry = match?.[1] !== undefined ? tokens.get(match[1]) : undefined;
    if (entry === undefined || entry.expiresAt <= now()) {
      sim.count('unauthorizedRequests');
      const expired = entry !== undefined;
      return sendErpError(
        reply.header(
          'www-authenticate',
          `Bearer realm="cloud-erp", error="invalid_token", error_description="${expired ? 'The access token expired' : 'Unknown or missing access token'}"`,
        ),
        401,
        [
          {
            detail: expired
              ? 'Invalid login attempt: the access token has expired.'
              : 'Invalid login attempt: a valid bearer access token is required.',
            'o:errorCode': 'INVALID_LOGIN',
          },
        ],
      );
    }
    let bucket = buckets.get(entry.clientId);
    if (bucket === undefined) {
      bucket = new TokenBucket(burst, ratePerSecond, now);
      buckets.set(entry.clientId, bucket);
    }
    const taken = bucket.take();
    if (!taken.ok) {
      sim.count('rateLimitViolations');
      return sendErpError(reply.header('retry-after', String(taken.retryAfterSeconds)), 429, [
        {
          detail: `Request rate of ${ratePerSecond}/s for this account exceeded.`,
          'o:errorCode': 'RATE_LIMIT_EXCEEDED',
        },
      ]);
    }
    if (!gate.enter()) {
      sim.count('concurrencyViolations');
      return sendErpError(reply.header('retry-after', '1'), 429, [
        {
          detail: `Concurrent request limit of ${concurrencyLimit} for this account exceeded.`,
          'o:errorCode': 'CONCURRENCY_LIMIT_EXCEEDED',
        },
      ]);
    }
    reply.raw.once('close', () => gate.leave());
    if (processingDelayMs > 0) await new Promise((r) => setTimeout(r, processingDelayMs));
  });

  // ---- line validation shared by sales orders and credit memos -----------------------------
  const validateLines = (raw: unknown, problems: Problems): OrderLine[] => {
    if (!Array.isArray(raw) || raw.length === 0) {
      problems.add('lines', 'USER_ERROR', 'Please enter value(s) for: lines (at least one line).');
      return [];
    }
    const lines: OrderLine[] = [];
    raw.forEach((line: unknown, i) => {
      const at = `lines[${i}]`;
      if (!isRecord(line)) {
        problems.add(at, 'INVALID_FLD_VALUE', 'A line must be an object.');
        return;
      }
      const itemRef = refId(line.item);
      const item = itemRef !== undefined ? itemsById.get(itemRef) : undefined;
      if (itemRef === undefined) {
        problems.add(`${at}.item`, 'USER_ERROR', 'Please enter value(s) for: item ({ "id" }).');
      } else if (item === undefined) {
        problems.add(`${at}.item`, 'INVALID_KEY_OR_REF', `Invalid item reference key ${itemRef}.`);
      }
      const quantity = line.quantity;
      if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity <= 0) {
        problems.add(
          `${at}.quantity`,
          'INVALID_FLD_VALUE',
          'Invalid quantity: it must be a whole number greater than 0.',
        );
      }
      const rate = line.rate;
      if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0) {
        problems.add(`${at}.rate`, 'INVALID_FLD_VALUE', 'Invalid rate: it must be a number >= 0.');
      }
      if (item !== undefined && typeof quantity === 'number' && typeof rate === 'number') {
        lines.push({
          line: i + 1,
          item: { id: item.id, itemId: item.itemId },
          quantity,
          rate,
          amount: round2(quantity * rate),
        });
      }
    });
    return lines;
  };

  const validateHeader = (
    body: Record<string, unknown>,
    problems: Problems,
  ): { externalReference: string; currency: string; customer?: CustomerAccount } => {
    const externalReference = body.externalReference;
    if (
      typeof externalReference !== 'string' ||
      externalReference.length === 0 ||
      externalReference.length > 64
    ) {
      problems.add(
        'externalReference',
        'USER_ERROR',
        'Please enter value(s) for: externalReference (1 to 64 characters).',
      );
    }
    const currency = body.currency;
    if (typeof currency !== 'string' || !/^[A-Z]{3}$/.test(currency)) {
      problems.add('currency', 'INVALID_FLD_VALUE', 'Invalid currency: expected an ISO 4217 code.');
    }
    let customer: CustomerAccount | undefined;
    if (body.customer !== undefined) {
      const customerRef = refId(body.customer);
      customer = customerRef !== undefined ? customersById.get(customerRef) : undefined;
      if (customer === undefined) {
        problems.add(
          'customer',
          'INVALID_KEY_OR_REF',
          `Invalid customer reference key ${customerRef ?? JSON.stringify(body.customer)}.`,
        );
      }
    }
    return {
      externalReference: typeof externalReference === 'string' ? externalReference : '',
      currency: typeof currency === 'string' ? currency : '',
      ...(customer !== undefined ? { customer } : {}),
    };
  };

  // ---- sales orders -------------------------------------------------------------------------
  app.post('/api/v1/sales-orders', async (request, reply) => {
    const body: unknown = request.body;
    if (!isRecord(body)) {
      return sendErpError(reply, 400, [
        { detail: 'The request body must be a JSON object.', 'o:errorCode': 'USER_ERROR' },
      ]);
    }
    const reference = typeof body.externalReference === 'string' ? body.externalReference : '';
    const existing = salesOrdersByRef.get(reference);
    if (existing !== undefined) {
      sim.count('salesOrderDuplicates');
      sim.record('salesOrders', { duplicate: true, id: existing.id, body, at: iso() });
      return reply
        .code(200)
        .header('location', `/api/v1/sales-orders/${existing.id}`)
        .send(existing);
    }
    const problems = new Problems();
    const header = validateHeader(body, problems);
    let locationId = 'DC-EU-1';
    if (body.location !== undefined) {
      const ref = refId(body.location);
      if (ref === undefined || !catalogue.stock.has(ref)) {
        problems.add('location', 'INVALID_KEY_OR_REF', `Invalid location reference key ${ref}.`);
      } else locationId = ref;
    }
    const lines = validateLines(body.lines, problems);
    if (!problems.empty) {
      sim.count('salesOrdersRejected');
      sim.record('rejectedSalesOrders', { body, errors: problems.details, at: iso() });
      return sendErpError(reply, 400, problems.details);
    }
    const n = nextTransaction++;
    const order: SalesOrder = {
      id: String(50000 + n),
      tranId: `SO-${String(n).padStart(6, '0')}`,
      externalReference: header.externalReference,
      status: 'pendingFulfillment',
      ...(header.customer !== undefined ? { customer: { id: header.customer.id } } : {}),
      currency: header.currency,
      location: { id: locationId },
      orderDate: typeof body.orderDate === 'string' ? body.orderDate : dateOnly(now()),
      lines,
      total: round2(lines.reduce((sum, l) => sum + l.amount, 0)),
      ...(body.shipTo !== undefined ? { shipTo: body.shipTo } : {}),
      ...(typeof body.memo === 'string' ? { memo: body.memo } : {}),
      createdAt: iso(),
    };
    salesOrders.set(order.id, order);
    salesOrdersByRef.set(order.externalReference, order);
    const stockAt = catalogue.stock.get(locationId);
    for (const line of lines) {
      const level = stockAt?.get(line.item.id);
      if (level !== undefined) level.quantityCommitted += line.quantity;
    }
    if (header.customer !== undefined) {
      createInvoice(header.customer, order.total, order.currency, 'open', order.id);
    }
    sim.record('salesOrders', { duplicate: false, id: order.id, body, at: order.createdAt });
    return reply.code(201).header('location', `/api/v1/sales-orders/${order.id}`).send(order);
  });

  app.get<{ Params: { id: string } }>('/api/v1/sales-orders/:id', async (request, reply) => {
    const order = salesOrders.get(request.params.id);
    if (order === undefined) {
      return sendNotFound(reply, 'Sales order', request.params.id);
    }
    return order;
  });

  // Cancelling a sales order, or amending its lines down: `{ status: 'cancelled' }` or
  // `{ lines: [{ item: { id }, quantity }] }` (the quantity that stays; 0 closes the line). Both
  // are idempotent; a fulfilled order cannot be changed (USER_ERROR).
  app.patch<{ Params: { id: string } }>('/api/v1/sales-orders/:id', async (request, reply) => {
    const order = salesOrders.get(request.params.id);
    if (order === undefined) {
      return sendNotFound(reply, 'Sales order', request.params.id);
    }
    const body: unknown = request.body;
    if (!isRecord(body) || (body.status === undefined && body.lines === undefined)) {
      return sendErpError(reply, 400, [
        {
          detail: 'The request body must be a JSON object with status or lines.',
          'o:errorCode': 'USER_ERROR',
        },
      ]);
    }
    const stockAt = catalogue.stock.get(order.location.id);
    const uncommit = (line: OrderLine, quantity: number) => {
      const level = stockAt?.get(line.item.id);
      if (level !== undefined)
        level.quantityCommitted = Math.max(0, level.quantityCommitted - quantity);
    };
    if (body.status !== undefined) {
      if (body.status !== 'cancelled') {
        return sendErpError(reply, 400, [
          {
            detail: `Invalid status ${JSON.stringify(body.status)}: only cancelled can be set.`,
            'o:errorPath': 'status',
            'o:errorCode': 'INVALID_FLD_VALUE',
          },
        ]);
      }
      if (order.status === 'cancelled') {
        sim.count('salesOrderCancellationDuplicates');
        sim.record('salesOrderChanges', { duplicate: true, id: order.id, body, at: iso() });
        return order;
      }
      if (order.status !== 'pendingFulfillment') {
        sim.count('salesOrderChangesRejected');
        return sendErpError(reply, 400, [
          {
            detail: `Sales order ${order.tranId} is ${order.status}: a fulfilled order cannot be cancelled.`,
            'o:errorPath': 'status',
            'o:errorCode': 'USER_ERROR',
          },
        ]);
      }
      for (const line of order.lines) uncommit(line, line.quantity);
      order.status = 'cancelled';
      for (const invoice of invoices.values()) {
        if (invoice.createdFrom?.id === order.id && invoice.status === 'open') {
          invoices.delete(invoice.id);
        }
      }
      sim.count('salesOrderCancellations');
      sim.record('salesOrderChanges', { duplicate: false, id: order.id, body, at: iso() });
      return order;
    }
    if (!Array.isArray(body.lines) || body.lines.length === 0) {
      return sendErpError(reply, 400, [
        {
          detail: 'lines must be a non-empty array.',
          'o:errorPath': 'lines',
          'o:errorCode': 'USER_ERROR',
        },
      ]);
    }
    if (order.status !== 'pendingFulfillment') {
      sim.count('salesOrderChangesRejected');
      return sendErpError(reply, 400, [
        {
          detail: `Sales order ${order.tranId} is ${order.status}: its lines cannot be changed.`,
          'o:errorPath': 'lines',
          'o:errorCode': 'USER_ERROR',
        },
      ]);
    }
    const problems = new Problems();
    const wanted = new Map<string, number>();
    body.lines.forEach((raw: unknown, i) => {
      const itemRef = isRecord(raw) ? refId(raw.item) : undefined;
      const quantity = isRecord(raw) ? raw.quantity : undefined;
      if (itemRef === undefined || !order.lines.some((l) => l.item.id === itemRef)) {
        problems.add(
          `lines[${i}].item`,
          'INVALID_KEY_OR_REF',
          `Item ${itemRef} is not on the order.`,
        );
      } else if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity < 0) {
        problems.add(
          `lines[${i}].quantity`,
          'INVALID_FLD_VALUE',
          'Invalid quantity: a whole number >= 0.',
        );
      } else {
        wanted.set(itemRef, quantity);
      }
    });
    if (!problems.empty) {
      sim.count('salesOrderChangesRejected');
      return sendErpError(reply, 400, problems.details);
    }
    let changed = false;
    for (const [itemId, keep] of wanted) {
      // The quantity that stays is spread over the item's lines in order; the rest is cut.
      let left = keep;
      for (const line of order.lines.filter((l) => l.item.id === itemId)) {
        const q = Math.min(line.quantity, left);
        left -= q;
        if (q < line.quantity) {
          uncommit(line, line.quantity - q);
          line.quantity = q;
          line.amount = round2(q * line.rate);
          if (q === 0) line.isClosed = true;
          changed = true;
        }
      }
    }
    order.total = round2(order.lines.reduce((sum, l) => sum + l.amount, 0));
    sim.count(changed ? 'salesOrderAmendments' : 'salesOrderAmendmentDuplicates');
    sim.record('salesOrderChanges', { duplicate: !changed, id: order.id, body, at: iso() });
    return order;
  });

  app.get<{ Querystring: { externalReference?: string; limit?: string; offset?: string } }>(
    '/api/v1/sales-orders',
    async (request) => {
      const ref = request.query.externalReference;
      const all =
        ref !== undefined
          ? [salesOrdersByRef.get(ref)].filter((o): o is SalesOrder => o !== undefined)
          : [...salesOrders.values()];
      return page(all, request.query.limit, request.query.offset);
    },
  );

  // ---- credit memos -------------------------------------------------------------------------
  app.post('/api/v1/credit-memos', async (request, reply) => {
    const body: unknown = request.body;
    if (!isRecord(body)) {
      return sendErpError(reply, 400, [
        { detail: 'The request body must be a JSON object.', 'o:errorCode': 'USER_ERROR' },
      ]);
    }
    const reference = typeof body.externalReference === 'string' ? body.externalReference : '';
    const existing = creditMemosByRef.get(reference);
    if (existing !== undefined) {
      sim.count('creditMemoDuplicates');
      sim.record('creditMemos', { duplicate: true, id: existing.id, body, at: iso() });
      return reply
        .code(200)
        .header('location', `/api/v1/credit-memos/${existing.id}`)
        .send(existing);
    }
    const problems = new Problems();
    const header = validateHeader(body, problems);
    let createdFrom: string | undefined;
    if (body.createdFrom !== undefined) {
      createdFrom = refId(body.createdFrom);
      if (createdFrom === undefined || !salesOrders.has(createdFrom)) {
        problems.add(
          'createdFrom',
          'INVALID_KEY_OR_REF',
          `Invalid sales order reference key ${createdFrom}.`,
        );
      }
    }
    const lines = validateLines(body.lines, problems);
    if (!problems.empty) {
      sim.count('creditMemosRejected');
      sim.record('rejectedCreditMemos', { body, errors: problems.details, at: iso() });
      return sendErpError(reply, 400, problems.details);
    }
    const n = nextTransaction++;
    const memo: CreditMemo = {
      id: String(70000 + n),
      tranId: `CM-${String(n).padStart(6, '0')}`,
      externalReference: header.externalReference,
      ...(createdFrom !== undefined ? { createdFrom: { id: createdFrom } } : {}),
      ...(header.customer !== undefined ? { customer: { id: header.customer.id } } : {}),
      currency: header.currency,
      lines,
      total: round2(lines.reduce((sum, l) => sum + l.amount, 0)),
      ...(typeof body.memo === 'string' ? { memo: body.memo } : {}),
      createdAt: iso(),
    };
    creditMemos.set(memo.id, memo);
    creditMemosByRef.set(memo.externalReference, memo);
    sim.record('creditMemos', { duplicate: false, id: memo.id, body, at: memo.createdAt });
    return reply.code(201).header('location', `/api/v1/credit-memos/${memo.id}`).send(memo);
  });

  app.get<{ Params: { id: string } }>('/api/v1/credit-memos/:id', async (request, reply) => {
    const memo = creditMemos.get(request.params.id);
    if (memo === undefined) {
      return sendNotFound(reply, 'Credit memo', request.params.id);
    }
    return memo;
  });

  // ---- item master and stock ----------------------------------------------------------------
  app.get<{ Querystring: { itemId?: string; limit?: string; offset?: string } }>(
    '/api/v1/items',
    async (request) => {
      const sku = request.query.itemId;
      const items =
        sku !== undefined ? catalogue.items.filter((i) => i.itemId === sku) : catalogue.items;
      return page(items, request.query.limit, request.query.offset);
    },
  );

  app.get<{ Querystring: { location?: string } }>('/api/v1/inventory', async (request, reply) => {
    const location = request.query.location;
    const locations = location !== undefined ? [location] : catalogue.locations;
    if (location !== undefined && !catalogue.stock.has(location)) {
      return sendErpError(reply, 400, [
        {
          detail: `Invalid location reference key ${location}.`,
          'o:errorPath': 'location',
          'o:errorCode': 'INVALID_KEY_OR_REF',
        },
      ]);
    }
    const items = locations.flatMap((loc) =>
      [...(catalogue.stock.get(loc) ?? new Map<string, never>())].map(([itemId, level]) => ({
        location: { id: loc },
        item: { id: itemId, itemId: itemsById.get(itemId)?.itemId ?? itemId },
        quantityOnHand: level.quantityOnHand,
        quantityCommitted: level.quantityCommitted,
        quantityAvailable: level.quantityOnHand - level.quantityCommitted,
      })),
    );
    return { asOf: iso(), count: items.length, items };
  });

  app.get('/api/v1/locations', async () => ({
    count: catalogue.locations.length,
    items: catalogue.locations.map((id) => ({
      id,
      kind: id.startsWith('DC-') ? 'warehouse' : 'store',
    })),
  }));

  // ---- customer accounts --------------------------------------------------------------------
  app.get<{
    Querystring: { externalReference?: string; email?: string; limit?: string; offset?: string };
  }>('/api/v1/customers', async (request) => {
    const { externalReference, email } = request.query;
    const list = catalogue.customers.filter(
      (c) =>
        (externalReference === undefined || c.externalReference === externalReference) &&
        (email === undefined || c.email.toLowerCase() === email.toLowerCase()),
    );
    return page(list, request.query.limit, request.query.offset);
  });

  app.get<{ Params: { id: string } }>('/api/v1/customers/:id', async (request, reply) => {
    const customer = customersById.get(request.params.id);
    if (customer === undefined) {
      return sendNotFound(reply, 'Customer', request.params.id);
    }
    return customer;
  });

  app.post('/api/v1/customers', async (request, reply) => {
    const body: unknown = request.body;
    if (!isRecord(body)) {
      return sendErpError(reply, 400, [
        { detail: 'The request body must be a JSON object.', 'o:errorCode': 'USER_ERROR' },
      ]);
    }
    const ref = typeof body.externalReference === 'string' ? body.externalReference : undefined;
    const existing =
      ref !== undefined ? catalogue.customers.find((c) => c.externalReference === ref) : undefined;
    if (existing !== undefined) {
      sim.count('customerDuplicates');
      sim.record('customers', { duplicate: true, id: existing.id, body, at: iso() });
      return reply.code(200).send(existing);
    }
    const problems = new Problems();
    if (typeof body.companyName !== 'string' || body.companyName.trim() === '') {
      problems.add('companyName', 'USER_ERROR', 'Please enter value(s) for: companyName.');
    }
    if (typeof body.email !== 'string' || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(body.email)) {
      problems.add('email', 'INVALID_FLD_VALUE', 'Invalid email address.');
    }
    if (typeof body.country !== 'string' || !/^[A-Z]{2}$/.test(body.country)) {
      problems.add('country', 'INVALID_FLD_VALUE', 'Invalid country: expected ISO 3166-1 alpha-2.');
    }
    if (typeof body.currency !== 'string' || !/^[A-Z]{3}$/.test(body.currency)) {
      problems.add('currency', 'INVALID_FLD_VALUE', 'Invalid currency: expected an ISO 4217 code.');
    }
    if (body.taxId !== undefined && (typeof body.taxId !== 'string' || body.taxId.length > 32)) {
      problems.add('taxId', 'INVALID_FLD_VALUE', 'Invalid taxId.');
    }
    const terms = body.terms ?? 'NET30';
    if (typeof terms !== 'string' || !(terms in TERMS_DAYS)) {
      problems.add(
        'terms',
        'INVALID_KEY_OR_REF',
        `Invalid terms reference key: expected one of ${Object.keys(TERMS_DAYS).join(', ')}.`,
      );
    }
    const creditLimit = body.creditLimit ?? 0;
    if (typeof creditLimit !== 'number' || !Number.isFinite(creditLimit) || creditLimit < 0) {
      problems.add('creditLimit', 'INVALID_FLD_VALUE', 'Invalid creditLimit: a number >= 0.');
    }
    if (ref !== undefined && (ref.length === 0 || ref.length > 64)) {
      problems.add('externalReference', 'INVALID_FLD_VALUE', 'externalReference: 1 to 64 chars.');
    }
    if (!problems.empty) {
      sim.record('rejectedCustomers', { body, errors: problems.details, at: iso() });
      return sendErpError(reply, 400, problems.details);
    }
    const country = body.country as string;
    const customer: CustomerAccount = {
      id: String(2000 + catalogue.customers.length + 1),
      ...(ref !== undefined ? { externalReference: ref } : {}),
      companyName: (body.companyName as string).trim(),
      email: body.email as string,
      taxId: typeof body.taxId === 'string' ? body.taxId : '',
      country,
      terms: terms as string,
      creditLimit: creditLimit as number,
      currency: body.currency as string,
      subsidiary: country === 'US' ? 'Middlemart US' : 'Middlemart EU',
    };
    catalogue.customers.push(customer);
    customersById.set(customer.id, customer);
    sim.record('customers', { duplicate: false, id: customer.id, body, at: iso() });
    return reply.code(201).header('location', `/api/v1/customers/${customer.id}`).send(customer);
  });

  // ---- receivables --------------------------------------------------------------------------
  app.get<{ Querystring: { status?: string; customer?: string; limit?: string; offset?: string } }>(
    '/api/v1/invoices',
    async (request, reply) => {
      const { status, customer } = request.query;
      if (status !== undefined && status !== 'open' && status !== 'paid') {
        return sendErpError(reply, 400, [
          {
            detail: 'Invalid status: expected open or paid.',
            'o:errorPath': 'status',
            'o:errorCode': 'INVALID_FLD_VALUE',
          },
        ]);
      }
      const list = [...invoices.values()].filter(
        (i) =>
          (status === undefined || i.status === status) &&
          (customer === undefined || i.customer.id === customer),
      );
      return page(list, request.query.limit, request.query.offset);
    },
  );

  // Sandbox control: a sales order by external reference (or id), as the ERP keeps it.
  app.get<{ Params: { ref: string } }>('/_sandbox/sales-orders/:ref', async (request, reply) => {
    const order = salesOrdersByRef.get(request.params.ref) ?? salesOrders.get(request.params.ref);
    if (order === undefined) return reply.code(404).send({ error: 'not_found' });
    return order;
  });

  // Sandbox control: the warehouse fulfilled the order (it can no longer be cancelled).
  app.post<{ Params: { ref: string } }>(
    '/_sandbox/sales-orders/:ref/fulfil',
    async (request, reply) => {
      const order = salesOrdersByRef.get(request.params.ref) ?? salesOrders.get(request.params.ref);
      if (order === undefined) return reply.code(404).send({ error: 'not_found' });
      if (order.status === 'pendingFulfillment') order.status = 'pendingBilling';
      return order;
    },
  );

  sim.setStateProvider(() => ({
    salesOrders: salesOrders.size,
    cancelledSalesOrders: [...salesOrders.values()].filter((o) => o.status === 'cancelled').length,
    creditMemos: creditMemos.size,
    customers: catalogue.customers.length,
    openInvoices: [...invoices.values()].filter((i) => i.status === 'open').length,
    tokensIssued,
    limits: { concurrencyLimit, ratePerSecond, burst },
    concurrency: { current: gate.current(), limit: concurrencyLimit },
    maxConcurrencyObserved: gate.maxConcurrencyObserved(),
    concurrencyViolations: sim.counters().concurrencyViolations ?? 0,
    rateLimitViolations: sim.counters().rateLimitViolations ?? 0,
    absentSkus: catalogue.absentSkus,
  }));

  return Object.assign(sim, { catalogue });
}

/** NetSuite-style collection page: `{ count, hasMore, items, offset, totalResults }`. */
function page<T>(all: T[], limitRaw?: string, offsetRaw?: string): Record<string, unknown> {
  const limit = Math.min(1000, Math.max(1, Number.parseInt(limitRaw ?? '1000', 10) || 1000));
  const offset = Math.max(0, Number.parseInt(offsetRaw ?? '0', 10) || 0);
  const items = all.slice(offset, offset + limit);
  return {
    count: items.length,
    hasMore: offset + items.length < all.length,
    offset,
    totalResults: all.length,
    items,
  };
}
