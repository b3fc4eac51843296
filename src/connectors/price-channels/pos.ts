// Prices on store tills (the POS's store API): `PUT /api/v1/stores/{store}/prices { prices }`
// takes many prices per call, so pushes of one store that arrive together are sent as one
// batch (collected for `batchWindowMs`, at most `maxBatch` per call); each push resolves when
// its batch was accepted. A push's scope is a store group; it goes to every store of the group
// (`storesOf`), or, for a scope that names no configured group, to the store of that id.
// `readPrices` reads back what the tills of a scope show (`GET /api/v1/stores/{store}/prices`):
// a SKU counts as shown only when every store of the scope shows the same price.
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import { skuQueries } from '../availability/http.js';
import { decimalOf } from './money.js';

export interface PosPriceOptions {
  baseUrl: string;
  storesOf: (scope: string) => readonly string[] | undefined;
  batchWindowMs?: number;
  maxBatch?: number;
  fetch?: typeof fetch;
}

export interface TillPrice {
  sku: string;
  currency: string;
  listPrice: string;
  salePrice?: string;
  listPriceMinor: number;
  salePriceMinor?: number;
  version: number;
}

interface Waiting {
  price: TillPrice;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface PosPriceChannel {
  perform: ActionPerformer;
  /** What every store of a scope shows for these SKUs (omitted where the stores disagree). */
  readPrices(
    scope: string,
    skus: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, { listMinor: number; saleMinor?: number | undefined }>>;
  /** Calls made and prices sent (for figures). */
  readonly stats: { calls: number; prices: number };
}

export function posPriceChannel(opts: PosPriceOptions): PosPriceChannel {
  const http = opts.fetch ?? fetch;
  const base = opts.baseUrl.replace(/\/+$/, '');
  const windowMs = opts.batchWindowMs ?? 20;
  const maxBatch = opts.maxBatch ?? 500;
  const pending = new Map<string, { items: Waiting[]; timer: NodeJS.Timeout }>();
  const stats = { calls: 0, prices: 0 };

  async function send(store: string, items: Waiting[]): Promise<void> {
    stats.calls++;
    stats.prices += items.length;
    try {
      const res = await http(`${base}/api/v1/stores/${encodeURIComponent(store)}/prices`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prices: items.map((i) => i.price) }),
      });
      if (!res.ok) {
        const text = await res.text().catch(() => '');
        const detail = `store ${store} prices: HTTP ${res.status} ${text.slice(0, 200)}`;
        const transient = res.status >= 500 || res.status === 429 || res.status === 408;
        throw new ActionError(detail, transient ? 'transient' : 'permanent', {
          status: res.status,
        });
      }
      await res.text();
      for (const i of items) i.resolve();
    } catch (err) {
      for (const i of items) i.reject(err);
    }
  }

  function flush(store: string): void {
    const p = pending.get(store);
    if (!p) return;
    pending.delete(store);
    clearTimeout(p.timer);
    void send(store, p.items);
  }

  function enqueue(store: string, price: TillPrice): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let p = pending.get(store);
      if (!p) {
        p = { items: [], timer: setTimeout(() => flush(store), windowMs) };
        pending.set(store, p);
      }
      p.items.push({ price, resolve, reject });
      if (p.items.length >= maxBatch) flush(store);
    });
  }

  const perform: ActionPerformer = async (action) => {
    if (action.action !== 'channel.price') {
      throw new ActionError(`till prices do not perform ${action.action}`, 'permanent');
    }
    const scope = action.scope ?? '';
    const stores = opts.storesOf(scope) ?? (scope !== '' ? [scope] : []);
    const shown = {
      version: action.version,
      currency: action.currency,
      listPriceMinor: action.listPriceMinor,
      ...(action.salePriceMinor !== undefined ? { salePriceMinor: action.salePriceMinor } : {}),
    };
    if (stores.length === 0) return { ...shown, listed: false };
    const price: TillPrice = {
      sku: action.sku,
      currency: action.currency,
      listPrice: decimalOf(action.listPriceMinor, action.currency),
      listPriceMinor: action.listPriceMinor,
      ...(action.salePriceMinor !== undefined
        ? {
            salePrice: decimalOf(action.salePriceMinor, action.currency),
            salePriceMinor: action.salePriceMinor,
          }
        : {}),
      version: action.version,
    };
    await Promise.all(stores.map((s) => enqueue(s, price)));
    return { ...shown, listed: true, stores: [...stores] };
  };

  async function readStore(
    store: string,
    skus: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, { listMinor: number; saleMinor?: number | undefined }>> {
    const out = new Map<string, { listMinor: number; saleMinor?: number | undefined }>();
    for (const query of skuQueries(skus)) {
      const res = await http(`${base}/api/v1/stores/${encodeURIComponent(store)}/prices?${query}`, {
        headers: { accept: 'application/json' },
        ...(signal ? { signal } : {}),
      });
      if (!res.ok) {
        const text = await res.text().catch(() => '');
        throw new ActionError(
          `store ${store} prices: HTTP ${res.status} ${text.slice(0, 200)}`,
          'transient',
          {
            status: res.status,
          },
        );
      }
      const body = (await res.json()) as { prices?: Array<Partial<TillPrice>> };
      for (const p of body.prices ?? []) {
        if (typeof p.sku !== 'string' || typeof p.listPriceMinor !== 'number') continue;
        out.set(p.sku, {
          listMinor: p.listPriceMinor,
          ...(typeof p.salePriceMinor === 'number' ? { saleMinor: p.salePriceMinor } : {}),
        });
      }
    }
    return out;
  }

  async function readPrices(scope: string, skus: readonly string[], signal?: AbortSignal) {
    const stores = opts.storesOf(scope) ?? (scope !== '' ? [scope] : []);
    const shown = new Map<string, { listMinor: number; saleMinor?: number | undefined }>();
    if (stores.length === 0) return shown;
    const perStore = await Promise.all(stores.map((s) => readStore(s, skus, signal)));
    for (const sku of skus) {
      const seen = perStore.map((m) => m.get(sku));
      const first = seen[0];
      const same = seen.every(
        (p) =>
          p !== undefined &&
          p.listMinor === first?.listMinor &&
          (p.saleMinor ?? null) === (first?.saleMinor ?? null),
      );
      if (first && same) shown.set(sku, first);
    }
    return shown;
  }

  return { perform, readPrices, stats };
}
