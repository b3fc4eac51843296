// Transports turn traffic items into HTTP requests to Middlemart. The events transport posts
// canonical CloudEvents to /v1/events; the native transport speaks each channel's own protocol
// (signed Shopify webhooks, POS batches, the order API, price feeds) and falls back to events
// for occurrences that have no native form.
import { buildShopifyWebhook, toShopifyJson } from '../commerce/wire.js';
import type { CloudEvent } from '../../canonical/index.js';
import type { PosBatch } from '../pos/transactions.js';
import type { TrafficItem } from './traffic.js';

export interface PlannedRequest {
  method: 'POST';
  /** Path below Middlemart's base URL, e.g. /v1/events. */
  path: string;
  headers: Record<string, string>;
  body: string;
  /** What the request carries, for summaries: event:order.created, webhook:orders/create … */
  label: string;
}

export interface Transport {
  readonly name: 'events' | 'native';
  /** The requests that deliver one item, in the order they must be sent. */
  plan(item: TrafficItem): PlannedRequest[];
}

const EVENT_TYPE = /^com\.middlemart\.(.+)\.v\d+$/;

/** A CloudEvent as `POST /v1/events`, keyed by its idempotency key. */
export function eventRequest(event: CloudEvent): PlannedRequest {
  const name = EVENT_TYPE.exec(event.type)?.[1] ?? event.type;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'idempotency-key': typeof event.idempotencykey === 'string' ? event.idempotencykey : event.id,
  };
  if (typeof event.traceparent === 'string') headers.traceparent = event.traceparent;
  return {
    method: 'POST',
    path: '/v1/events',
    headers,
    body: JSON.stringify(event),
    label: `event:${name}`,
  };
}

/** A store's batch as `POST /v1/stores/{storeId}/batches`, keyed by its batch id. */
export function posBatchRequest(
  batch: PosBatch,
  extraHeaders: Record<string, string> = {},
): PlannedRequest {
  return {
    method: 'POST',
    path: `/v1/stores/${encodeURIComponent(batch.storeId)}/batches`,
    headers: {
      'content-type': 'application/json',
      'idempotency-key': `batch:${batch.batchId}`,
      ...extraHeaders,
    },
    body: JSON.stringify(batch),
    label: 'pos:batch',
  };
}

/** Posts every canonical event of an item to /v1/events. */
export function eventsTransport(): Transport {
  return {
    name: 'events',
    plan: (item) => item.events.map(eventRequest),
  };
}

export interface NativeTransportOptions {
  /** Secret the commerce platform signs webhooks with (SANDBOX_COMMERCE_WEBHOOK_SECRET). */
  webhookSecret: string;
  shopDomain?: string;
  apiVersion?: string;
}

/** Speaks each channel's own protocol to Middlemart's channel-native ingress routes. */
export function nativeTransport(opts: NativeTransportOptions): Transport {
  const shopDomain = opts.shopDomain ?? 'middlemart-sandbox.myshopify.com';
  const apiVersion = opts.apiVersion ?? '2024-04';
  return {
    name: 'native',
    plan(item) {
      const native = item.native;
      if (native === undefined) return item.events.map(eventRequest);
      const trace = item.events[0]?.traceparent;
      const traceHeader: Record<string, string> =
        typeof trace === 'string' ? { traceparent: trace } : {};
      switch (native.kind) {
        case 'shopify-webhook': {
          const req = buildShopifyWebhook({
            topic: native.topic,
            payload: native.payload,
            secret: opts.webhookSecret,
            shopDomain,
            apiVersion,
            webhookId: native.webhookId,
            triggeredAt: native.triggeredAt,
          });
          return [
            {
              method: 'POST',
              path: `/v1/webhooks/shopify/${encodeURIComponent(native.systemId)}`,
              headers: { ...req.headers, ...traceHeader },
              body: req.body,
              label: `webhook:${native.topic}`,
            },
          ];
        }
        case 'order':
          return [
            {
              method: 'POST',
              path: '/v1/orders',
              headers: {
                'content-type': 'application/json',
                'idempotency-key': `order:${native.order.id}`,
                ...traceHeader,
              },
              body: JSON.stringify(native.order),
              label: 'api:orders',
            },
          ];
        case 'pos-upload':
          return native.batches.map((batch) => posBatchRequest(batch, traceHeader));
        case 'price-changes':
          return [
            {
              method: 'POST',
              path: '/v1/prices/changes',
              headers: {
                'content-type': 'application/json',
                'idempotency-key': `prices:${String(item.events[0]?.idempotencykey ?? item.seq)}:${native.changes.length}`,
                ...traceHeader,
              },
              body: toShopifyJson({ changes: native.changes }),
              label: 'api:prices',
            },
          ];
      }
    },
  };
}

export interface RequestOutcome {
  label: string;
  /** HTTP status, when a response arrived. */
  status?: number;
  /** `type` of an RFC 9457 problem+json answer. */
  problemType?: string;
  /** Transport error code (ECONNREFUSED, TimeoutError …) when no response arrived. */
  error?: string;
  accepted: boolean;
  latencyMs: number;
}

export interface SendOptions {
  apiKey?: string;
  timeoutMs?: number;
}

/** Sends one planned request to Middlemart at `baseUrl` and classifies the answer. */
export async function sendPlanned(
  baseUrl: string,
  req: PlannedRequest,
  opts: SendOptions = {},
): Promise<RequestOutcome> {
  const url = `${baseUrl.replace(/\/+$/, '')}${req.path}`;
  const headers: Record<string, string> = { ...req.headers };
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  const started = performance.now();
  try {
    const res = await fetch(url, {
      method: req.method,
      headers,
      body: req.body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    const latencyMs = performance.now() - started;
    const outcome: RequestOutcome = {
      label: req.label,
      status: res.status,
      accepted: res.status >= 200 && res.status < 300,
      latencyMs,
    };
    if (!outcome.accepted) {
      const type = problemTypeOf(res.headers.get('content-type'), text);
      if (type !== undefined) outcome.problemType = type;
    }
    return outcome;
  } catch (err) {
    return {
      label: req.label,
      error: errorCode(err),
      accepted: false,
      latencyMs: performance.now() - started,
    };
  }
}

function problemTypeOf(contentType: string | null, text: string): string | undefined {
  if (!contentType?.includes('json')) return undefined;
  try {
    const body = JSON.parse(text) as { type?: unknown };
    return typeof body.type === 'string' ? body.type : undefined;
  } catch {
    return undefined;
  }
}

function errorCode(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return err.name;
    const cause = (err as Error & { cause?: { code?: unknown; message?: unknown } }).cause;
    if (typeof cause?.code === 'string') return cause.code;
    if (typeof cause?.message === 'string' && cause.message !== '') return cause.message;
    return err.name;
  }
  return 'error';
}
