// Product / item master data: the sellable item as every system in the estate must know it.
import { z } from 'zod';
import { Sku, Timestamp, UnitOfMeasure, whenValid } from './primitives.js';

const GTIN_LENGTH = { gtin8: 8, gtin12: 12, gtin13: 13, gtin14: 14 } as const;

/** GS1 mod-10 check digit test for a GTIN-8/12/13/14 (all digits, last one is the check). */
export function hasValidGtinCheckDigit(value: string): boolean {
  if (!/^\d{8,14}$/.test(value)) return false;
  const digits = [...value].map(Number);
  const check = digits.pop();
  let sum = 0;
  // Weights 3,1,3,1 … from the digit nearest the check digit leftwards.
  digits.reverse().forEach((d, i) => {
    sum += d * (i % 2 === 0 ? 3 : 1);
  });
  return (10 - (sum % 10)) % 10 === check;
}

export const Barcode = z
  .object({
    type: z
      .enum(['gtin8', 'gtin12', 'gtin13', 'gtin14', 'code128', 'internal'])
      .describe(
        'Symbology / numbering: GS1 GTIN-8/12 (UPC-A)/13 (EAN-13)/14, Code 128 or in-house.',
      ),
    value: z.string().min(1).max(64).describe('The barcode value as scanned.'),
  })
  .strict()
  .superRefine(
    (b, ctx) => {
      if (b.type in GTIN_LENGTH) {
        const length = GTIN_LENGTH[b.type as keyof typeof GTIN_LENGTH];
        if (b.value.length !== length || !/^\d+$/.test(b.value)) {
          ctx.addIssue({
            code: 'custom',
            path: ['value'],
            message: `a ${b.type} has exactly ${length} digits`,
          });
        } else if (!hasValidGtinCheckDigit(b.value)) {
          ctx.addIssue({ code: 'custom', path: ['value'], message: 'GTIN check digit is wrong' });
        }
      }
    },
    { when: whenValid },
  )
  .meta({ id: 'Barcode', description: 'A barcode identifying the item.' });
export type Barcode = z.infer<typeof Barcode>;

export const AttributeValue = z
  .union([z.string().max(1000), z.number(), z.boolean()])
  .describe('Attribute value: text, number or flag.');

export const ProductV1 = z
  .object({
    sku: Sku,
    erpItemId: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe('Item id in the ERP, when it differs from the SKU.'),
    title: z.string().min(1).max(500).describe('Display title of the item.'),
    description: z.string().max(20000).optional().describe('Long description, plain text.'),
    unitOfMeasure: UnitOfMeasure,
    barcodes: z.array(Barcode).describe('Barcodes that identify this item.'),
    attributes: z
      .record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), AttributeValue)
      .describe('Further attributes by snake_case name (colour, size, brand …).'),
    status: z
      .enum(['active', 'discontinued', 'blocked'])
      .describe('Whether the item may be sold: active, discontinued (sell-through) or blocked.'),
    updatedAt: Timestamp.optional().describe(
      'When the item master last changed in its source system (RFC 3339 UTC).',
    ),
  })
  .strict()
  .superRefine(
    (p, ctx) => {
      const seen = new Set<string>();
      p.barcodes.forEach((b, i) => {
        if (seen.has(b.value)) {
          ctx.addIssue({
            code: 'custom',
            path: ['barcodes', i, 'value'],
            message: `duplicate barcode ${b.value}`,
          });
        }
        seen.add(b.value);
      });
    },
    { when: whenValid },
  )
  .meta({ id: 'Product.v1', title: 'Product', description: 'A sellable item (item master).' });
export type ProductV1 = z.infer<typeof ProductV1>;
