// The WMS connector (kind `wms`): `POST /fulfilment-requests` asks a warehouse to pick and ship
// an order (deduplicated by order reference: a repeat answers the existing request with 200).
// Performs `wms.fulfilment-request`, answering `{ fulfilmentRequestId, status, warehouse,
// duplicate }`. The WMS knows lines by SKU: quantities of one SKU are summed. A 400 (a field
// missing or invalid, named by the WMS) is permanent; 401 is permanent; 429, 5xx, transport errors
// and unreadable answers are transient. Shipment confirmations come back as signed webhooks
// (./webhooks.ts).
import type { OrderV1 } from '../../canonical/index.js';
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import { actionCall, actionErrorOf, isRecord, joinUrl } from '../cloud-erp/json-http.js';

export interface WmsOptions {
  system: string;
  baseUrl: string;
  /** Sent as `x-api-key` when the WMS needs one. */
  apiKey?: string;
}

/** The lines a warehouse ships for an order: those fulfilled by shipping, summed by SKU. */
export function linesToShip(order: OrderV1): Array<{ sku: string; quantity: number }> {
  const bySku = new Map<string, number>();
  const shipping = order.lines.filter(
    (l) => (l.fulfilment?.method ?? order.fulfilment.method) === 'ship',
  );
  for (const line of shipping.length > 0 ? shipping : order.lines) {
    bySku.set(line.sku, (bySku.get(line.sku) ?? 0) + line.quantity);
  }
  return [...bySku].map(([sku, quantity]) => ({ sku, quantity }));
}

export function wmsFulfilmentPerformer(opts: WmsOptions): ActionPerformer {
  return async (raw, ctx) => {
    if (raw.action !== 'wms.fulfilment-request') {
      throw new ActionError(`expected wms.fulfilment-request, got ${raw.action}`, 'permanent');
    }
    const { order, location } = raw;
    const address = order.shippingAddress;
    if (address === undefined) {
      throw new ActionError(
        `${opts.system}: order ${order.id} has no shippingAddress to ship to`,
        'permanent',
        { code: 'shipTo' },
      );
    }
    const [line1, ...rest] = address.lines;
    const answer = await actionCall(opts.system, {
      method: 'POST',
      url: joinUrl(opts.baseUrl, '/fulfilment-requests'),
      headers: {
        'idempotency-key': ctx.idempotencyKey,
        ...(opts.apiKey ? { 'x-api-key': opts.apiKey } : {}),
      },
      body: {
        orderReference: order.id,
        warehouse: location,
        shipTo: {
          name: address.name ?? address.company ?? order.id,
          line1,
          ...(rest.length > 0 ? { line2: rest.join(', ') } : {}),
          city: address.city,
          postalCode: address.postalCode ?? '',
          ...(address.region !== undefined ? { region: address.region } : {}),
          country: address.country,
        },
        lines: linesToShip(order),
      },
      signal: ctx.signal,
    });
    if (answer.status < 200 || answer.status >= 300 || !isRecord(answer.json)) {
      const errors =
        isRecord(answer.json) && Array.isArray(answer.json.errors)
          ? answer.json.errors
              .filter(isRecord)
              .map((e) => `${String(e.field ?? '')}: ${String(e.message ?? '')}`)
              .join('; ')
          : '';
      throw actionErrorOf(opts.system, answer, errors || `HTTP ${answer.status}`);
    }
    const request = answer.json;
    return {
      fulfilmentRequestId: request.id,
      status: request.status,
      warehouse: request.warehouse,
      duplicate: answer.status === 200,
    };
  };
}
