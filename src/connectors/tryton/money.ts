// Money between Middlemart's integer minor units and Tryton's Decimal strings, without floats.

/** The ISO 4217 minor-unit digits of a currency (2 when the runtime does not know it). */
export function currencyDigits(currency: string): number {
  try {
    return (
      new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
        .maximumFractionDigits ?? 2
    );
  } catch {
    return 2;
  }
}

/** Minor units → decimal text: (1999, 2) → `19.99`, (-5, 2) → `-0.05`, (300, 0) → `300`. */
export function minorToDecimal(minor: number, digits: number): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`not an integer amount: ${minor}`);
  const negative = minor < 0;
  const text = String(Math.abs(minor)).padStart(digits + 1, '0');
  const whole = digits === 0 ? text : text.slice(0, text.length - digits);
  const frac = digits === 0 ? '' : `.${text.slice(text.length - digits)}`;
  return `${negative ? '-' : ''}${whole}${frac}`;
}

/**
 * The net unit price of a line in decimal text with `digits + 2` places (Tryton keeps 4 by
 * default): (quantity × unit − discount) / quantity, rounded half up.
 */
export function netUnitPrice(
  unitPriceMinor: number,
  quantity: number,
  discountMinor: number,
  digits: number,
): string {
  if (!discountMinor) return minorToDecimal(unitPriceMinor, digits);
  const extra = 2;
  const scale = 10n ** BigInt(extra);
  const q = BigInt(Math.abs(quantity));
  const total = BigInt(unitPriceMinor) * q - BigInt(discountMinor);
  // Round half up in units of 1/100 minor.
  const scaled = (total * scale * 2n + q) / (2n * q);
  return minorToDecimal(Number(scaled), digits + extra);
}

/** Decimal text → minor units, rounded half away from zero: (`19.9900`, 2) → 1999. */
export function decimalToMinor(text: string, digits: number): number {
  const match = /^(-)?(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match) throw new RangeError(`not a decimal: ${text}`);
  const [, sign, whole = '', frac = ''] = match;
  const kept = frac.padEnd(digits, '0').slice(0, digits);
  const rest = frac.slice(digits);
  let value = Number(`${whole || '0'}${kept}`);
  if (rest && Number(rest[0]) >= 5) value += 1;
  return sign ? -value : value;
}
