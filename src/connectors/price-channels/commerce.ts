// Prices on a Shopify-compatible commerce platform (Admin REST): the `channel.price` action sets
// a variant's `price` (what the customer pays) and `compare_at_price` (the list price while a
// sale price applies, else cleared), and the read-back lists every variant's prices. The
// platform has no bulk price endpoint in its REST Admin API, so each SKU is one call; SKU →
// variant ids come from the product list, refreshed when a SKU is not found (at most every
// `refreshMs`). A SKU the shop does not sell is acknowledged as `listed: false`.
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import { decimalOf, minorOf } from './money.js';

export interface CommercePriceOptions {
  baseUrl: string;
  accessToken: string;
  apiVersion?: string;
  /** The shop's currency (prices in another currency are refused). Default: any. */
  currency?: string;
  refreshMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

interface VariantPrice {
  variantId: string;
  listMinor: number;
  saleMinor?: number | undefined;
}

export interface CommercePriceChannel {
  perform: ActionPerformer;
  /** Whether the shop sells a SKU, by the last product list read (undefined before one). */
  sells(sku: string): boolean | undefined;
  /** Reads the product list again (SKUs, variant ids, prices). */
  refreshListing(signal?: AbortSignal): Promise<void>;
  /** What the shop shows now for the SKUs (absent: not sold there). */
  readPrices(
    skus: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, { listMinor: number; saleMinor?: number | undefined }>>;
}

function retryAfterOf(res: Response): number | undefined {
  const v = res.headers.get('retry-after');
  if (!v) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? Math.max(0, Math.ceil(n)) : undefined;
}

async function failure(res: Response, what: string): Promise<ActionError> {
  const text = await res.text().catch(() => '');
  const detail = `${what}: HTTP ${res.status} ${text.slice(0, 300)}`;
  if (res.status === 429) {
    const retry = retryAfterOf(res);
    return new ActionError(detail, 'transient', {
      status: 429,
      ...(retry !== undefined ? { retryAfterSeconds: retry } : {}),
    });
  }
  if (res.status >= 500 || res.status === 408 || res.status === 401) {
    return new ActionError(detail, 'transient', { status: res.status });
  }
  return new ActionError(detail, 'permanent', { status: res.status });
}

export function commercePriceChannel(opts: CommercePriceOptions): CommercePriceChannel {
  const http = opts.fetch ?? fetch;
  const now = opts.now ?? Date.now;
  const base = `${opts.baseUrl.replace(/\/+$/, '')}/admin/api/${opts.apiVersion ?? '2025-01'}`;
  const headers = {
    'x-shopify-access-token': opts.accessToken,
    'content-type': 'application/json',
  };
  let variants: Map<string, VariantPrice> | undefined;
  let loadedAt = 0;
  let loading: Promise<Map<string, VariantPrice>> | undefined;

  const variantIdOf = (v: Record<string, unknown>): string | undefined => {
    const gid = v.admin_graphql_api_id;
    if (typeof gid === 'string') {
      const m = /\/(\d+)$/.exec(gid);
      if (m) return m[1];
    }
    return typeof v.id === 'number' || typeof v.id === 'string' ? String(v.id) : undefined;
  };

  async function loadVariants(signal?: AbortSignal): Promise<Map<string, VariantPrice>> {
    // Pages of 250 in id order (`since_id`), bounded at 400 pages (100,000 products).
    const products: Array<{ id?: unknown; variants?: Array<Record<string, unknown>> }> = [];
    let since = '0';
    for (let page = 0; page < 400; page++) {
      const res = await http(`${base}/products.json?limit=250&since_id=${since}`, {
        headers,
        ...(signal ? { signal } : {}),
      });
      if (!res.ok) throw await failure(res, 'listing products');
      let body: { products?: typeof products };
      try {
        body = (await res.json()) as typeof body;
      } catch {
        throw new ActionError('listing products: unreadable answer', 'transient');
      }
      const list = body.products ?? [];
      products.push(...list);
      const last = list.at(-1)?.id;
      if (list.length < 250 || (typeof last !== 'number' && typeof last !== 'string')) break;
      since = String(last);
    }
    const map = new Map<string, VariantPrice>();
    for (const p of products) {
      for (const v of p.variants ?? []) {
        const id = variantIdOf(v);
        if (typeof v.sku !== 'string' || !id) continue;
        const currency = opts.currency ?? 'USD';
        const price = minorOf(v.price, currency) ?? 0;
        const compare =
          v.compare_at_price == null ? undefined : minorOf(v.compare_at_price, currency);
        map.set(
          v.sku,
          compare !== undefined && compare > price
            ? { variantId: id, listMinor: compare, saleMinor: price }
            : { variantId: id, listMinor: price },
        );
      }
    }
    variants = map;
    loadedAt = now();
    return map;
  }

  async function variantsFor(
    sku: string,
    signal?: AbortSignal,
  ): Promise<Map<string, VariantPrice>> {
    const stale =
      variants === undefined ||
      (!variants.has(sku) && now() - loadedAt > (opts.refreshMs ?? 30_000));
    if (!stale) return variants!;
    loading ??= loadVariants(signal).finally(() => (loading = undefined));
    return loading;
  }

  const perform: ActionPerformer = async (action, ctx) => {
    if (action.action !== 'channel.price') {
      throw new ActionError(`commerce prices do not perform ${action.action}`, 'permanent');
    }
    if (opts.currency && action.currency !== opts.currency) {
      throw new ActionError(
        `the shop sells in ${opts.currency}, the price is in ${action.currency}`,
        'permanent',
      );
    }
    const known = await variantsFor(action.sku, ctx.signal);
    const variant = known.get(action.sku);
    const shown = {
      version: action.version,
      currency: action.currency,
      listPriceMinor: action.listPriceMinor,
      ...(action.salePriceMinor !== undefined ? { salePriceMinor: action.salePriceMinor } : {}),
    };
    if (!variant) return { ...shown, listed: false };
    const onSale =
      action.salePriceMinor !== undefined && action.salePriceMinor < action.listPriceMinor;
    const res = await http(`${base}/variants/${variant.variantId}.json`, {
      method: 'PUT',
      headers: { ...headers, 'idempotency-key': ctx.idempotencyKey },
      signal: ctx.signal,
      body: JSON.stringify({
        variant: {
          id: Number(variant.variantId),
          price: decimalOf(
            onSale ? action.salePriceMinor! : action.listPriceMinor,
            action.currency,
          ),
          compare_at_price: onSale ? decimalOf(action.listPriceMinor, action.currency) : null,
        },
      }),
    });
    if (res.status === 404) {
      variants?.delete(action.sku);
      loadedAt = 0;
      throw new ActionError(
        `variant of ${action.sku} not found; the product list is read again`,
        'transient',
        { status: 404 },
      );
    }
    if (!res.ok) throw await failure(res, `setting the price of ${action.sku}`);
    try {
      await res.json();
    } catch {
      // The platform answered 2xx without a readable body; setting a price again is harmless.
      throw new ActionError(`setting the price of ${action.sku}: unreadable answer`, 'transient');
    }
    return { ...shown, listed: true };
  };

  return {
    perform,
    sells: (sku) => (variants === undefined ? undefined : variants.has(sku)),
    async refreshListing(signal) {
      await loadVariants(signal);
    },
    async readPrices(skus, signal) {
      const map = await loadVariants(signal);
      const out = new Map<string, { listMinor: number; saleMinor?: number | undefined }>();
      for (const sku of skus) {
        const v = map.get(sku);
        if (v)
          out.set(sku, {
            listMinor: v.listMinor,
            ...(v.saleMinor !== undefined ? { saleMinor: v.saleMinor } : {}),
          });
      }
      return out;
    },
  };
}
