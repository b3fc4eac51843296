// Availability connectors: how each kind of sales channel is told what it may promise (the
// `channel.availability` system action), what it shows now (for reconciliation), and the cloud
// ERP's stock snapshot. The composition root picks one per configured channel.
import type { ActionPerformer, SystemAction } from '../../ports/system-actions.js';
import { ActionError } from '../../ports/system-actions.js';
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
      const apiKey = system.credentials.apiKey;
      return createFeedAvailability({
        system: system.id,
        baseUrl: system.baseUrl,
        locationMap,
        ...(typeof path === 'string' ? { path } : {}),
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

type AvailabilityAction = Extract<SystemAction, { action: 'channel.availability' }>;

/**
 * The performer of `channel.availability` for a channel. `prepare` may replace the action just
 * before the call (the newest value of the key) or answer undefined when the action is no longer
 * the key's live send: then nothing is sent and the result says `superseded`.
 */
export function availabilityPerformer(
  channel: AvailabilityChannel,
  prepare: (
    action: AvailabilityAction,
    ctx: { idempotencyKey: string },
  ) => Promise<AvailabilityAction | undefined> = async (a) => a,
): ActionPerformer {
  return async (action, ctx) => {
    if (action.action !== 'channel.availability') {
      throw new ActionError(`${channel.system} cannot perform ${action.action}`, 'permanent');
    }
    const current = await prepare(action, ctx);
    if (!current) return { version: action.version, available: action.available, superseded: true };
    await channel.setAvailability(
      {
        channel: channel.system,
        sku: current.sku,
        location: current.location,
        available: current.available,
        version: current.version,
        sourceTime: current.sourceTime,
      },
      { idempotencyKey: ctx.idempotencyKey, signal: ctx.signal },
    );
    return { version: current.version, available: current.available };
  };
}
