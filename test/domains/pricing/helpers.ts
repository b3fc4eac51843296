// Middlemart against the sandbox estate over loopback HTTP: the real composition root on a
// temporary SQLite file, the estate on ephemeral ports, a pricing section of the test's own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { App } from '../../../src/app.js';
import type { PriceV1 } from '../../../src/canonical/index.js';
import { createApiKey } from '../../../src/api/auth/api-keys.js';
import type { Role } from '../../../src/api/auth/roles.js';
import { parseConfig } from '../../../src/config/load.js';
import { renderEstateConfig, startEstate, type Estate } from '../../../src/sandbox/estate.js';
import { startQuietApp } from '../../support/app.js';

export const STORE_GROUPS = {
  'eu-stores': ['store-001', 'store-002'],
  'us-stores': ['store-003'],
  outlets: ['store-004'],
  airports: ['store-005'],
  franchise: [] as string[],
};

export interface PricingWorld {
  estate: Estate;
  app: App;
  url: string;
  dir: string;
  key(roles: Role[]): Promise<string>;
  call(
    method: string,
    path: string,
    opts?: { key?: string; body?: unknown; headers?: Record<string, string>; raw?: string },
    // Answers are read field by field in assertions; their schemas are checked by the API.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ): Promise<{ status: number; text: string; json: () => any }>;
  /** The commerce shop's variant of a SKU (price and compare-at in minor units). */
  shopPrice(sku: string): Promise<{ price: number; compareAt: number | null } | undefined>;
  /** Price updates the stores received so far: [{ storeId, prices }]. */
  storeUpdates(): Promise<Array<{ storeId: string; prices: number }>>;
  stop(): Promise<void>;
}

export async function startPricingWorld(
  opts: {
    pricing?: Record<string, unknown>;
    limits?: Record<string, Record<string, unknown>>;
    /** Other system fields by system id (circuitBreaker, retry …). */
    systems?: Record<string, Record<string, unknown>>;
    engine?: Record<string, unknown>;
  } = {},
): Promise<PricingWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-pricing-'));
  const estate = await startEstate({ basePort: 0, seed: 7 });
  try {
    const doc = parse(renderEstateConfig(estate)) as {
      systems: Array<{ id: string; limits?: Record<string, unknown> } & Record<string, unknown>>;
      [section: string]: unknown;
    };
    for (const s of doc.systems) {
      if (opts.limits?.[s.id]) s.limits = { ...(s.limits ?? {}), ...opts.limits[s.id] };
      Object.assign(s, opts.systems?.[s.id] ?? {});
    }
    doc.pricing = {
      tickIntervalMs: 50,
      verification: { delayMs: 100, intervalMs: 200 },
      targets: [
        { system: 'commerce', channels: ['web', 'mobile'], storeGroups: { 'eu-stores': [] } },
        { system: 'pos', channels: ['store'], storeGroups: STORE_GROUPS },
      ],
      ...opts.pricing,
    };
    doc.engine = { workers: 4, ...(opts.engine ?? {}) };
    const parsed = parseConfig(stringify(doc), 'pricing-test.yaml', estate.env);
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
    const app = await startQuietApp({ config: parsed.config, dir });
    const url = app.url!;
    const pos = estate.systems.find((s) => s.id === 'pos')!.url;
    return {
      estate,
      app,
      url,
      dir,
      key: async (roles) =>
        (await createApiKey(app.store, { name: `test ${roles.join('+')}`, roles })).key,
      call: async (method, path, o = {}) => {
        const headers: Record<string, string> = { ...o.headers };
        if (o.key) headers.authorization = `Bearer ${o.key}`;
        let body: string | undefined;
        if (o.raw !== undefined) body = o.raw;
        else if (o.body !== undefined) {
          headers['content-type'] = 'application/json';
          body = JSON.stringify(o.body);
        }
        const res = await fetch(`${url}${path}`, {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
        });
        const text = await res.text();
        return { status: res.status, text, json: () => JSON.parse(text) };
      },
      shopPrice: async (sku) => {
        // The sandbox's own state, not the Admin API: reading must not use the shop's call budget.
        const shop = (
          estate.commerce as unknown as {
            shop: {
              products: Array<{
                variants: Array<{
                  sku: string;
                  priceMinor: number;
                  compareAtPriceMinor: number | null;
                }>;
              }>;
            };
          }
        ).shop;
        for (const p of shop.products) {
          for (const v of p.variants)
            if (v.sku === sku) return { price: v.priceMinor, compareAt: v.compareAtPriceMinor };
        }
        return undefined;
      },
      storeUpdates: async () => {
        const state = (await (await fetch(`${pos}/_sandbox/state`)).json()) as {
          received: Record<string, Array<{ storeId: string; prices: number }>>;
        };
        return state.received.priceUpdates ?? [];
      },
      stop: async () => {
        await app.stop().catch(() => undefined);
        await estate.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await estate.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The final price per SKU and store group of a calendar whose changes are all in effect. */
export function finalPrices(changes: readonly PriceV1[]): Map<string, PriceV1> {
  const expected = new Map<string, PriceV1>();
  for (const p of changes) {
    const k = `${p.sku}|${p.storeGroup}`;
    const seen = expected.get(k);
    if (!seen || Date.parse(p.effectiveFrom) >= Date.parse(seen.effectiveFrom)) expected.set(k, p);
  }
  return expected;
}

/**
 * Waits until every final price shows where it must: on the shop (the eu-stores price zone, the
 * SKUs it sells), acknowledged by the tills of every store group with stores, and on each till
 * itself (read from the sandbox POS). Returns the shop's and the tills' keys.
 */
export async function assertFinalPrices(
  w: PricingWorld,
  expected: ReadonlyMap<string, PriceV1>,
  reader: string,
  timeoutMs = 240_000,
): Promise<{ shopSkus: PriceV1[]; tillKeys: PriceV1[] }> {
  // The shop follows the eu-stores price zone; it sells MM-00001 … MM-00060.
  const shopSkus = [...expected.values()].filter(
    (p) => p.storeGroup === 'eu-stores' && p.sku <= 'MM-00060',
  );
  assert.ok(shopSkus.length > 0);
  await eventually(
    'every shop price final',
    async () => {
      for (const p of shopSkus) {
        const shown = await w.shopPrice(p.sku);
        const pay = p.salePrice?.amount ?? p.listPrice.amount;
        if (shown?.price !== pay) return undefined;
        if ((shown.compareAt ?? null) !== (p.salePrice ? p.listPrice.amount : null))
          return undefined;
      }
      return true;
    },
    timeoutMs,
  );
  // Every store group's final price acknowledged by the tills.
  await eventually(
    'every till price acknowledged',
    async () => {
      for (const p of expected.values()) {
        const group = p.storeGroup!;
        if ((STORE_GROUPS as Record<string, string[]>)[group]!.length === 0) continue;
        const q = new URLSearchParams({ sku: p.sku, channel: 'pos', storeGroup: group });
        const r = await w.call('GET', `/v1/prices?${q.toString()}`, { key: reader });
        const body = r.json();
        const a = body.acknowledged;
        if (
          !a ||
          a.listPrice.amount !== p.listPrice.amount ||
          (a.salePrice?.amount ?? null) !== (p.salePrice?.amount ?? null)
        ) {
          return undefined;
        }
        assert.equal(
          body.price.listPrice.amount,
          p.listPrice.amount,
          'GET /v1/prices answers the final price',
        );
      }
      return true;
    },
    timeoutMs,
  );
  // What every till shows, read from the stores themselves: the final price of its group.
  const posUrl = w.estate.systems.find((s) => s.id === 'pos')!.url;
  const byStore = new Map<string, PriceV1[]>();
  for (const p of expected.values()) {
    for (const store of (STORE_GROUPS as Record<string, string[]>)[p.storeGroup!]!) {
      if (!byStore.has(store)) byStore.set(store, []);
      byStore.get(store)!.push(p);
    }
  }
  for (const [store, prices] of byStore) {
    const shown = new Map<string, { listPriceMinor: number; salePriceMinor?: number }>();
    for (let i = 0; i < prices.length; i += 100) {
      const q = prices
        .slice(i, i + 100)
        .map((p) => `sku=${encodeURIComponent(p.sku)}`)
        .join('&');
      const body = (await (await fetch(`${posUrl}/api/v1/stores/${store}/prices?${q}`)).json()) as {
        prices: Array<{ sku: string; listPriceMinor: number; salePriceMinor?: number }>;
      };
      for (const t of body.prices) shown.set(t.sku, t);
    }
    for (const p of prices) {
      const t = shown.get(p.sku);
      assert.equal(t?.listPriceMinor, p.listPrice.amount, `${store} ${p.sku} list price`);
      assert.equal(
        t?.salePriceMinor ?? null,
        p.salePrice?.amount ?? null,
        `${store} ${p.sku} sale price`,
      );
    }
  }
  const tillKeys = [...expected.values()].filter(
    (p) => (STORE_GROUPS as Record<string, string[]>)[p.storeGroup!]!.length > 0,
  );
  return { shopSkus, tillKeys };
}

/** Polls `check` every 50 ms until it returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function price(
  sku: string,
  listMinor: number,
  o: {
    channel?: string;
    storeGroup?: string;
    sale?: number;
    from: number;
    until?: number;
    promotionId?: string;
    currency?: string;
  },
) {
  const currency = o.currency ?? 'EUR';
  return {
    sku,
    ...(o.channel ? { channel: o.channel } : {}),
    ...(o.storeGroup ? { storeGroup: o.storeGroup } : {}),
    currency,
    listPrice: { amount: listMinor, currency },
    ...(o.sale !== undefined ? { salePrice: { amount: o.sale, currency } } : {}),
    pricesIncludeTax: true,
    effectiveFrom: new Date(o.from).toISOString(),
    ...(o.until !== undefined ? { effectiveUntil: new Date(o.until).toISOString() } : {}),
    ...(o.promotionId ? { promotionId: o.promotionId } : {}),
  };
}
