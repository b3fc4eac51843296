// Loyalty: points accrued, reversed and redeemed by members.
import { z } from 'zod';
import { EntityId, Timestamp, whenValid } from './primitives.js';

export const LoyaltyActivityV1 = z
  .object({
    id: EntityId.describe('Activity id.'),
    kind: z
      .enum(['accrue', 'reverse', 'redeem'])
      .describe('accrue: points earned; reverse: earned points taken back; redeem: spent.'),
    memberId: z.string().min(1).max(64).describe('Loyalty programme member id.'),
    points: z.int().positive().describe('Points moved; the kind gives the direction.'),
    orderId: EntityId.optional().describe('Order the activity belongs to.'),
    returnId: EntityId.optional().describe('Return that caused a reversal.'),
    reversesActivityId: EntityId.optional().describe('Accrual this reversal takes back.'),
    occurredAt: Timestamp.describe('When it happened (RFC 3339 UTC).'),
  })
  .strict()
  .superRefine(
    (a, ctx) => {
      if (a.kind === 'accrue' && !a.orderId) {
        ctx.addIssue({ code: 'custom', path: ['orderId'], message: 'an accrual names its order' });
      }
      if (a.kind === 'reverse' && !a.orderId && !a.reversesActivityId) {
        ctx.addIssue({
          code: 'custom',
          path: ['reversesActivityId'],
          message: 'a reversal names the accrual or the order it reverses',
        });
      }
    },
    { when: whenValid },
  )
  .meta({
    id: 'LoyaltyActivity.v1',
    title: 'LoyaltyActivity',
    description: 'Points accrued, reversed or redeemed for a loyalty member.',
  });
export type LoyaltyActivityV1 = z.infer<typeof LoyaltyActivityV1>;
