// Shipment confirmations from the WMS: Standard Webhooks (https://www.standardwebhooks.com)
// signed with HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>", keyed with the base64
// part of a `whsec_…` secret, sent as `webhook-signature: v1,<base64>` (several may be listed).
// `receiveWmsWebhook` verifies one (constant-time, within a clock tolerance) and maps a
// `shipment.confirmed` payload to the canonical Shipment: the WMS's order reference is
// Middlemart's order id; it ships by SKU, so a shipped line's `orderLineId` is its SKU.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ShipmentV1 } from '../../canonical/index.js';

export interface WebhookHeaders {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
}

/** Key bytes of a Standard Webhooks secret (`whsec_<base64>`; the prefix is optional). */
export function webhookKey(secret: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  return Buffer.from(encoded, 'base64');
}

/** The `v1,<base64>` signature of one message. */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', webhookKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** Why a signature does not verify, or undefined when it does. */
export function webhookSignatureProblem(
  secret: string,
  headers: WebhookHeaders,
  body: Buffer | string,
  nowSeconds: number,
  toleranceSeconds = 300,
): string | undefined {
  const { id, timestamp, signature } = headers;
  if (!id) return 'the webhook-id header is missing';
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) {
    return 'the webhook-timestamp header is missing or not epoch seconds';
  }
  if (!signature) return 'the webhook-signature header is missing';
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) {
    return `the webhook-timestamp is more than ${toleranceSeconds} s from now`;
  }
  const key = webhookKey(secret);
  if (key.length === 0) return 'no signing secret is configured';
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
  const ok = signature.split(' ').some((candidate) => {
    const [version, mac] = candidate.split(',', 2);
    if (version !== 'v1' || mac === undefined) return false;
    const given = Buffer.from(mac, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  return ok ? undefined : 'the webhook-signature does not match';
}

export type WmsWebhookOutcome =
  | {
      ok: true;
      /** The canonical event name and its data. */
      event: 'shipment.confirmed';
      shipment: ShipmentV1;
      /** Stable across redeliveries of the same shipment. */
      idempotencyKey: string;
    }
  | {
      ok: false;
      status: 400 | 401 | 422;
      detail: string;
      errors?: Array<{ path: string; message: string }>;
    };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Maps the WMS's shipment payload to a canonical Shipment (validated). */
export function shipmentOf(
  data: Record<string, unknown>,
):
  | { ok: true; shipment: ShipmentV1 }
  | { ok: false; errors: Array<{ path: string; message: string }> } {
  const lines = Array.isArray(data.lines) ? data.lines : [];
  const candidate = {
    id: data.shipmentId,
    orderId: data.orderReference,
    fromLocation: data.warehouse,
    carrier: data.carrier,
    ...(data.service !== undefined ? { service: data.service } : {}),
    ...(data.trackingNumber !== undefined ? { trackingNumber: data.trackingNumber } : {}),
    ...(data.trackingUrl !== undefined ? { trackingUrl: data.trackingUrl } : {}),
    lines: lines.map((l: unknown) =>
      isRecord(l) ? { orderLineId: l.sku, sku: l.sku, quantity: l.quantity } : l,
    ),
    shippedAt:
      typeof data.shippedAt === 'string' && !Number.isNaN(Date.parse(data.shippedAt))
        ? new Date(data.shippedAt).toISOString()
        : data.shippedAt,
  };
  const parsed = ShipmentV1.safeParse(candidate);
  if (parsed.success) return { ok: true, shipment: parsed.data };
  const names: Record<string, string> = {
    id: 'data.shipmentId',
    orderId: 'data.orderReference',
    fromLocation: 'data.warehouse',
    carrier: 'data.carrier',
  };
  return {
    ok: false,
    errors: parsed.error.issues.map((i) => {
      const [head, ...tail] = i.path.map(String);
      const path =
        head === undefined
          ? 'data'
          : (names[head] ??
            `data.${head}${tail.map((t) => (/^\d+$/.test(t) ? `[${t}]` : `.${t}`)).join('')}`);
      return { path: path.replace('.orderLineId', '.sku'), message: i.message };
    }),
  };
}

/** Verifies and maps one WMS webhook delivery. */
export function receiveWmsWebhook(
  secret: string,
  headers: WebhookHeaders,
  rawBody: Buffer | string,
  body: unknown,
  nowSeconds: number,
): WmsWebhookOutcome {
  const problem = webhookSignatureProblem(secret, headers, rawBody, nowSeconds);
  if (problem !== undefined) return { ok: false, status: 401, detail: problem };
  if (!isRecord(body)) {
    return { ok: false, status: 400, detail: 'the body is not a JSON object' };
  }
  if (body.type !== 'shipment.confirmed') {
    return {
      ok: false,
      status: 422,
      detail: `webhook type ${JSON.stringify(body.type)} is not handled (only shipment.confirmed)`,
      errors: [{ path: 'type', message: 'must be shipment.confirmed' }],
    };
  }
  if (!isRecord(body.data)) {
    return {
      ok: false,
      status: 422,
      detail: 'the shipment confirmation has no data',
      errors: [{ path: 'data', message: 'required: an object' }],
    };
  }
  const mapped = shipmentOf(body.data);
  if (!mapped.ok) {
    return {
      ok: false,
      status: 422,
      detail: `the shipment confirmation is invalid: ${mapped.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
      errors: mapped.errors,
    };
  }
  return {
    ok: true,
    event: 'shipment.confirmed',
    shipment: mapped.shipment,
    idempotencyKey: `shipment:${mapped.shipment.id}`,
  };
}
