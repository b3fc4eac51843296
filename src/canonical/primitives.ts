// Shared primitives of the canonical model: money, codes, times, contact points, references.
// Every schema here carries a `.describe()` text and, where it is reused, a registry id so that
// generated JSON Schemas name it once under `$defs`.
import { z } from 'zod';
import { ISO_3166_ALPHA2 } from './data/iso3166.js';
import { ISO_4217_CODES, ISO_4217_MINOR_UNITS } from './data/iso4217.js';

/**
 * Refinement guard: run a cross-field rule only once the value's own fields are valid, so one
 * mistake is reported once (a zero quantity is not also reported as a totals mismatch).
 */
export function whenValid(payload: { issues: readonly unknown[] }): boolean {
  return payload.issues.length === 0;
}

const CURRENCIES: ReadonlySet<string> = new Set(ISO_4217_CODES);
const COUNTRIES: ReadonlySet<string> = new Set(ISO_3166_ALPHA2);

/** True when `code` is an ISO 4217 currency code in current use with a defined minor unit. */
export function isCurrencyCode(code: string): boolean {
  return CURRENCIES.has(code);
}

/** Decimal places of the currency's minor unit (EUR 2, JPY 0, KWD 3); undefined if unknown. */
export function minorUnitsOf(currency: string): number | undefined {
  return isCurrencyCode(currency)
    ? ISO_4217_MINOR_UNITS[currency as keyof typeof ISO_4217_MINOR_UNITS]
    : undefined;
}

/** True when `code` is an officially assigned ISO 3166-1 alpha-2 country code. */
export function isCountryCode(code: string): boolean {
  return COUNTRIES.has(code);
}

export const CurrencyCode = z
  .string()
  .regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code: three uppercase letters')
  .refine(isCurrencyCode, {
    message: 'not an ISO 4217 currency code in current use',
    when: whenValid,
  })
  .meta({
    id: 'CurrencyCode',
    description: 'ISO 4217 alphabetic currency code in current use (e.g. EUR, USD, JPY).',
    enum: [...ISO_4217_CODES],
  });
export type CurrencyCode = z.infer<typeof CurrencyCode>;

export const CountryCode = z
  .string()
  .regex(/^[A-Z]{2}$/, 'expected an ISO 3166-1 alpha-2 code: two uppercase letters')
  .refine(isCountryCode, {
    message: 'not an assigned ISO 3166-1 alpha-2 country code',
    when: whenValid,
  })
  .meta({
    id: 'CountryCode',
    description: 'ISO 3166-1 alpha-2 country code (e.g. DE, US, GB).',
    enum: [...ISO_3166_ALPHA2],
  });
export type CountryCode = z.infer<typeof CountryCode>;

/** An amount of money: integer minor units (cents, pence, yen) in an ISO 4217 currency. */
export const Money = z
  .object({
    amount: z
      .int()
      .describe(
        'Amount in integer minor units of the currency (EUR 12.34 is 1234, JPY 500 is 500).',
      ),
    currency: CurrencyCode,
  })
  .strict()
  .meta({ id: 'Money', description: 'Money as integer minor units plus ISO 4217 currency.' });
export type Money = z.infer<typeof Money>;

/** Money that may not be negative (prices, charges, discounts, refunds). */
export const NonNegativeMoney = z
  .object({
    amount: z
      .int()
      .nonnegative()
      .describe('Amount in integer minor units of the currency; zero or more.'),
    currency: CurrencyCode,
  })
  .strict()
  .meta({
    id: 'NonNegativeMoney',
    description: 'Money (integer minor units plus ISO 4217 currency) that is not negative.',
  });

/** A point in time: RFC 3339 in UTC, ending with Z. */
export const Timestamp = z.iso.datetime({ offset: false, local: false }).meta({
  id: 'Timestamp',
  description: 'RFC 3339 date-time in UTC, ending with Z (e.g. 2025-03-01T12:00:00Z).',
});
export type Timestamp = z.infer<typeof Timestamp>;

/** A calendar date without time zone (YYYY-MM-DD), e.g. a date of birth. */
export const CalendarDate = z.iso
  .date()
  .meta({ id: 'CalendarDate', description: 'Calendar date, ISO 8601 YYYY-MM-DD.' });
export type CalendarDate = z.infer<typeof CalendarDate>;

export const E164_PATTERN = /^\+[1-9]\d{1,14}$/;
export const PhoneNumber = z
  .string()
  .regex(E164_PATTERN, 'expected an E.164 phone number such as +4930123456')
  .meta({ id: 'PhoneNumber', description: 'Phone number in E.164 form (+ country code, digits).' });
export type PhoneNumber = z.infer<typeof PhoneNumber>;

export const EmailAddress = z
  .email()
  .max(254)
  .meta({ id: 'EmailAddress', description: 'Email address (RFC 5321 length limit).' });
export type EmailAddress = z.infer<typeof EmailAddress>;

/** Stock keeping unit: the retailer's own item key, shared by every system in the estate. */
export const Sku = z
  .string()
  .min(1)
  .max(64)
  .regex(/^\S+$/, 'a SKU contains no whitespace')
  .meta({ id: 'Sku', description: "Stock keeping unit: the retailer's item key." });
export type Sku = z.infer<typeof Sku>;

/** A stock location: store, warehouse, distribution centre or virtual location id. */
export const LocationId = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[^\s@]+$/, 'a location id contains no whitespace and no @')
  .meta({
    id: 'LocationId',
    description: 'Stock location id (store, warehouse, DC), as configured in the estate.',
  });
export type LocationId = z.infer<typeof LocationId>;

/** Ids of Middlemart's own entities (orders, customers, reservations, returns …). */
export const EntityId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^\s]+$/, 'an id contains no whitespace')
  .meta({ id: 'EntityId', description: 'Identifier of a canonical entity.' });

/** Whole units of a stated unit of measure. */
export const Quantity = z.int().describe('Quantity in whole units of the stated unit of measure.');
export const PositiveQuantity = z
  .int()
  .positive()
  .describe('Quantity in whole units of the stated unit of measure; greater than zero.');

/** UN/ECE Recommendation 20 style unit code (EA, KGM, MTR …) or the estate's own code. */
export const UnitOfMeasure = z
  .string()
  .regex(/^[A-Z0-9_]{1,10}$/, 'expected a unit code such as EA, KGM, MTR')
  .meta({
    id: 'UnitOfMeasure',
    description: 'Unit of measure code, UN/ECE Recommendation 20 where possible (EA, KGM, MTR).',
  });

/** Sales channel that originated an order, reservation or price. */
export const SalesChannel = z.enum(['web', 'mobile', 'store', 'marketplace']).meta({
  id: 'SalesChannel',
  description: 'Sales channel: web, mobile app, store or marketplace.',
});
export type SalesChannel = z.infer<typeof SalesChannel>;

/** Operating / data-residency region as configured in the estate (e.g. `eu`, `us-east`). */
export const Region = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, 'expected a lowercase region code such as eu or us-east')
  .meta({
    id: 'Region',
    description: 'Operating and data-residency region code as configured in the estate.',
  });

/** An identifier as a particular source system knows it. */
export const SourceRef = z
  .object({
    system: z
      .string()
      .min(1)
      .max(64)
      .describe('Id of the source system as configured in the estate (e.g. shopify-eu).'),
    id: z.string().min(1).max(256).describe("The entity's id in that system."),
  })
  .strict()
  .meta({ id: 'SourceRef', description: 'An identifier in a named source system.' });
export type SourceRef = z.infer<typeof SourceRef>;

/** A postal address. */
export const Address = z
  .object({
    name: z.string().max(200).optional().describe('Recipient or addressee name.'),
    company: z.string().max(200).optional().describe('Company name.'),
    lines: z.array(z.string().min(1).max(200)).min(1).max(4).describe('Street address lines.'),
    city: z.string().min(1).max(100).describe('City or locality.'),
    region: z
      .string()
      .max(100)
      .optional()
      .describe('State, province or county (ISO 3166-2 subdivision code where known).'),
    postalCode: z.string().max(20).optional().describe('Postal or ZIP code.'),
    country: CountryCode,
    phone: PhoneNumber.optional(),
  })
  .strict()
  .meta({ id: 'Address', description: 'Postal address.' });
export type Address = z.infer<typeof Address>;

/** Checks every Money value handed in is in `currency`; reports each mismatch at its path. */
export function requireCurrency(
  ctx: z.RefinementCtx,
  currency: string,
  entries: ReadonlyArray<{ money: Money | undefined; path: Array<string | number> }>,
): void {
  for (const { money, path } of entries) {
    if (money && money.currency !== currency) {
      ctx.addIssue({
        code: 'custom',
        path: [...path, 'currency'],
        message: `currency ${money.currency} differs from the document currency ${currency}`,
      });
    }
  }
}

/** Reports duplicate values of `key` in a list at the path of the second occurrence. */
export function requireUnique<T>(
  ctx: z.RefinementCtx,
  items: readonly T[],
  keyOf: (item: T) => string,
  path: Array<string | number>,
  what: string,
): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    const key = keyOf(item);
    if (seen.has(key)) {
      ctx.addIssue({ code: 'custom', path: [...path, i], message: `duplicate ${what} ${key}` });
    }
    seen.add(key);
  });
}
