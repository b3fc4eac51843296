// Shopify's wire conventions: 64-bit integer ids (written as bare JSON integers, which a
// JavaScript JSON.parse cannot always hold exactly), money as decimal strings, timestamps with a
// UTC offset, and the `{shop_money, presentment_money}` money sets.
import { createHmac, timingSafeEqual } from 'node:crypto';

/** A Shopify resource id. Held as a bigint so ids above 2^53 stay exact. */
export type ShopifyId = bigint;

/** Serialises a value to JSON, writing bigints as bare integers (Shopify's ids). */
export function toShopifyJson(value: unknown, indent?: number): string {
  const text = JSON.stringify(
    value,
    (_key, v: unknown) => (typeof v === 'bigint' ? `\u0000bigint:${v.toString()}` : v),
    indent,
  );
  return text.replace(/"\\u0000bigint:(-?\d+)"/g, '$1');
}

/**
 * Parses Shopify JSON keeping every integer too large for a double as a bigint, so ids in
 * request bodies and paths are never rounded.
 */
export function parseShopifyJson(text: string): unknown {
  // Quote integers of 16+ digits that sit in value position (not inside strings), then revive.
  let out = '';
  let inString = false;
  let escaped = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (inString) {
      out += ch;
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
      out += ch;
      continue;
    }
    if ((ch >= '0' && ch <= '9') || ch === '-') {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j] as string)) j++;
      const token = text.slice(i, j);
      if (/^-?\d{16,}$/.test(token) && !Number.isSafeInteger(Number(token))) {
        out += `"\\u0000bigint:${token}"`;
      } else out += token;
      i = j - 1;
      continue;
    }
    out += ch;
  }
  return JSON.parse(out, (_key, v: unknown) =>
    typeof v === 'string' && v.startsWith('\u0000bigint:') ? BigInt(v.slice(8)) : v,
  );
}

/** Reads an id from a path segment, number, bigint or numeric string; undefined if it is none. */
export function toShopifyId(value: unknown): ShopifyId | undefined {
  if (typeof value === 'bigint') return value > 0n ? value : undefined;
  if (typeof value === 'number') {
    return Number.isInteger(value) && value > 0 ? BigInt(value) : undefined;
  }
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) {
    const id = BigInt(value);
    return id > 0n ? id : undefined;
  }
  return undefined;
}

/** A source of unique ids: 13-digit ids (what Shopify issues today, below 2^53) or 18–19 digit ids. */
export function makeIdSource(random: () => number, large = false): () => ShopifyId {
  const seen = new Set<bigint>();
  return () => {
    for (;;) {
      const hi = BigInt(Math.floor(random() * 0x100000));
      const lo = BigInt(Math.floor(random() * 0x100000000));
      const id = large
        ? 100_000_000_000_000_000n +
          ((hi << 32n) | lo) * 1_000n +
          BigInt(Math.floor(random() * 1000))
        : 1_000_000_000_000n + (((hi << 32n) | lo) % 8_999_999_999_999n);
      if (!seen.has(id)) {
        seen.add(id);
        return id;
      }
    }
  };
}

/** `gid://shopify/Order/123`. */
export function gid(type: string, id: ShopifyId): string {
  return `gid://shopify/${type}/${id.toString()}`;
}

/** Minor units to Shopify's decimal string: 1234 → "12.34". */
export function money(minor: number): string {
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(Math.round(minor));
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Shopify's decimal string (or a number) to minor units; undefined when not a decimal amount. */
export function parseMoney(value: unknown): number | undefined {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.round(value * 100);
  if (typeof value !== 'string' || !/^-?\d+(\.\d{1,2})?$/.test(value)) return undefined;
  const [whole = '0', frac = ''] = value.replace('-', '').split('.');
  const minor = Number(whole) * 100 + Number(frac.padEnd(2, '0'));
  return value.startsWith('-') ? -minor : minor;
}

export interface MoneySet {
  shop_money: { amount: string; currency_code: string };
  presentment_money: { amount: string; currency_code: string };
}

export function moneySet(minor: number, currency: string): MoneySet {
  const amount = money(minor);
  return {
    shop_money: { amount, currency_code: currency },
    presentment_money: { amount, currency_code: currency },
  };
}

/** Epoch ms to Shopify's timestamp with offset: 2026-01-05T09:00:00+00:00. */
export function shopifyTime(epochMs: number, offsetMinutes = 0): string {
  const local = new Date(epochMs + offsetMinutes * 60_000).toISOString().slice(0, 19);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const hh = String(Math.floor(abs / 60)).padStart(2, '0');
  const mm = String(abs % 60).padStart(2, '0');
  return `${local}${sign}${hh}:${mm}`;
}

/** `X-Shopify-Hmac-Sha256`: base64 of HMAC-SHA256 over the raw body bytes with the webhook secret. */
export function signShopifyWebhook(secret: string, rawBody: string | Buffer): string {
  return createHmac('sha256', secret).update(rawBody).digest('base64');
}

/** Verifies `X-Shopify-Hmac-Sha256` over the raw body in constant time. */
export function verifyShopifyWebhook(
  secret: string,
  rawBody: string | Buffer,
  header: string | undefined,
): boolean {
  if (header === undefined || header === '') return false;
  const expected = Buffer.from(signShopifyWebhook(secret, rawBody), 'utf8');
  const given = Buffer.from(header, 'utf8');
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** The headers Shopify sends with a webhook. */
export interface ShopifyWebhookHeaders {
  'content-type': string;
  'x-shopify-topic': string;
  'x-shopify-hmac-sha256': string;
  'x-shopify-shop-domain': string;
  'x-shopify-webhook-id': string;
  'x-shopify-event-id': string;
  'x-shopify-api-version': string;
  'x-shopify-triggered-at': string;
}

export interface ShopifyWebhookRequest {
  headers: ShopifyWebhookHeaders;
  body: string;
}

/** Builds a signed Shopify webhook request (headers + raw body) for a topic and payload. */
export function buildShopifyWebhook(opts: {
  topic: string;
  payload: unknown;
  secret: string;
  shopDomain: string;
  apiVersion: string;
  webhookId: string;
  eventId?: string;
  triggeredAt: string;
}): ShopifyWebhookRequest {
  const body = typeof opts.payload === 'string' ? opts.payload : toShopifyJson(opts.payload);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-shopify-topic': opts.topic,
      'x-shopify-hmac-sha256': signShopifyWebhook(opts.secret, body),
      'x-shopify-shop-domain': opts.shopDomain,
      'x-shopify-webhook-id': opts.webhookId,
      'x-shopify-event-id': opts.eventId ?? opts.webhookId,
      'x-shopify-api-version': opts.apiVersion,
      'x-shopify-triggered-at': opts.triggeredAt,
    },
  };
}

/** A uuid-shaped id drawn from a seeded random source (so traffic is reproducible). */
export function seededUuid(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16));
  hex[12] = '4';
  hex[16] = ((parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16);
  const s = hex.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}
