// Availability on a Shopify-compatible commerce platform (Admin REST API): Middlemart's SKU and
// location become the shop's inventory item and location, and the level is set with
// `POST inventory_levels/set.json`. The item and location ids are read once (every page of
// products.json, locations.json) and kept; a SKU the shop does not sell, or a location the channel config does
// not map, is not listed on the channel: acknowledged without a call.
//
// Shopify keeps no version per level, so the connector cannot refuse an older value itself; the
// push plan guarantees one send in flight per key and the newest value at send time.
import type { ChannelAvailabilityPort, ChannelAvailabilityUpdate } from '../../ports/channel.js';
import { ActionError } from '../../ports/system-actions.js';
import { callJson, joinUrl } from './http.js';

export interface ShopifyAvailabilityOptions {
  system: string;
  baseUrl: string;
  accessToken: string;
  /** Admin API version (default 2024-04). */
  apiVersion?: string;
  /** Middlemart location id → the shop's location id or name. */
  locationMap: Readonly<Record<string, string>>;
}

/** What a channel shows of a sku@location, in Middlemart's terms. */
export interface ShownAvailability {
  sku: string;
  location: string;
  available: number;
}

/** A channel's availability port plus what reconciliation reads from it. */
export interface AvailabilityChannel extends ChannelAvailabilityPort {
  readonly system: string;
  /** What the channel shows now for the given keys (all it lists when omitted). */
  shownAvailability(
    keys?: ReadonlyArray<{ sku: string; location: string }>,
    ctx?: { signal?: AbortSignal },
  ): Promise<ShownAvailability[]>;
}

interface ShopCatalogue {
  itemBySku: Map<string, string>;
  skuByItem: Map<string, string>;
  /** Middlemart location → shop location id. */
  locationById: Map<string, string>;
  mmLocationByShop: Map<string, string>;
}

function idString(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'string' && /^\d+$/.test(value)) return value;
  return undefined;
}

export function createShopifyAvailability(opts: ShopifyAvailabilityOptions): AvailabilityChannel {
  const base = joinUrl(opts.baseUrl, `admin/api/${opts.apiVersion ?? '2024-04'}`);
  const headers = { 'x-shopify-access-token': opts.accessToken };
  let catalogue: Promise<ShopCatalogue> | undefined;

  async function load(signal?: AbortSignal): Promise<ShopCatalogue> {
    // Pages of 250 in id order (`since_id`), bounded at 400 pages (100,000 products).
    const products: {
      products: Array<{
        id?: unknown;
        variants?: Array<{ sku?: unknown; inventory_item_id?: unknown }>;
      }>;
    } = { products: [] };
    let since = '0';
    for (let page = 0; page < 400; page++) {
      const answer = (await callJson(
        {
          method: 'GET',
          url: `${base}/products.json?limit=250&since_id=${since}`,
          headers,
          ...(signal ? { signal } : {}),
        },
        opts.system,
      )) as { products?: (typeof products)['products'] };
      const list = answer.products ?? [];
      products.products.push(...list);
      const last = idString(list.at(-1)?.id);
      if (list.length < 250 || !last) break;
      since = last;
    }
    const locations = (await callJson(
      { method: 'GET', url: `${base}/locations.json`, headers, ...(signal ? { signal } : {}) },
      opts.system,
    )) as { locations?: Array<{ id?: unknown; name?: unknown }> };
    const itemBySku = new Map<string, string>();
    const skuByItem = new Map<string, string>();
    for (const p of products.products ?? []) {
      for (const v of p.variants ?? []) {
        const item = idString(v.inventory_item_id);
        if (typeof v.sku === 'string' && v.sku !== '' && item) {
          itemBySku.set(v.sku, item);
          skuByItem.set(item, v.sku);
        }
      }
    }
    const locationById = new Map<string, string>();
    const mmLocationByShop = new Map<string, string>();
    for (const [mm, shopRef] of Object.entries(opts.locationMap)) {
      const found = (locations.locations ?? []).find(
        (l) => idString(l.id) === shopRef || l.name === shopRef,
      );
      const id = found ? idString(found.id) : undefined;
      if (!id) {
        throw new ActionError(
          `${opts.system}: location ${shopRef} (for ${mm}) is not a location of the shop`,
          'permanent',
        );
      }
      locationById.set(mm, id);
      mmLocationByShop.set(id, mm);
    }
    return { itemBySku, skuByItem, locationById, mmLocationByShop };
  }

  function shop(signal?: AbortSignal): Promise<ShopCatalogue> {
    catalogue ??= load(signal).catch((err: unknown) => {
      catalogue = undefined;
      throw err;
    });
    return catalogue;
  }

  return {
    system: opts.system,
    async setAvailability(update: ChannelAvailabilityUpdate, ctx) {
      const c = await shop(ctx.signal);
      const item = c.itemBySku.get(update.sku);
      const location = c.locationById.get(update.location);
      if (!item || !location) return {};
      await callJson(
        {
          method: 'POST',
          url: `${base}/inventory_levels/set.json`,
          headers,
          body: {
            location_id: Number(location),
            inventory_item_id: Number(item),
            available: update.available,
          },
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        },
        opts.system,
      );
      return { acknowledgedAt: new Date().toISOString() };
    },
    async shownAvailability(keys, ctx = {}) {
      const c = await shop(ctx.signal);
      const items = keys
        ? [...new Set(keys.map((k) => c.itemBySku.get(k.sku)).filter((x) => x !== undefined))]
        : [...c.skuByItem.keys()];
      const out: ShownAvailability[] = [];
      const locationIds = [...c.locationById.values()].join(',');
      if (locationIds === '') return out;
      for (let i = 0; i < items.length; i += 50) {
        const chunk = items.slice(i, i + 50);
        const answer = (await callJson(
          {
            method: 'GET',
            url: `${base}/inventory_levels.json?inventory_item_ids=${chunk.join(',')}&location_ids=${locationIds}`,
            headers,
            ...(ctx.signal ? { signal: ctx.signal } : {}),
          },
          opts.system,
        )) as {
          inventory_levels?: Array<{
            inventory_item_id?: unknown;
            location_id?: unknown;
            available?: unknown;
          }>;
        };
        for (const l of answer.inventory_levels ?? []) {
          const sku = c.skuByItem.get(idString(l.inventory_item_id) ?? '');
          const location = c.mmLocationByShop.get(idString(l.location_id) ?? '');
          if (sku && location && typeof l.available === 'number') {
            out.push({ sku, location, available: l.available });
          }
        }
      }
      const wanted = keys ? new Set(keys.map((k) => `${k.sku}@${k.location}`)) : undefined;
      return wanted ? out.filter((s) => wanted.has(`${s.sku}@${s.location}`)) : out;
    },
  };
}
