// Availability connectors: how each kind of sales channel is told what it may promise (the
// ChannelAvailabilityPort the inventory domain's channel pusher calls), what it shows now (for
// reconciliation), and the cloud ERP's stock snapshot. The composition root picks one per configured channel.
import { createCloudErpStockReader, type ErpStockReader } from './erp-stock.js';
import { createFeedAvailability } from './feed.js';
import { createShopifyAvailability, type AvailabilityChannel } from './shopify.js';

export * from './erp-stock.js';
export * from './feed.js';
export * from './shopify.js';
export { callJson, joinUrl, retryAfterSeconds } from './http.js';

/** What a connector needs to know of a configured system (structurally, the estate config's). */
export interface AvailabilitySystem {
  id: string;
  kind: string;
  baseUrl: string;
  credentials: Readonly<Record<string, string>>;
  settings: Readonly<Record<string, string | number | boolean>>;
}

/** Channel kinds that can be pushed availability. */
export const AVAILABILITY_CHANNEL_KINDS = ['shopify', 'marketplace', 'pos'] as const;

/** The availability connector of a channel system, or undefined for a kind that has none. */
export function availabilityChannelFor(
  system: AvailabilitySystem,
  locationMap: Readonly<Record<string, string>>,
): AvailabilityChannel | undefined {
  switch (system.kind) {
    case 'shopify': {
      const accessToken = system.credentials.accessToken;
      if (!accessToken) throw new Error(`${system.id}: credentials.accessToken is required`);
      const apiVersion = system.settings.apiVersion;
      return createShopifyAvailability({
        system: system.id,
        baseUrl: system.baseUrl,
        accessToken,
        locationMap,
        ...(typeof apiVersion === 'string' ? { apiVersion } : {}),
      });
    }
    case 'marketplace':
    case 'pos': {
      const path = system.settings.availabilityPath;
      const batch = system.settings.availabilityBatch;
      const apiKey = system.credentials.apiKey;
      if (
        batch !== undefined &&
        (typeof batch !== 'number' || !Number.isInteger(batch) || batch < 1 || batch > 1000)
      ) {
        throw new Error(
          `${system.id}: settings.availabilityBatch must be an integer from 1 to 1000`,
        );
      }
      return createFeedAvailability({
        system: system.id,
        baseUrl: system.baseUrl,
        locationMap,
        ...(typeof path === 'string' ? { path } : {}),
        ...(typeof batch === 'number' ? { batch } : {}),
        ...(apiKey ? { apiKey } : {}),
      });
    }
    default:
      return undefined;
  }
}

/** The ERP stock reader of an ERP system, for kinds this folder can read (rest-erp). */
export function erpStockReaderFor(system: AvailabilitySystem): ErpStockReader | undefined {
  if (system.kind !== 'rest-erp') return undefined;
  const clientId = system.credentials.clientId;
  const clientSecret = system.credentials.clientSecret;
  if (!clientId || !clientSecret) return undefined;
  return createCloudErpStockReader({
    system: system.id,
    baseUrl: system.baseUrl,
    clientId,
    clientSecret,
  });
}
