// Returns: goods coming back against an original order, and how the customer is refunded.
import { z } from 'zod';
import {
  CurrencyCode,
  EntityId,
  LocationId,
  NonNegativeMoney,
  PositiveQuantity,
  Sku,
  Timestamp,
  requireCurrency,
  requireUnique,
  whenValid,
} from './primitives.js';

export const ReturnReason = z
  .enum([
    'damaged',
    'defective',
    'wrong_item',
    'not_as_described',
    'no_longer_needed',
    'size_or_fit',
    'late_delivery',
    'other',
  ])
  .meta({ id: 'ReturnReason', description: 'Why the customer returns the goods.' });

export const ItemCondition = z
  .enum(['new', 'opened', 'used', 'damaged', 'defective'])
  .meta({ id: 'ItemCondition', description: 'Condition of the returned goods as inspected.' });

export const RefundMethod = z
  .enum(['original_payment', 'store_credit', 'gift_card', 'cash', 'exchange'])
  .meta({ id: 'RefundMethod', description: 'How the customer is refunded.' });

export const ReturnLine = z
  .object({
    orderLineId: z.string().min(1).max(64).describe('Line id on the original order.'),
    sku: Sku,
    quantity: PositiveQuantity,
    reason: ReturnReason,
    condition: ItemCondition.optional().describe('Set once the goods were inspected.'),
    refundAmount: NonNegativeMoney.optional().describe('Amount refunded for this line.'),
  })
  .strict()
  .meta({ id: 'ReturnLine', description: 'One line of a return.' });

export const ReturnV1 = z
  .object({
    id: EntityId.describe('Return (RMA) id.'),
    orderId: EntityId.describe('Original order id.'),
    status: z
      .enum(['requested', 'approved', 'received', 'completed', 'rejected'])
      .describe('Lifecycle state of the return.'),
    lines: z.array(ReturnLine).min(1).describe('Returned lines; at least one.'),
    reasonNote: z.string().max(2000).optional().describe("Customer's own words."),
    refundMethod: RefundMethod,
    currency: CurrencyCode,
    refundTotal: NonNegativeMoney.optional().describe('Total refunded (completed returns).'),
    returnLocation: z
      .object({
        kind: z.enum(['store', 'warehouse', 'carrier']).describe('Where the goods come back to.'),
        location: LocationId,
      })
      .strict()
      .describe('Where the goods are returned.'),
    requestedAt: Timestamp.describe('When the return was requested.'),
    completedAt: Timestamp.optional().describe('When the refund was issued.'),
  })
  .strict()
  .superRefine(
    (r, ctx) => {
      requireUnique(ctx, r.lines, (l) => l.orderLineId, ['lines'], 'orderLineId');
      requireCurrency(ctx, r.currency, [
        { money: r.refundTotal, path: ['refundTotal'] },
        ...r.lines.map((l, i) => ({ money: l.refundAmount, path: ['lines', i, 'refundAmount'] })),
      ]);
      if (r.status === 'completed' && (!r.completedAt || !r.refundTotal)) {
        ctx.addIssue({
          code: 'custom',
          path: [r.completedAt ? 'refundTotal' : 'completedAt'],
          message: 'a completed return has completedAt and refundTotal',
        });
      }
      if (r.completedAt && Date.parse(r.completedAt) < Date.parse(r.requestedAt)) {
        ctx.addIssue({
          code: 'custom',
          path: ['completedAt'],
          message: 'completedAt is before requestedAt',
        });
      }
      const lineRefunds = r.lines.map((l) => l.refundAmount?.amount);
      if (r.refundTotal && lineRefunds.every((a) => a !== undefined)) {
        const total = lineRefunds.reduce((a: number, b) => a + (b ?? 0), 0);
        if (total > r.refundTotal.amount) {
          ctx.addIssue({
            code: 'custom',
            path: ['refundTotal', 'amount'],
            message: `line refunds (${total}) exceed refundTotal`,
          });
        }
      }
    },
    { when: whenValid },
  )
  .meta({
    id: 'Return.v1',
    title: 'Return',
    description: 'A customer return against an original order.',
  });
export type ReturnV1 = z.infer<typeof ReturnV1>;
