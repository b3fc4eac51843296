// The cloud ERP's stock snapshot (`GET /api/v1/inventory`, OAuth 2.0 client credentials), read
// for inventory reconciliation when no ERP port of the estate offers `stockLevels`. Only what
// reconciliation needs: on-hand per SKU and location, and the ERP's own `asOf`.
import type { ErpStockLevel } from '../../ports/erp.js';
import { callJson, joinUrl } from './http.js';

export interface ErpStockSnapshot {
  /** When the ERP took the snapshot (epoch ms). */
  asOf: number;
  levels: ErpStockLevel[];
}

export interface CloudErpStockOptions {
  system: string;
  baseUrl: string;
  clientId: string;
  clientSecret: string;
}

export interface ErpStockReader {
  readonly system: string;
  snapshot(
    locations?: readonly string[],
    ctx?: { signal?: AbortSignal },
  ): Promise<ErpStockSnapshot>;
}

export function createCloudErpStockReader(opts: CloudErpStockOptions): ErpStockReader {
  let token: { value: string; until: number } | undefined;

  async function accessToken(signal?: AbortSignal): Promise<string> {
    if (token && token.until > Date.now()) return token.value;
    const basic = Buffer.from(`${opts.clientId}:${opts.clientSecret}`).toString('base64');
    const answer = (await callJson(
      {
        method: 'POST',
        url: joinUrl(opts.baseUrl, '/oauth2/token'),
        headers: { authorization: `Basic ${basic}` },
        body: { grant_type: 'client_credentials' },
        ...(signal ? { signal } : {}),
      },
      opts.system,
    )) as { access_token?: unknown; expires_in?: unknown };
    if (typeof answer.access_token !== 'string') throw new Error(`${opts.system}: no access token`);
    const ttl = typeof answer.expires_in === 'number' ? answer.expires_in : 300;
    token = { value: answer.access_token, until: Date.now() + Math.max(1, ttl - 30) * 1000 };
    return token.value;
  }

  return {
    system: opts.system,
    async snapshot(locations, ctx = {}) {
      const bearer = await accessToken(ctx.signal);
      const places = locations && locations.length > 0 ? locations : [undefined];
      const levels: ErpStockLevel[] = [];
      let asOf = Date.now();
      for (const place of places) {
        const answer = (await callJson(
          {
            method: 'GET',
            url: joinUrl(
              opts.baseUrl,
              `/api/v1/inventory${place === undefined ? '' : `?location=${encodeURIComponent(place)}`}`,
            ),
            headers: { authorization: `Bearer ${bearer}` },
            ...(ctx.signal ? { signal: ctx.signal } : {}),
          },
          opts.system,
        )) as {
          asOf?: unknown;
          items?: Array<{
            location?: { id?: unknown };
            item?: { itemId?: unknown };
            quantityOnHand?: unknown;
          }>;
        };
        const at = typeof answer.asOf === 'string' ? Date.parse(answer.asOf) : NaN;
        if (Number.isFinite(at)) asOf = Math.min(asOf, at);
        for (const i of answer.items ?? []) {
          if (
            typeof i.location?.id === 'string' &&
            typeof i.item?.itemId === 'string' &&
            typeof i.quantityOnHand === 'number'
          ) {
            levels.push({ sku: i.item.itemId, location: i.location.id, onHand: i.quantityOnHand });
          }
        }
      }
      return { asOf, levels };
    },
  };
}
