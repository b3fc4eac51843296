// The sales order as every channel submits it and every downstream system receives it.
import { z } from 'zod';
import {
  Address,
  CurrencyCode,
  EmailAddress,
  EntityId,
  LocationId,
  Money,
  NonNegativeMoney,
  PositiveQuantity,
  Region,
  SalesChannel,
  Sku,
  SourceRef,
  Timestamp,
  UnitOfMeasure,
  requireCurrency,
  requireUnique,
  whenValid,
} from './primitives.js';

export const OrderStatus = z
  .enum([
    'received',
    'accepted',
    'on_hold',
    'posted',
    'partially_fulfilled',
    'fulfilled',
    'cancelled',
    'closed',
  ])
  .meta({
    id: 'OrderStatus',
    description:
      "Middlemart's order lifecycle: received → accepted → posted (booked in the ERP) → " +
      '(partially_)fulfilled → closed; on_hold and cancelled on the way.',
  });
export type OrderStatus = z.infer<typeof OrderStatus>;

export const FulfilmentMethod = z.enum(['ship', 'pickup', 'store_sale']).meta({
  id: 'FulfilmentMethod',
  description: 'ship: delivered to an address; pickup: collected in store; store_sale: POS.',
});
export type FulfilmentMethod = z.infer<typeof FulfilmentMethod>;

export const Fulfilment = z
  .object({
    method: FulfilmentMethod,
    pickupLocation: LocationId.optional().describe('Store the customer collects from (pickup).'),
    storeLocation: LocationId.optional().describe('Store where the sale took place (store_sale).'),
    serviceLevel: z
      .string()
      .max(64)
      .optional()
      .describe('Shipping service level (standard, express, next_day …) for ship.'),
  })
  .strict()
  .superRefine(
    (f, ctx) => {
      if (f.method === 'pickup' && !f.pickupLocation) {
        ctx.addIssue({
          code: 'custom',
          path: ['pickupLocation'],
          message: 'pickup needs a pickupLocation',
        });
      }
      if (f.method === 'store_sale' && !f.storeLocation) {
        ctx.addIssue({
          code: 'custom',
          path: ['storeLocation'],
          message: 'store_sale needs a storeLocation',
        });
      }
    },
    { when: whenValid },
  )
  .meta({ id: 'Fulfilment', description: 'How goods reach the customer.' });
export type Fulfilment = z.infer<typeof Fulfilment>;

export const Discount = z
  .object({
    amount: NonNegativeMoney.describe('Discount on the whole line (not per unit).'),
    promotionId: EntityId.optional().describe('Promotion that granted it.'),
    code: z.string().max(64).optional().describe('Coupon / voucher code entered.'),
    description: z.string().max(200).optional().describe('Text shown on receipts.'),
  })
  .strict()
  .meta({ id: 'Discount', description: 'A discount applied to an order line.' });
export type Discount = z.infer<typeof Discount>;

export const TaxLine = z
  .object({
    amount: NonNegativeMoney.describe('Tax amount.'),
    rateBasisPoints: z.int().min(0).max(10000).describe('Tax rate in basis points (19 % is 1900).'),
    jurisdiction: z.string().max(100).optional().describe('Taxing jurisdiction (e.g. DE, US-CA).'),
    kind: z.string().max(32).optional().describe('Tax kind: vat, gst, sales_tax …'),
  })
  .strict()
  .meta({ id: 'TaxLine', description: 'One tax charged on a line or on shipping.' });
export type TaxLine = z.infer<typeof TaxLine>;

export const OrderLine = z
  .object({
    lineId: z.string().min(1).max(64).describe('Line id, unique within the order.'),
    sku: Sku,
    erpItemId: z.string().max(128).optional().describe('ERP item id, once resolved.'),
    title: z.string().max(500).optional().describe('Item title as sold.'),
    quantity: PositiveQuantity,
    unitOfMeasure: UnitOfMeasure.optional(),
    unitPrice: NonNegativeMoney.describe('Price per unit before discounts.'),
    discounts: z.array(Discount).describe('Discounts on this line.'),
    taxes: z.array(TaxLine).describe('Taxes on this line (after discounts).'),
    fulfilment: Fulfilment.optional().describe(
      "Overrides the order's fulfilment for this line (mixed ship / pickup carts).",
    ),
  })
  .strict()
  .meta({ id: 'OrderLine', description: 'One order line.' });
export type OrderLine = z.infer<typeof OrderLine>;

export const CustomerReference = z
  .object({
    customerId: EntityId.optional().describe('Middlemart customer id, when known.'),
    sourceRef: SourceRef.optional().describe("The customer's id in the ordering channel."),
    email: EmailAddress.optional().describe('Email of a guest customer.'),
  })
  .strict()
  .refine((c) => c.customerId ?? c.sourceRef ?? c.email, {
    when: whenValid,
    message: 'a customer reference names a customerId, a sourceRef or an email',
  })
  .meta({ id: 'CustomerReference', description: 'Who placed the order.' });
export type CustomerReference = z.infer<typeof CustomerReference>;

export const OrderTotals = z
  .object({
    subtotal: Money.describe('Σ line quantity × unit price.'),
    discountTotal: Money.describe('Σ line discounts.'),
    shippingTotal: Money.describe('Shipping charge before tax.'),
    taxTotal: Money.describe('Σ line taxes + shipping taxes.'),
    grandTotal: Money.describe(
      'subtotal − discountTotal + shippingTotal, plus taxTotal unless prices include tax.',
    ),
  })
  .strict()
  .meta({ id: 'OrderTotals', description: 'Order totals, all in the order currency.' });
export type OrderTotals = z.infer<typeof OrderTotals>;

export const ShippingCharge = z
  .object({
    amount: NonNegativeMoney.describe('Shipping charge before tax.'),
    taxes: z.array(TaxLine).describe('Taxes on shipping.'),
  })
  .strict()
  .meta({ id: 'ShippingCharge', description: 'Charge for delivery.' });

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

export const OrderV1 = z
  .object({
    id: EntityId.describe('Middlemart order id.'),
    channel: SalesChannel,
    externalIds: z
      .array(SourceRef)
      .describe('Ids of this order in source systems (one per system: channel, ERP, WMS …).'),
    customer: CustomerReference,
    status: OrderStatus.optional().describe(
      "Middlemart's lifecycle state; absent on intake from a channel.",
    ),
    currency: CurrencyCode,
    pricesIncludeTax: z
      .boolean()
      .describe('True where unit prices include tax (EU style), false where tax is added.'),
    lines: z.array(OrderLine).min(1).describe('Order lines; at least one.'),
    fulfilment: Fulfilment,
    shipping: ShippingCharge.optional(),
    billingAddress: Address.optional(),
    shippingAddress: Address.optional().describe('Delivery address; required for ship.'),
    totals: OrderTotals,
    placedAt: Timestamp.describe('When the customer placed the order (RFC 3339 UTC).'),
    region: Region,
    notes: z.string().max(2000).optional().describe('Free-text note from the customer.'),
  })
  .strict()
  .superRefine(
    (o, ctx) => {
      requireUnique(ctx, o.externalIds, (r) => r.system, ['externalIds'], 'source system');
      requireUnique(ctx, o.lines, (l) => l.lineId, ['lines'], 'lineId');

      const money: Array<{ money: Money | undefined; path: Array<string | number> }> = [];
      o.lines.forEach((l, i) => {
        money.push({ money: l.unitPrice, path: ['lines', i, 'unitPrice'] });
        l.discounts.forEach((d, j) =>
          money.push({ money: d.amount, path: ['lines', i, 'discounts', j, 'amount'] }),
        );
        l.taxes.forEach((t, j) =>
          money.push({ money: t.amount, path: ['lines', i, 'taxes', j, 'amount'] }),
        );
      });
      money.push({ money: o.shipping?.amount, path: ['shipping', 'amount'] });
      o.shipping?.taxes.forEach((t, j) =>
        money.push({ money: t.amount, path: ['shipping', 'taxes', j, 'amount'] }),
      );
      for (const key of Object.keys(o.totals) as Array<keyof OrderTotals>) {
        money.push({ money: o.totals[key], path: ['totals', key] });
      }
      requireCurrency(ctx, o.currency, money);

      const methods = new Set([o.fulfilment.method, ...o.lines.map((l) => l.fulfilment?.method)]);
      if (methods.has('ship') && !o.shippingAddress) {
        ctx.addIssue({
          code: 'custom',
          path: ['shippingAddress'],
          message: 'lines to ship need a shippingAddress',
        });
      }

      o.lines.forEach((l, i) => {
        const discounted = sum(l.discounts.map((d) => d.amount.amount));
        if (discounted > l.quantity * l.unitPrice.amount) {
          ctx.addIssue({
            code: 'custom',
            path: ['lines', i, 'discounts'],
            message: 'discounts exceed the line value',
          });
        }
      });

      const subtotal = sum(o.lines.map((l) => l.quantity * l.unitPrice.amount));
      const discountTotal = sum(o.lines.flatMap((l) => l.discounts.map((d) => d.amount.amount)));
      const shippingTotal = o.shipping?.amount.amount ?? 0;
      const taxTotal = sum([
        ...o.lines.flatMap((l) => l.taxes.map((t) => t.amount.amount)),
        ...(o.shipping?.taxes.map((t) => t.amount.amount) ?? []),
      ]);
      const grandTotal =
        subtotal - discountTotal + shippingTotal + (o.pricesIncludeTax ? 0 : taxTotal);
      const expected: Record<keyof OrderTotals, number> = {
        subtotal,
        discountTotal,
        shippingTotal,
        taxTotal,
        grandTotal,
      };
      for (const key of Object.keys(expected) as Array<keyof OrderTotals>) {
        if (o.totals[key].amount !== expected[key]) {
          ctx.addIssue({
            code: 'custom',
            path: ['totals', key, 'amount'],
            message: `totals.${key} is ${o.totals[key].amount} but the lines add up to ${expected[key]}`,
          });
        }
      }
    },
    { when: whenValid },
  )
  .meta({
    id: 'Order.v1',
    title: 'Order',
    description: 'A sales order from any channel, with lines, fulfilment, addresses and totals.',
  });
export type OrderV1 = z.infer<typeof OrderV1>;
