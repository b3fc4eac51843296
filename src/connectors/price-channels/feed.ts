// Prices for channels that take a plain JSON feed (marketplaces): one
// `POST {baseUrl}{path}` per SKU with `{ sku, currency, listPriceMinor, listPrice, salePriceMinor?,
// salePrice?, version }` and an `Idempotency-Key`; the channel refuses a version older than the
// one it shows with 409, which counts as acknowledged (it already shows something newer).
// `GET {baseUrl}{path}?sku=…` answers `{ items: [{ sku, listPriceMinor, salePriceMinor? }] }` for
// the read-back. Settings: `pricePath` (default `/prices`); credentials: `apiKey` (a bearer token).
// The calls go through the availability feed's JSON helper (same error classification).
import { callJson, joinUrl, skuQueries } from '../availability/http.js';
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import { decimalOf } from './money.js';

export interface FeedPriceOptions {
  system: string;
  baseUrl: string;
  path?: string;
  apiKey?: string;
}

export interface FeedPriceChannel {
  perform: ActionPerformer;
  readPrices(
    skus: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, { listMinor: number; saleMinor?: number | undefined }>>;
}

export function feedPriceChannel(opts: FeedPriceOptions): FeedPriceChannel {
  const url = joinUrl(opts.baseUrl, opts.path ?? '/prices');
  const auth: Record<string, string> = opts.apiKey
    ? { authorization: `Bearer ${opts.apiKey}` }
    : {};

  const perform: ActionPerformer = async (action, ctx) => {
    if (action.action !== 'channel.price') {
      throw new ActionError(`${opts.system} cannot perform ${action.action}`, 'permanent');
    }
    try {
      await callJson(
        {
          method: 'POST',
          url,
          headers: { ...auth, 'idempotency-key': ctx.idempotencyKey },
          body: {
            sku: action.sku,
            currency: action.currency,
            listPriceMinor: action.listPriceMinor,
            listPrice: decimalOf(action.listPriceMinor, action.currency),
            ...(action.salePriceMinor !== undefined
              ? {
                  salePriceMinor: action.salePriceMinor,
                  salePrice: decimalOf(action.salePriceMinor, action.currency),
                }
              : {}),
            version: action.version,
          },
          ...(ctx.signal ? { signal: ctx.signal } : {}),
        },
        opts.system,
      );
    } catch (err) {
      // 409: the channel shows a newer version already; nothing older may replace it.
      if (!(err instanceof ActionError && err.details.status === 409)) throw err;
    }
    return {
      version: action.version,
      listed: true,
      currency: action.currency,
      listPriceMinor: action.listPriceMinor,
      ...(action.salePriceMinor !== undefined ? { salePriceMinor: action.salePriceMinor } : {}),
    };
  };

  async function readPrices(skus: readonly string[], signal?: AbortSignal) {
    const out = new Map<string, { listMinor: number; saleMinor?: number | undefined }>();
    for (const query of skuQueries(skus)) {
      const body = (await callJson(
        { method: 'GET', url: `${url}?${query}`, headers: auth, ...(signal ? { signal } : {}) },
        opts.system,
      )) as {
        items?: Array<{ sku?: unknown; listPriceMinor?: unknown; salePriceMinor?: unknown }>;
      };
      for (const item of body?.items ?? []) {
        if (typeof item.sku !== 'string' || typeof item.listPriceMinor !== 'number') continue;
        out.set(item.sku, {
          listMinor: item.listPriceMinor,
          ...(typeof item.salePriceMinor === 'number' ? { saleMinor: item.salePriceMinor } : {}),
        });
      }
    }
    return out;
  }

  return { perform, readPrices };
}
