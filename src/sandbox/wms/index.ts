// WMS simulator: accepts fulfilment requests (deduplicated by order reference), "picks and ships"
// them after a configurable delay and posts a shipment confirmation webhook, signed per the
// Standard Webhooks spec, to a callback URL, retrying with backoff while the receiver fails.
import { randomUUID } from 'node:crypto';
import { createSimulator, secretsEqual } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';
import { signStandardWebhook } from './webhooks.js';

export { signStandardWebhook, verifyStandardWebhook, webhookSecretKey } from './webhooks.js';

/** The sandbox's default signing secret (Standard Webhooks form); override it in real setups. */
export const DEFAULT_WMS_WEBHOOK_SECRET = `whsec_${Buffer.from('middlemart-sandbox-wms-webhooks').toString('base64')}`;

export const WMS_WAREHOUSES = ['DC-EU-1', 'DC-US-1'] as const;

export interface WmsOptions extends SimulatorOptions {
  /** Where shipment confirmations are posted; without it they are kept as undeliverable. */
  webhookUrl?: string;
  /** Standard Webhooks secret (`whsec_<base64>`); default DEFAULT_WMS_WEBHOOK_SECRET. */
  webhookSecret?: string;
  /** Delay from acceptance to shipment (default 3000 ms; 0 ships on the next tick). */
  confirmationDelayMs?: number;
  /** Delivery attempts per confirmation (default 5). */
  webhookMaxAttempts?: number;
  /** First retry delay, doubled per attempt (default 1000 ms). */
  webhookRetryDelayMs?: number;
  /** Timeout of one delivery attempt (default 10000 ms). */
  webhookTimeoutMs?: number;
  /** When set, requests must carry it in `x-api-key`. */
  apiKey?: string;
}

export interface FulfilmentLine {
  sku: string;
  quantity: number;
}

export interface ShipTo {
  name: string;
  line1: string;
  line2?: string;
  city: string;
  postalCode: string;
  region?: string;
  country: string;
}

export interface FulfilmentRequest {
  id: string;
  orderReference: string;
  warehouse: string;
  shipTo: ShipTo;
  lines: FulfilmentLine[];
  status: 'accepted' | 'shipped';
  shipmentId?: string;
  createdAt: string;
}

export interface ShipmentConfirmation {
  webhookId: string;
  shipmentId: string;
  orderReference: string;
  status: 'pending' | 'sending' | 'sent' | 'failed' | 'undeliverable';
  attempts: number;
  lastError?: string;
  payload: ShipmentWebhookPayload;
}

export interface ShipmentWebhookPayload {
  type: 'shipment.confirmed';
  timestamp: string;
  data: {
    shipmentId: string;
    fulfilmentRequestId: string;
    orderReference: string;
    warehouse: string;
    carrier: string;
    service: string;
    trackingNumber: string;
    trackingUrl: string;
    shippedAt: string;
    lines: FulfilmentLine[];
  };
}

export interface Wms extends Simulator {
  /** Confirmations by state (for assertions without HTTP). */
  confirmations(): ShipmentConfirmation[];
}

const CARRIERS = [
  { carrier: 'DHL', service: 'Paket', url: 'https://www.dhl.com/track?tracking-id=' },
  { carrier: 'UPS', service: 'Standard', url: 'https://www.ups.com/track?tracknum=' },
  { carrier: 'DPD', service: 'Classic', url: 'https://tracking.dpd.de/parcel/' },
  { carrier: 'FedEx', service: 'Ground', url: 'https://www.fedex.com/fedextrack/?trknbr=' },
];

interface FieldError {
  field: string;
  message: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function requiredString(
  obj: Record<string, unknown>,
  key: string,
  path: string,
  errors: FieldError[],
  max = 200,
): string {
  const v = obj[key];
  if (typeof v !== 'string' || v.trim() === '' || v.length > max) {
    errors.push({ field: path, message: `required: 1 to ${max} characters` });
    return '';
  }
  return v;
}

/** Creates the WMS simulator (not yet listening). */
export function createWms(opts: WmsOptions = {}): Wms {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const sim = createSimulator('wms', opts);
  const { app } = sim;
  const secret = opts.webhookSecret ?? DEFAULT_WMS_WEBHOOK_SECRET;
  const delayMs = opts.confirmationDelayMs ?? 3000;
  const maxAttempts = opts.webhookMaxAttempts ?? 5;
  const retryDelayMs = opts.webhookRetryDelayMs ?? 1000;
  const timeoutMs = opts.webhookTimeoutMs ?? 10_000;
  const requests = new Map<string, FulfilmentRequest>();
  const byOrderReference = new Map<string, FulfilmentRequest>();
  const confirmations = new Map<string, ShipmentConfirmation>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  let nextRequest = 1;
  let nextShipment = 1;
  const iso = (): string => new Date(now()).toISOString();

  const later = (ms: number, fn: () => void): void => {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, ms);
    timers.add(timer);
  };

  if (opts.apiKey !== undefined) {
    const apiKey = opts.apiKey;
    app.addHook('onRequest', async (request, reply) => {
      if (request.url.startsWith('/_sandbox')) return;
      const key = request.headers['x-api-key'];
      if (typeof key !== 'string' || !secretsEqual(key, apiKey)) {
        sim.count('unauthorizedRequests');
        return reply
          .code(401)
          .send({ errors: [{ field: 'x-api-key', message: 'invalid API key' }] });
      }
    });
  }

  const deliver = async (confirmation: ShipmentConfirmation): Promise<void> => {
    const url = opts.webhookUrl;
    if (url === undefined) {
      confirmation.status = 'undeliverable';
      return;
    }
    confirmation.status = 'sending';
    confirmation.attempts += 1;
    const body = JSON.stringify(confirmation.payload);
    const timestamp = Math.floor(now() / 1000);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': confirmation.webhookId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signStandardWebhook(secret, confirmation.webhookId, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) {
        confirmation.status = 'sent';
        delete confirmation.lastError;
        sim.count('webhooksDelivered');
        sim.record('webhookDeliveries', {
          webhookId: confirmation.webhookId,
          attempt: confirmation.attempts,
          status: res.status,
        });
        return;
      }
      confirmation.lastError = `HTTP ${res.status}`;
    } catch (error) {
      confirmation.lastError = error instanceof Error ? error.message : String(error);
    }
    sim.count('webhookAttemptsFailed');
    sim.record('webhookDeliveries', {
      webhookId: confirmation.webhookId,
      attempt: confirmation.attempts,
      error: confirmation.lastError,
    });
    if (confirmation.attempts >= maxAttempts) {
      confirmation.status = 'failed';
      sim.count('webhooksFailed');
      return;
    }
    confirmation.status = 'pending';
    later(retryDelayMs * 2 ** (confirmation.attempts - 1), () => void deliver(confirmation));
  };

  const ship = (request: FulfilmentRequest): void => {
    const choice = CARRIERS[Math.floor(random() * CARRIERS.length)] ?? CARRIERS[0];
    if (choice === undefined) return;
    const n = nextShipment++;
    const shipmentId = `SH-${String(n).padStart(7, '0')}`;
    const trackingNumber = `${choice.carrier.toUpperCase()}${String(Math.floor(random() * 1e10)).padStart(10, '0')}`;
    request.status = 'shipped';
    request.shipmentId = shipmentId;
    const shippedAt = iso();
    const confirmation: ShipmentConfirmation = {
      webhookId: `msg_${randomUUID().replace(/-/g, '')}`,
      shipmentId,
      orderReference: request.orderReference,
      status: 'pending',
      attempts: 0,
      payload: {
        type: 'shipment.confirmed',
        timestamp: shippedAt,
        data: {
          shipmentId,
          fulfilmentRequestId: request.id,
          orderReference: request.orderReference,
          warehouse: request.warehouse,
          carrier: choice.carrier,
          service: choice.service,
          trackingNumber,
          trackingUrl: `${choice.url}${trackingNumber}`,
          shippedAt,
          lines: request.lines.map((l) => ({ ...l })),
        },
      },
    };
    confirmations.set(confirmation.webhookId, confirmation);
    sim.count('shipments');
    void deliver(confirmation);
  };

  app.post('/fulfilment-requests', async (request, reply) => {
    const body: unknown = request.body;
    if (!isRecord(body)) {
      return reply
        .code(400)
        .send({ errors: [{ field: 'body', message: 'must be a JSON object' }] });
    }
    const errors: FieldError[] = [];
    const orderReference = requiredString(body, 'orderReference', 'orderReference', errors, 64);
    const existing = byOrderReference.get(orderReference);
    if (existing !== undefined) {
      sim.count('fulfilmentRequestDuplicates');
      sim.record('fulfilmentRequests', { duplicate: true, id: existing.id, body });
      return reply.code(200).send(existing);
    }
    const warehouse = body.warehouse ?? 'DC-EU-1';
    if (
      typeof warehouse !== 'string' ||
      !(WMS_WAREHOUSES as readonly string[]).includes(warehouse)
    ) {
      errors.push({ field: 'warehouse', message: `one of ${WMS_WAREHOUSES.join(', ')}` });
    }
    let shipTo: ShipTo | undefined;
    if (!isRecord(body.shipTo)) {
      errors.push({ field: 'shipTo', message: 'required: an address object' });
    } else {
      const s = body.shipTo;
      const country = requiredString(s, 'country', 'shipTo.country', errors, 2);
      if (country !== '' && !/^[A-Z]{2}$/.test(country)) {
        errors.push({ field: 'shipTo.country', message: 'ISO 3166-1 alpha-2' });
      }
      shipTo = {
        name: requiredString(s, 'name', 'shipTo.name', errors),
        line1: requiredString(s, 'line1', 'shipTo.line1', errors),
        ...(typeof s.line2 === 'string' ? { line2: s.line2 } : {}),
        city: requiredString(s, 'city', 'shipTo.city', errors, 100),
        postalCode: requiredString(s, 'postalCode', 'shipTo.postalCode', errors, 16),
        ...(typeof s.region === 'string' ? { region: s.region } : {}),
        country,
      };
    }
    const lines: FulfilmentLine[] = [];
    if (!Array.isArray(body.lines) || body.lines.length === 0) {
      errors.push({ field: 'lines', message: 'required: at least one line' });
    } else {
      body.lines.forEach((line: unknown, i) => {
        if (!isRecord(line)) {
          errors.push({ field: `lines[${i}]`, message: 'must be an object' });
          return;
        }
        const sku = requiredString(line, 'sku', `lines[${i}].sku`, errors, 64);
        const quantity = line.quantity;
        if (typeof quantity !== 'number' || !Number.isInteger(quantity) || quantity <= 0) {
          errors.push({ field: `lines[${i}].quantity`, message: 'a whole number greater than 0' });
        } else lines.push({ sku, quantity });
      });
    }
    if (errors.length > 0 || shipTo === undefined) {
      sim.count('fulfilmentRequestsRejected');
      return reply.code(400).send({ errors });
    }
    const fulfilment: FulfilmentRequest = {
      id: `FR-${String(nextRequest++).padStart(7, '0')}`,
      orderReference,
      warehouse: warehouse as string,
      shipTo,
      lines,
      status: 'accepted',
      createdAt: iso(),
    };
    requests.set(fulfilment.id, fulfilment);
    byOrderReference.set(orderReference, fulfilment);
    sim.record('fulfilmentRequests', { duplicate: false, id: fulfilment.id, body });
    later(delayMs, () => ship(fulfilment));
    return reply
      .code(201)
      .header('location', `/fulfilment-requests/${fulfilment.id}`)
      .send(fulfilment);
  });

  app.get<{ Params: { id: string } }>('/fulfilment-requests/:id', async (request, reply) => {
    const found = requests.get(request.params.id);
    return found ?? reply.code(404).send({ errors: [{ field: 'id', message: 'not found' }] });
  });

  app.addHook('onClose', async () => {
    closed = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
  });

  const byStatus = (status: ShipmentConfirmation['status']) =>
    [...confirmations.values()].filter((c) => c.status === status);
  sim.setStateProvider(() => ({
    fulfilmentRequests: requests.size,
    awaitingShipment: [...requests.values()].filter((r) => r.status === 'accepted').length,
    confirmations: {
      pending: [...byStatus('pending'), ...byStatus('sending')],
      sent: byStatus('sent').length,
      failed: byStatus('failed'),
      undeliverable: byStatus('undeliverable').length,
    },
  }));

  return Object.assign(sim, { confirmations: () => [...confirmations.values()] });
}
