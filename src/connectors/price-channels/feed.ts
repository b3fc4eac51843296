// Prices for channels that take a plain JSON feed (marketplaces): one
// `POST {baseUrl}{path}` per SKU with `{ sku, currency, listPriceMinor, listPrice, salePriceMinor?,
// salePrice?, version }` and an `Idempotency-Key`; the channel refuses a version older than the
// one it shows with 409, which counts as acknowledged (it already shows something newer).
// `GET {baseUrl}{path}?sku=…` answers `{ items: [{ sku, listPriceMinor, salePriceMinor? }] }` for
// the read-back. Settings: `pricePath` (default `/prices`); credentials: `apiKey` (a bearer token).
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import { decimalOf } from './money.js';

export interface FeedPriceOptions {
  system: string;
  baseUrl: string;
  path?: string;
  apiKey?: string;
  fetch?: typeof fetch;
}

export interface FeedPriceChannel {
  perform: ActionPerformer;
  readPrices(
    skus: readonly string[],
    signal?: AbortSignal,
  ): Promise<Map<string, { listMinor: number; saleMinor?: number | undefined }>>;
}

async function failure(system: string, what: string, res: Response): Promise<ActionError> {
  const text = await res.text().catch(() => '');
  const retry = Number(res.headers.get('retry-after'));
  const transient = res.status >= 500 || res.status === 429 || res.status === 408;
  return new ActionError(
    `${system}: ${what}: HTTP ${res.status} ${text.slice(0, 300)}`,
    transient ? 'transient' : 'permanent',
    {
      status: res.status,
      ...(Number.isFinite(retry) && retry > 0 ? { retryAfterSeconds: Math.ceil(retry) } : {}),
    },
  );
}

export function feedPriceChannel(opts: FeedPriceOptions): FeedPriceChannel {
  const http = opts.fetch ?? fetch;
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/${(opts.path ?? '/prices').replace(/^\/+/, '')}`;
  const auth: Record<string, string> = opts.apiKey
    ? { authorization: `Bearer ${opts.apiKey}` }
    : {};

  const perform: ActionPerformer = async (action, ctx) => {
    if (action.action !== 'channel.price') {
      throw new ActionError(`${opts.system} cannot perform ${action.action}`, 'permanent');
    }
    const body = {
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
    };
    let res: Response;
    try {
      res = await http(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': ctx.idempotencyKey,
          ...auth,
        },
        body: JSON.stringify(body),
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } catch (err) {
      throw new ActionError(
        `${opts.system}: POST prices failed: ${(err as Error).message}`,
        'transient',
      );
    }
    // 409: the channel shows a newer version already; nothing older may replace it.
    if (!res.ok && res.status !== 409) throw await failure(opts.system, 'POST prices', res);
    await res.text().catch(() => '');
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
    for (let i = 0; i < skus.length; i += 100) {
      const query = skus
        .slice(i, i + 100)
        .map((s) => `sku=${encodeURIComponent(s)}`)
        .join('&');
      const res = await http(`${url}?${query}`, {
        headers: { accept: 'application/json', ...auth },
        ...(signal ? { signal } : {}),
      });
      if (!res.ok) throw await failure(opts.system, 'GET prices', res);
      const body = (await res.json()) as {
        items?: Array<{ sku?: unknown; listPriceMinor?: unknown; salePriceMinor?: unknown }>;
      };
      for (const item of body.items ?? []) {
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
