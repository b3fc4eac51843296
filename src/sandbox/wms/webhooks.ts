// Standard Webhooks (https://www.standardwebhooks.com) signing: HMAC-SHA256 over
// "<webhook-id>.<webhook-timestamp>.<body>", keyed with the base64 secret after its `whsec_`
// prefix, sent as `webhook-signature: v1,<base64>` (several space-separated signatures allowed).
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Key bytes of a Standard Webhooks secret (`whsec_<base64>`; the prefix is optional). */
export function webhookSecretKey(secret: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const key = Buffer.from(encoded, 'base64');
  if (key.length === 0) throw new Error('webhook secret is empty or not base64');
  return key;
}

/** The `webhook-signature` header value for one message: `v1,<base64 HMAC-SHA256>`. */
export function signStandardWebhook(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  const mac = createHmac('sha256', webhookSecretKey(secret))
    .update(`${id}.${timestampSeconds}.${body}`)
    .digest('base64');
  return `v1,${mac}`;
}

export interface VerifyOptions {
  /** Accepted clock skew in seconds (default 300). */
  toleranceSeconds?: number;
  /** Current time in epoch seconds (default now). */
  nowSeconds?: number;
}

/** Verifies headers and body of a received Standard Webhook; false on any mismatch. */
export function verifyStandardWebhook(
  secret: string,
  headers: { id: string | undefined; timestamp: string | undefined; signature: string | undefined },
  body: string,
  opts: VerifyOptions = {},
): boolean {
  const { id, timestamp, signature } = headers;
  if (id === undefined || timestamp === undefined || signature === undefined) return false;
  if (!/^\d+$/.test(timestamp)) return false;
  const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - Number(timestamp)) > (opts.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(
    signStandardWebhook(secret, id, Number(timestamp), body).slice(3),
    'base64',
  );
  return signature.split(' ').some((candidate) => {
    const [version, mac] = candidate.split(',', 2);
    if (version !== 'v1' || mac === undefined) return false;
    const given = Buffer.from(mac, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
