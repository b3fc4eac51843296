// A store's upload: its sales and returns, each numbered by the store's sequence within a till
// session, and what each becomes canonically (a sale → `order.created` with fulfilment
// `store_sale`; a return → `return.requested` against the original sale). Validation names the
// field (`transactions[3].lines[0].quantity`); a batch with any fault is refused whole.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import {
  CurrencyCode,
  EmailAddress,
  LocationId,
  OrderV1,
  ReturnReason,
  ReturnV1,
  Sku,
  Timestamp,
  toValidationIssues,
} from '../../canonical/index.js';
import type { OrderV1 as Order, ReturnV1 as Return } from '../../canonical/index.js';

const Token = z.string().min(1).max(128).regex(/^\S+$/, 'contains no whitespace');

export const StoreTransaction = z.object({
  storeId: LocationId,
  session: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_.-]+$/, 'a session id is letters, digits, _ . -'),
  sequence: z.int().min(1).max(2_000_000_000).describe('Per-store sequence within the session'),
  transactionId: Token,
  kind: z.enum(['sale', 'return']),
  occurredAt: Timestamp,
  register: z.string().max(64).optional(),
  currency: CurrencyCode,
  lines: z
    .array(
      z.object({
        lineId: z.string().min(1).max(64),
        sku: Sku,
        quantity: z.int().positive(),
        unitPrice: z.int().nonnegative().describe('Minor units, tax included (shelf price)'),
      }),
    )
    .min(1),
  total: z.int().nonnegative(),
  tender: z.enum(['card', 'cash', 'gift_card', 'store_credit']).optional(),
  originalTransactionId: Token.optional(),
  returnReason: ReturnReason.optional(),
  customerEmail: EmailAddress.optional(),
});
export type StoreTransaction = z.infer<typeof StoreTransaction>;

export const StoreBatch = z.object({
  storeId: LocationId,
  session: z.string().min(1).max(64),
  batchId: z.string().min(1).max(255).optional(),
  firstSequence: z.int().min(1).optional(),
  lastSequence: z.int().min(1).optional(),
  createdAt: Timestamp.optional(),
  offline: z.boolean().optional(),
  transactions: z.array(StoreTransaction).min(1).max(5000),
});
export type StoreBatch = z.infer<typeof StoreBatch>;

export interface BatchIssue {
  path: string;
  message: string;
}

/** Where store transactions come from in the estate. */
export interface StoreContext {
  /** The POS system's id in the estate config (source of the transaction ids). */
  posSystem: string;
  /** Region of the stores' orders. */
  region: string;
}

/** One transaction as the canonical event it becomes. */
export type CanonicalStoreTransaction =
  | { tx: StoreTransaction; event: 'order.created'; data: Order; hash: string }
  | { tx: StoreTransaction; event: 'return.requested'; data: Return; hash: string };

/** Hash of a transaction's content: equal for a resend, whatever batch carries it. */
export function transactionHash(tx: StoreTransaction): string {
  return createHash('sha256').update(JSON.stringify(tx)).digest('hex');
}

/** The canonical id of a store sale: `<posSystem>-<transactionId>`. */
export function storeOrderIdOf(posSystem: string, transactionId: string): string {
  return `${posSystem}-${transactionId}`;
}

function saleToOrder(tx: StoreTransaction, ctx: StoreContext): Order {
  const m = (amount: number) => ({ amount, currency: tx.currency });
  const subtotal = tx.lines.reduce((s, l) => s + l.quantity * l.unitPrice, 0);
  return {
    id: storeOrderIdOf(ctx.posSystem, tx.transactionId),
    channel: 'store',
    externalIds: [{ system: ctx.posSystem, id: tx.transactionId }],
    customer: tx.customerEmail
      ? { email: tx.customerEmail }
      : { sourceRef: { system: ctx.posSystem, id: `${tx.storeId}/walk-in` } },
    currency: tx.currency,
    pricesIncludeTax: true,
    lines: tx.lines.map((l) => ({
      lineId: l.lineId,
      sku: l.sku,
      quantity: l.quantity,
      unitPrice: m(l.unitPrice),
      discounts: [],
      taxes: [],
    })),
    fulfilment: { method: 'store_sale', storeLocation: tx.storeId },
    totals: {
      subtotal: m(subtotal),
      discountTotal: m(0),
      shippingTotal: m(0),
      taxTotal: m(0),
      grandTotal: m(subtotal),
    },
    placedAt: tx.occurredAt,
    region: ctx.region,
  };
}

function returnToReturn(tx: StoreTransaction, original: string, ctx: StoreContext): Return {
  return {
    id: storeOrderIdOf(ctx.posSystem, tx.transactionId),
    orderId: storeOrderIdOf(ctx.posSystem, original),
    // Refunded at the till: the goods are back in the store and the money is paid out.
    status: 'completed',
    lines: tx.lines.map((l) => ({
      orderLineId: l.lineId,
      sku: l.sku,
      quantity: l.quantity,
      reason: tx.returnReason ?? 'other',
      refundAmount: { amount: l.quantity * l.unitPrice, currency: tx.currency },
    })),
    refundMethod:
      tx.tender === 'cash'
        ? 'cash'
        : tx.tender === 'gift_card'
          ? 'gift_card'
          : tx.tender === 'store_credit'
            ? 'store_credit'
            : 'original_payment',
    currency: tx.currency,
    refundTotal: { amount: tx.total, currency: tx.currency },
    returnLocation: { kind: 'store', location: tx.storeId },
    requestedAt: tx.occurredAt,
    completedAt: tx.occurredAt,
  };
}

/**
 * Reads a store's upload for `storeId`: the batch, its transactions in sequence order (a
 * transaction repeated identically within the batch counted once) and each one's canonical
 * event, or every fault with its field path.
 */
export function readStoreBatch(
  body: unknown,
  storeId: string,
  ctx: StoreContext,
):
  | { ok: true; batch: StoreBatch; transactions: CanonicalStoreTransaction[] }
  | { ok: false; issues: BatchIssue[] } {
  const parsed = StoreBatch.safeParse(body);
  if (!parsed.success) {
    return {
      ok: false,
      issues: toValidationIssues(parsed.error.issues).map((i) => ({
        path: i.path === '' ? 'body' : i.path,
        message: i.message,
      })),
    };
  }
  const batch = parsed.data;
  const issues: BatchIssue[] = [];
  if (batch.storeId !== storeId) {
    issues.push({
      path: 'storeId',
      message: `is ${batch.storeId} but the upload is to store ${storeId}`,
    });
  }
  const bySequence = new Map<number, { index: number; hash: string }>();
  const out: CanonicalStoreTransaction[] = [];
  batch.transactions.forEach((tx, i) => {
    const at = (field: string) => `transactions[${i}].${field}`;
    if (tx.storeId !== storeId)
      issues.push({ path: at('storeId'), message: `is ${tx.storeId}, not ${storeId}` });
    if (tx.session !== batch.session) {
      issues.push({
        path: at('session'),
        message: `is ${tx.session}; the batch is of session ${batch.session}`,
      });
    }
    const hash = transactionHash(tx);
    const seen = bySequence.get(tx.sequence);
    if (seen) {
      if (seen.hash !== hash) {
        issues.push({
          path: at('sequence'),
          message: `sequence ${tx.sequence} appears twice with different content (also transactions[${seen.index}])`,
        });
      }
      return;
    }
    bySequence.set(tx.sequence, { index: i, hash });
    const lineTotal = tx.lines.reduce((s, l) => s + l.quantity * l.unitPrice, 0);
    if (tx.total !== lineTotal) {
      issues.push({
        path: at('total'),
        message: `is ${tx.total} but the lines add up to ${lineTotal}`,
      });
    }
    if (tx.kind === 'return' && !tx.originalTransactionId) {
      issues.push({
        path: at('originalTransactionId'),
        message: 'a return names the sale it returns (the receipt’s transaction id)',
      });
    }
    if (tx.kind === 'sale' && tx.originalTransactionId) {
      issues.push({
        path: at('originalTransactionId'),
        message: 'only a return names an original sale',
      });
    }
    if (tx.kind === 'sale') {
      const order = OrderV1.safeParse(saleToOrder(tx, ctx));
      if (!order.success) {
        for (const issue of toValidationIssues(order.error.issues, ['canonical'])) {
          issues.push({ path: at(issue.path), message: issue.message });
        }
      } else out.push({ tx, event: 'order.created', data: order.data, hash });
    } else if (tx.originalTransactionId) {
      const ret = ReturnV1.safeParse(returnToReturn(tx, tx.originalTransactionId, ctx));
      if (!ret.success) {
        for (const issue of toValidationIssues(ret.error.issues, ['canonical'])) {
          issues.push({ path: at(issue.path), message: issue.message });
        }
      } else out.push({ tx, event: 'return.requested', data: ret.data, hash });
    }
  });
  const sequences = [...bySequence.keys()];
  const first = Math.min(...sequences);
  const last = Math.max(...sequences);
  if (batch.firstSequence !== undefined && batch.firstSequence !== first) {
    issues.push({
      path: 'firstSequence',
      message: `is ${batch.firstSequence} but the lowest sequence sent is ${first}`,
    });
  }
  if (batch.lastSequence !== undefined && batch.lastSequence !== last) {
    issues.push({
      path: 'lastSequence',
      message: `is ${batch.lastSequence} but the highest sequence sent is ${last}`,
    });
  }
  if (issues.length > 0) return { ok: false, issues };
  out.sort((a, b) => a.tx.sequence - b.tx.sequence);
  return { ok: true, batch, transactions: out };
}

/** The canonical partition key of a store transaction's event (the catalogue's: the order id). */
export function partitionKeyOf(t: CanonicalStoreTransaction): string {
  return t.event === 'order.created' ? t.data.id : t.data.orderId;
}

/**
 * Accept waves: the i-th wave holds the i-th transaction (in sequence order) of every partition
 * key. Accepting wave after wave, each wave's accepts at once, keeps the store's order wherever it
 * matters (a return behind the sale it returns, both keyed by the sale's order id) while
 * unrelated transactions share one group commit.
 */
export function acceptWaves(
  transactions: readonly CanonicalStoreTransaction[],
): CanonicalStoreTransaction[][] {
  const waves: CanonicalStoreTransaction[][] = [];
  const depth = new Map<string, number>();
  for (const t of transactions) {
    const key = partitionKeyOf(t);
    const d = depth.get(key) ?? 0;
    depth.set(key, d + 1);
    (waves[d] ??= []).push(t);
  }
  return waves;
}
