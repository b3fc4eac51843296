// Prices per channel and/or store group, and the promotions behind sale prices.
import { z } from 'zod';
import {
  CurrencyCode,
  EntityId,
  NonNegativeMoney,
  SalesChannel,
  Sku,
  Timestamp,
  requireCurrency,
  whenValid,
} from './primitives.js';

const StoreGroup = z
  .string()
  .min(1)
  .max(64)
  .describe('Store group (price zone) the price applies to, as configured in the estate.');

function requireAfter(
  ctx: z.RefinementCtx,
  from: string,
  until: string | undefined,
  path: string,
): void {
  if (until !== undefined && Date.parse(until) <= Date.parse(from)) {
    ctx.addIssue({ code: 'custom', path: [path], message: `${path} must be after effectiveFrom` });
  }
}

export const PriceV1 = z
  .object({
    sku: Sku,
    channel: SalesChannel.optional().describe('Channel the price applies to; absent: all.'),
    storeGroup: StoreGroup.optional(),
    currency: CurrencyCode,
    listPrice: NonNegativeMoney.describe('Regular selling price per unit.'),
    salePrice: NonNegativeMoney.optional().describe(
      'Reduced price per unit while a promotion or markdown is in effect.',
    ),
    pricesIncludeTax: z
      .boolean()
      .describe('True where prices are tax-inclusive (EU style), false where tax is added.'),
    effectiveFrom: Timestamp.describe('First instant the price applies (RFC 3339 UTC).'),
    effectiveUntil: Timestamp.optional().describe(
      'Instant the price stops applying (exclusive); absent: open-ended.',
    ),
    promotionId: EntityId.optional().describe('Promotion that sets the sale price, if any.'),
  })
  .strict()
  .superRefine(
    (p, ctx) => {
      if (p.channel === undefined && p.storeGroup === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['channel'],
          message: 'a price names a channel, a store group or both',
        });
      }
      requireCurrency(ctx, p.currency, [
        { money: p.listPrice, path: ['listPrice'] },
        { money: p.salePrice, path: ['salePrice'] },
      ]);
      if (p.salePrice && p.salePrice.amount > p.listPrice.amount) {
        ctx.addIssue({
          code: 'custom',
          path: ['salePrice', 'amount'],
          message: 'salePrice must not exceed listPrice',
        });
      }
      requireAfter(ctx, p.effectiveFrom, p.effectiveUntil, 'effectiveUntil');
    },
    { when: whenValid },
  )
  .meta({
    id: 'Price.v1',
    title: 'Price',
    description: 'Selling price of a SKU for a channel and/or store group over a period.',
    // The channel-and/or-store-group rule, for readers of the JSON Schema.
    anyOf: [{ required: ['channel'] }, { required: ['storeGroup'] }],
  });
export type PriceV1 = z.infer<typeof PriceV1>;

export const PromotionV1 = z
  .object({
    id: EntityId.describe('Promotion id.'),
    name: z.string().min(1).max(200).describe('Name shown to staff and customers.'),
    kind: z
      .enum(['percent_off', 'amount_off', 'fixed_price', 'buy_x_get_y'])
      .describe('How the promotion reduces the price.'),
    status: z.enum(['scheduled', 'active', 'ended', 'withdrawn']).describe('Lifecycle state.'),
    percentOff: z
      .int()
      .min(1)
      .max(100)
      .optional()
      .describe('Whole percent off, for kind percent_off.'),
    amountOff: NonNegativeMoney.optional().describe('Amount off per unit, for kind amount_off.'),
    fixedPrice: NonNegativeMoney.optional().describe('Unit price, for kind fixed_price.'),
    skus: z.array(Sku).describe('SKUs the promotion applies to; empty: decided by rules.'),
    channels: z.array(SalesChannel).describe('Channels it runs on; empty: all channels.'),
    storeGroups: z.array(StoreGroup).describe('Store groups it runs in; empty: all.'),
    effectiveFrom: Timestamp.describe('Start (RFC 3339 UTC).'),
    effectiveUntil: Timestamp.optional().describe('End, exclusive; absent: open-ended.'),
  })
  .strict()
  .superRefine(
    (p, ctx) => {
      const needs = {
        percent_off: 'percentOff',
        amount_off: 'amountOff',
        fixed_price: 'fixedPrice',
      };
      const field = needs[p.kind as keyof typeof needs] as keyof typeof p | undefined;
      if (field && p[field] === undefined) {
        ctx.addIssue({ code: 'custom', path: [field], message: `kind ${p.kind} needs ${field}` });
      }
      requireAfter(ctx, p.effectiveFrom, p.effectiveUntil, 'effectiveUntil');
    },
    { when: whenValid },
  )
  .meta({ id: 'Promotion.v1', title: 'Promotion', description: 'A price promotion.' });
export type PromotionV1 = z.infer<typeof PromotionV1>;
