// Minor units ↔ the decimal strings channel APIs speak, by the currency's ISO 4217 exponent.
import { ISO_4217_MINOR_UNITS } from '../../canonical/index.js';

export function exponentOf(currency: string): number {
  return (ISO_4217_MINOR_UNITS as Record<string, number>)[currency] ?? 2;
}

/** 1234 EUR → "12.34"; 500 JPY → "500". */
export function decimalOf(minor: number, currency: string): string {
  const digits = exponentOf(currency);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(Math.round(minor));
  if (digits === 0) return `${sign}${abs}`;
  const unit = 10 ** digits;
  return `${sign}${Math.floor(abs / unit)}.${String(abs % unit).padStart(digits, '0')}`;
}

/** "12.34" → 1234 (EUR); undefined when not a decimal. */
export function minorOf(value: unknown, currency: string): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
  if (typeof value !== 'string' || !/^-?\d+(\.\d+)?$/.test(value)) return undefined;
  return Math.round(Number(value) * 10 ** exponentOf(currency));
}
