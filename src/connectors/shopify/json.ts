// Shopify's JSON carries 64-bit integer ids as bare numbers. `JSON.parse` rounds every integer
// above 2^53 (820982911946154508 becomes 820982911946154500), so webhook bodies are read here
// from their raw text: every integer a double cannot hold exactly is kept as its decimal string.

/** Marks a string that stood for a bare integer in the JSON text (never in the parsed result). */
const BIG_MARK = '\u0000int:';

/**
 * Parses JSON text, keeping integers that are not safe JavaScript integers as decimal strings
 * (`"820982911946154508"`). Everything else is exactly `JSON.parse`. Throws SyntaxError on
 * malformed text.
 */
export function parseShopifyJson(text: string): unknown {
  let out = '';
  let inString = false;
  let escaped = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === 0x5c) escaped = true;
      else if (ch === 0x22) inString = false;
      continue;
    }
    if (ch === 0x22) {
      inString = true;
      continue;
    }
    if (ch === 0x2d || (ch >= 0x30 && ch <= 0x39)) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j] as string)) j++;
      const token = text.slice(i, j);
      if (/^-?\d{16,}$/.test(token) && !Number.isSafeInteger(Number(token))) {
        out += text.slice(start, i) + JSON.stringify(BIG_MARK + token);
        start = j;
      }
      i = j - 1;
    }
  }
  out += text.slice(start);
  if (out.length === text.length) return JSON.parse(text) as unknown;
  return JSON.parse(out, (_key, value: unknown) =>
    typeof value === 'string' && value.startsWith(BIG_MARK) ? value.slice(BIG_MARK.length) : value,
  ) as unknown;
}

/**
 * A Shopify id as a string: from a decimal string (as `parseShopifyJson` keeps big ids) or a safe
 * integer. Undefined for anything else (a rounded number above 2^53 is refused, not guessed).
 */
export function shopifyIdOf(value: unknown): string | undefined {
  if (typeof value === 'string' && /^[1-9]\d{0,19}$/.test(value)) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return String(value);
  return undefined;
}
