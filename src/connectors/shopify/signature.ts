// Shopify webhook signatures: `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body
// bytes under the app's webhook secret. Verified over the bytes as received, before any parsing,
// and compared in constant time.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The `X-Shopify-Hmac-Sha256` value of a raw body. */
export function signShopifyBody(secret: string, rawBody: Buffer | string): string {
  return createHmac('sha256', secret).update(rawBody).digest('base64');
}

/**
 * True when `header` is the signature of `rawBody` under `secret`. The comparison runs over the
 * decoded digests in constant time; a missing, empty or malformed header is false.
 */
export function verifyShopifySignature(
  secret: string,
  rawBody: Buffer | string,
  header: string | undefined,
): boolean {
  if (secret === '' || header === undefined || !/^[A-Za-z0-9+/]{43}=$/.test(header.trim())) {
    return false;
  }
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  const given = Buffer.from(header.trim(), 'base64');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
