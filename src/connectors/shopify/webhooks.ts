// Shopify webhook ingress: which topics Middlemart takes, and how a signed webhook body becomes
// one canonical event. `orders/updated` of a cancelled order (`cancelled_at` set) becomes
// `order.cancelled`; one whose line items' `current_quantity` went down becomes an
// `order.updated` with the smaller lines (the order process releases and amends the rest). The HTTP route (src/api/v1/shopify-webhooks.ts) verifies the signature
// with `verifyShopifySignature`, then asks `interpretShopifyWebhook` what the body is.
import type { EventName } from '../../canonical/index.js';
import { parseShopifyJson } from './json.js';
import {
  mapShopifyCancellation,
  mapShopifyCustomer,
  mapShopifyOrder,
  mapShopifyRefund,
  type Mapped,
  type MappingIssue,
  type ShopContext,
} from './mapping.js';

/** Topic → the canonical event it becomes. */
export const SHOPIFY_TOPICS = {
  'orders/create': 'order.created',
  'orders/updated': 'order.updated',
  'orders/cancelled': 'order.cancelled',
  'refunds/create': 'return.requested',
  'customers/create': 'customer.created',
  'customers/update': 'customer.updated',
} as const satisfies Record<string, EventName>;

export type ShopifyTopic = keyof typeof SHOPIFY_TOPICS;

export function isTakenTopic(topic: string): topic is ShopifyTopic {
  return Object.hasOwn(SHOPIFY_TOPICS, topic);
}

/** What a verified webhook body is. */
export type WebhookInterpretation =
  /** One canonical event to accept. */
  | {
      outcome: 'event';
      event: EventName;
      data: unknown;
      /** When the occurrence happened at the shop (RFC 3339 UTC): the CloudEvent's `time`. */
      occurredAt: string;
    }
  /** A topic Middlemart does not take: acknowledged so the shop stops retrying, stored nowhere. */
  | { outcome: 'ignored'; reason: string }
  /** The body is not JSON: nothing can be read from it. */
  | { outcome: 'malformed'; reason: string }
  /** A taken topic whose body cannot be mapped: every reason with its Shopify field path. */
  | { outcome: 'rejected'; issues: MappingIssue[] };

/** When the occurrence happened at the shop: the CloudEvent's `time`. */
function occurredAtOf(event: EventName, data: unknown, body: unknown): string {
  const d = data as Record<string, string | undefined>;
  const updatedAt = (body as Record<string, unknown>).updated_at;
  const updated =
    typeof updatedAt === 'string' && !Number.isNaN(Date.parse(updatedAt))
      ? new Date(updatedAt).toISOString()
      : undefined;
  switch (event) {
    case 'order.created':
      return d.placedAt as string;
    case 'order.updated':
      return updated ?? (d.placedAt as string);
    case 'order.cancelled':
      return d.cancelledAt as string;
    case 'return.requested':
      return d.requestedAt as string;
    case 'customer.created':
      return d.createdAt ?? updated ?? new Date().toISOString();
    default:
      return updated ?? d.createdAt ?? new Date().toISOString();
  }
}

/**
 * Reads a verified webhook body of `topic` (the raw bytes, so 64-bit ids stay exact) and maps it
 * to the canonical event of its topic.
 */
export function interpretShopifyWebhook(
  topic: string,
  rawBody: Buffer | string,
  ctx: ShopContext,
): WebhookInterpretation {
  if (!isTakenTopic(topic)) {
    return {
      outcome: 'ignored',
      reason: `topic ${topic} is not taken from Shopify (taken: ${Object.keys(SHOPIFY_TOPICS).join(', ')})`,
    };
  }
  let body: unknown;
  try {
    body = parseShopifyJson(typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8'));
  } catch (err) {
    return { outcome: 'malformed', reason: `the body is not JSON: ${(err as Error).message}` };
  }
  const event = SHOPIFY_TOPICS[topic];
  let mapped: Mapped<unknown>;
  switch (event) {
    case 'order.created':
      mapped = mapShopifyOrder(body, ctx);
      break;
    case 'order.updated': {
      mapped = mapShopifyOrder(body, ctx);
      const cancelledAt = (body as Record<string, unknown> | null)?.cancelled_at;
      if (mapped.ok && cancelledAt !== null && cancelledAt !== undefined) {
        // An update of a cancelled order is its cancellation (the shop may send orders/updated
        // rather than, or before, orders/cancelled; both map to the same event).
        const cancellation = mapShopifyCancellation(body, ctx);
        if (!cancellation.ok) return { outcome: 'rejected', issues: cancellation.issues };
        return {
          outcome: 'event',
          event: 'order.cancelled',
          data: cancellation.value,
          occurredAt: occurredAtOf('order.cancelled', cancellation.value, body),
        };
      }
      break;
    }
    case 'order.cancelled':
      mapped = mapShopifyCancellation(body, ctx);
      break;
    case 'return.requested':
      mapped = mapShopifyRefund(body, ctx);
      break;
    case 'customer.created':
    case 'customer.updated':
      mapped = mapShopifyCustomer(body, ctx);
      break;
  }
  if (!mapped.ok) return { outcome: 'rejected', issues: mapped.issues };
  return {
    outcome: 'event',
    event,
    data: mapped.value,
    occurredAt: occurredAtOf(event, mapped.value, body),
  };
}
