// Money at the ERP edge: Middlemart keeps integer minor units of an ISO 4217 currency; ERPs book
// decimals in the document currency. The conversion is exact (string arithmetic, no floats).
import { minorUnitsOf } from '../../canonical/index.js';

/** Decimal places of `currency`'s minor unit; 2 when the code is unknown to ISO 4217. */
export function decimalsOf(currency: string): number {
  return minorUnitsOf(currency) ?? 2;
}

/** 1234 EUR → "12.34"; 5 JPY → "5"; -5 EUR → "-0.05". */
export function minorToDecimalString(minor: number, currency: string): string {
  const places = decimalsOf(currency);
  const negative = minor < 0;
  const digits = String(Math.abs(Math.trunc(minor))).padStart(places + 1, '0');
  const whole = places === 0 ? digits : digits.slice(0, -places);
  const fraction = places === 0 ? '' : `.${digits.slice(-places)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** 1234 EUR → 12.34 (a JSON number, as REST ERPs expect). */
export function minorToDecimal(minor: number, currency: string): number {
  return Number(minorToDecimalString(minor, currency));
}

/**
 * The net unit rate of a line as a decimal with up to `maxPlaces` places: (unit × qty −
 * discount) / qty, in the currency's major unit.
 */
export function netUnitRate(
  unitPriceMinor: number,
  quantity: number,
  discountMinor: number | undefined,
  currency: string,
  maxPlaces = 4,
): number {
  const netMinor = (unitPriceMinor * quantity - (discountMinor ?? 0)) / quantity;
  const rate = netMinor / 10 ** decimalsOf(currency);
  return Number(rate.toFixed(maxPlaces));
}

/** 12.34 EUR → 1234 (rounded half away from zero to the minor unit). */
export function decimalToMinor(value: number, currency: string): number {
  const scaled = value * 10 ** decimalsOf(currency);
  return Math.sign(scaled) * Math.round(Math.abs(scaled) + Number.EPSILON);
}
