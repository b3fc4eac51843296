// Traffic items: one business occurrence (an order, a return, a sign-up, a stock movement, a
// batch of price changes, a store's upload) in both its canonical form (CloudEvents for
// POST /v1/events) and, where the channel has one, its native form (a Shopify webhook, a POS
// batch, a mobile app's order, a price feed).
import type { CloudEvent, OrderV1, PriceV1 } from '../../canonical/index.js';
import { toShopifyJson } from '../commerce/wire.js';
import type { PosBatch } from '../pos/transactions.js';

export type TrafficKind = 'order' | 'return' | 'customer' | 'stock' | 'price' | 'store-batch';

export type NativeRequest =
  /** A Shopify webhook the commerce platform sends to `/v1/webhooks/shopify/{systemId}`. */
  | {
      kind: 'shopify-webhook';
      systemId: string;
      topic: string;
      /** The webhook body (ids as bigints). */
      payload: unknown;
      webhookId: string;
      triggeredAt: string;
    }
  /** An order a mobile app places through `POST /v1/orders`. */
  | { kind: 'order'; order: OrderV1 }
  /** A store's upload: its batches to `POST /v1/stores/{storeId}/batches`, one after another. */
  | { kind: 'pos-upload'; batches: PosBatch[] }
  /** A price feed to `POST /v1/prices/changes`. */
  | { kind: 'price-changes'; changes: PriceV1[] };

export interface TrafficItem {
  /** Position in the scenario, from 0. */
  seq: number;
  kind: TrafficKind;
  /** Channel or system the occurrence comes from: web, mobile, store-003, wms, erp … */
  origin: string;
  /** Offset of the occurrence from the scenario's start, in ms of scenario time. */
  atMs: number;
  /** Canonical form: the events, in order. */
  events: CloudEvent[];
  native?: NativeRequest;
}

/** The exact bytes of a list of items (used to prove a seed reproduces the same traffic). */
export function serialiseTraffic(items: Iterable<TrafficItem>): string {
  const lines: string[] = [];
  for (const item of items) lines.push(toShopifyJson(item));
  return lines.join('\n');
}
