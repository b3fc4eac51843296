// Test support for the order process: the real composition root (every module but the
// connectors') on a temporary SQLite file, with capturing performers standing in for the systems
// (so a test can count each system's calls, take a system down and bring it back), a fake ERP
// item master behind `services.erps`, and builders of canonical orders and returns.
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers of the API and the simulators, read in assertions */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../../../src/app.js';
import { createApiKey } from '../../../src/api/auth/api-keys.js';
import { parseConfig } from '../../../src/config/load.js';
import type { ErpItem, ErpPort } from '../../../src/ports/erp.js';
import {
  ActionError,
  type SystemAction,
  type SystemActionName,
} from '../../../src/ports/system-actions.js';
import { MODULES, type FeatureModule } from '../../../src/wiring/index.js';
import { startQuietApp } from '../../support/app.js';

export const SYSTEMS: Array<{ id: string; kind: string; actions: SystemActionName[] }> = [
  { id: 'cloud-erp', kind: 'rest-erp', actions: ['erp.post-sales-order', 'erp.post-credit'] },
  { id: 'legacy-erp', kind: 'soap-erp', actions: ['erp.post-sales-order', 'erp.post-credit'] },
  { id: 'commerce', kind: 'shopify', actions: ['commerce.order-status'] },
  { id: 'pos', kind: 'pos', actions: ['store.pickup-task'] },
  { id: 'crm', kind: 'crm', actions: ['crm.timeline-entry'] },
  { id: 'loyalty', kind: 'loyalty', actions: ['loyalty.accrue', 'loyalty.reverse'] },
  { id: 'wms', kind: 'wms', actions: ['wms.fulfilment-request'] },
  { id: 'tax', kind: 'tax', actions: ['tax.quote'] },
  { id: 'notifications', kind: 'notification', actions: ['notify.customer'] },
];

export interface Captured {
  system: string;
  action: SystemAction;
  idempotencyKey: string;
  attempt: number;
}

/** Performers that record every call; a system marked down fails transiently. */
export class CapturingEstate {
  readonly calls: Captured[] = [];
  readonly down = new Set<string>();
  /** SKUs the fake ERP item master does not know. */
  readonly unknownSkus = new Set<string>();
  private readonly bookings = new Map<string, string>();

  /** Calls to a system (and action), every attempt counted. */
  callsTo(system: string, action?: SystemActionName): Captured[] {
    return this.calls.filter((c) => c.system === system && (!action || c.action.action === action));
  }

  /** Distinct idempotency keys a system saw (each one effect in a real system). */
  effects(system: string, action?: SystemActionName): string[] {
    return [...new Set(this.callsTo(system, action).map((c) => c.idempotencyKey))];
  }

  private perform(system: string, action: SystemAction, key: string, attempt: number): unknown {
    if (this.down.has(system)) {
      throw new ActionError(`${system} is down`, 'transient', { status: 503 });
    }
    this.calls.push({ system, action, idempotencyKey: key, attempt });
    switch (action.action) {
      case 'erp.post-sales-order': {
        const ref = action.order.externalReference;
        const existing = this.bookings.get(ref);
        const id = existing ?? `SO-${this.bookings.size + 1}`;
        this.bookings.set(ref, id);
        return { erpOrderId: id, erpOrderNumber: id, state: 'confirmed', duplicate: !!existing };
      }
      case 'erp.post-credit':
        return {
          erpCreditId: `CM-${action.credit.externalReference}`,
          state: 'open',
          duplicate: false,
        };
      case 'tax.quote':
        return { quoteId: `Q-${action.orderId}`, totalTax: 190, currency: action.currency };
      default:
        return { ok: true };
    }
  }

  /** The module registering the performers and the ERP item master. */
  module(): FeatureModule {
    return {
      name: 'capturing-estate',
      start: (ctx) => {
        for (const s of SYSTEMS) {
          for (const a of s.actions) {
            ctx.registerAction(s.id, a, async (action, c) =>
              this.perform(s.id, action, c.idempotencyKey, c.attempt),
            );
          }
        }
        const erpPort = (system: string): ErpPort => ({
          system,
          postSalesOrder: () => Promise.reject(new Error('not over the port')),
          findSalesOrder: () => Promise.resolve(undefined),
          postCredit: () => Promise.reject(new Error('not over the port')),
          findItems: (skus) =>
            Promise.resolve(
              skus
                .filter((s) => !this.unknownSkus.has(s))
                .map((sku): ErpItem => ({ sku, erpItemId: `item-${sku}`, active: true })),
            ),
          stockLevels: () => Promise.resolve([]),
          statusChangesSince: () => Promise.resolve({ changes: [], watermark: undefined }),
        });
        for (const system of ['cloud-erp', 'legacy-erp']) {
          ctx.services.erps.set(system, erpPort(system));
        }
        return {};
      },
    };
  }
}

export interface OrderTestApp {
  app: App;
  url: string;
  estate: CapturingEstate;
  key: string;
  call(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; json: any; text: string; contentType: string }>;
  close(): Promise<void>;
}

export type Backend = 'sqlite' | 'postgres';

/** SQLite always; PostgreSQL when MIDDLEMART_TEST_PG_URL is set (else the skip is printed). */
export function backends(): Backend[] {
  if (process.env.MIDDLEMART_TEST_PG_URL) return ['sqlite', 'postgres'];
  console.log('# PostgreSQL runs skipped: MIDDLEMART_TEST_PG_URL is not set');
  return ['sqlite'];
}

let databases = 0;

/** A fresh PostgreSQL database for one app (dropped again on close). */
async function freshPostgres(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.MIDDLEMART_TEST_PG_URL!;
  // The customers module keeps personal data encrypted outside SQLite's single file.
  process.env.MIDDLEMART_PII_KEY ??= randomBytes(32).toString('base64');
  const name = `mm_orders_${process.pid}_${++databases}_${Date.now() % 100000}`;
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** With two ERPs in the estate, routing needs a default: everything to the cloud ERP. */
const DEFAULT_ROUTING = `routing:
  - name: everything-to-cloud-erp
    when: {}
    to: cloud-erp`;

export async function startOrderApp(
  opts: {
    orders?: string;
    /** Top-level YAML appended to the estate (e.g. `routing:` rules). */
    estate?: string;
    extraModules?: FeatureModule[];
    backend?: Backend;
  } = {},
): Promise<OrderTestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-orders-'));
  const pgdb = opts.backend === 'postgres' ? await freshPostgres() : undefined;
  const yaml = `version: 1
engine:
  workers: 4
systems:
${SYSTEMS.map(
  (s) => `  - id: ${s.id}
    kind: ${s.kind}
    baseUrl: http://127.0.0.1:9
    retry: { maxAttempts: 1000, baseDelayMs: 10, maxDelayMs: 50 }
    circuitBreaker: { consecutiveFailures: 1000, halfOpenAfterMs: 50 }
    limits: { ratePerSecond: 10000, burst: 10000, concurrency: 16 }`,
).join('\n')}
orders:
  backorderRetryIntervalMs: 150
  itemLookupIntervalMs: 20
${opts.orders ?? ''}
${opts.estate ?? DEFAULT_ROUTING}
`;
  const parsed = parseConfig(yaml, 'orders-test.yaml', {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const estate = new CapturingEstate();
  const app = await startQuietApp({
    config: parsed.config,
    dir,
    ...(pgdb ? { storeUrl: pgdb.url } : {}),
    modules: [
      ...MODULES.filter((m) => m.name !== 'systems'),
      estate.module(),
      ...(opts.extraModules ?? []),
    ],
  });
  const key = (await createApiKey(app.store, { name: 'test', roles: ['admin'] })).key;
  const url = app.url!;
  return {
    app,
    url,
    estate,
    key,
    async call(method, path, body, headers = {}) {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text, contentType: res.headers.get('content-type') ?? '' };
    },
    async close() {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
      await pgdb?.drop();
    },
  };
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (let i = 0; i < 100_000 && Date.now() < until; i++) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface OrderSpec {
  id: string;
  channel?: 'web' | 'mobile' | 'store' | 'marketplace';
  lines?: Array<{ sku: string; quantity: number; price: number }>;
  method?: 'ship' | 'pickup' | 'store_sale';
  location?: string;
  email?: string;
  sourceRef?: { system: string; id: string };
  commerceId?: string;
  taxed?: boolean;
  placedAt?: string;
}

/** A canonical order whose totals add up. */
export function canonicalOrder(spec: OrderSpec) {
  const lines = (spec.lines ?? [{ sku: 'MM-00001', quantity: 1, price: 2500 }]).map((l, i) => {
    const value = l.quantity * l.price;
    const tax = spec.taxed === false ? 0 : Math.round((value * 19) / 119);
    return {
      lineId: String(i + 1),
      sku: l.sku,
      quantity: l.quantity,
      unitPrice: { amount: l.price, currency: 'EUR' },
      discounts: [],
      taxes:
        spec.taxed === false
          ? []
          : [{ amount: { amount: tax, currency: 'EUR' }, rateBasisPoints: 1900 }],
    };
  });
  const subtotal = lines.reduce((a, l) => a + l.quantity * l.unitPrice.amount, 0);
  const taxTotal = lines.reduce((a, l) => a + l.taxes.reduce((b, t) => b + t.amount.amount, 0), 0);
  const method = spec.method ?? 'ship';
  const eur = (amount: number) => ({ amount, currency: 'EUR' });
  return {
    id: spec.id,
    channel: spec.channel ?? 'web',
    externalIds: spec.commerceId ? [{ system: 'commerce', id: spec.commerceId }] : [],
    customer: spec.sourceRef
      ? { sourceRef: spec.sourceRef, ...(spec.email ? { email: spec.email } : {}) }
      : { email: spec.email ?? 'ada@example.com' },
    currency: 'EUR',
    pricesIncludeTax: true,
    lines,
    fulfilment:
      method === 'ship'
        ? { method }
        : method === 'pickup'
          ? { method, pickupLocation: spec.location ?? 'STORE-BER-01' }
          : { method, storeLocation: spec.location ?? 'STORE-BER-01' },
    ...(method === 'ship'
      ? {
          shippingAddress: {
            name: 'Ada Lovelace',
            lines: ['Hauptstrasse 1'],
            city: 'Berlin',
            postalCode: '10115',
            country: 'DE',
          },
        }
      : {}),
    totals: {
      subtotal: eur(subtotal),
      discountTotal: eur(0),
      shippingTotal: eur(0),
      taxTotal: eur(taxTotal),
      grandTotal: eur(subtotal),
    },
    placedAt: spec.placedAt ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    region: 'eu',
  };
}

let traceCounter = 0;

/** A fresh W3C traceparent. */
export function newTraceparent(): string {
  traceCounter++;
  const hex = (n: number, len: number) => n.toString(16).padStart(len, '0');
  const trace = `${hex(Date.now(), 16)}${hex(traceCounter, 8)}${hex(Math.floor(Math.random() * 0xffffffff), 8)}`;
  return `00-${trace}-${hex(traceCounter + 1, 16)}-01`;
}

export function cloudEvent(type: string, id: string, data: unknown, traceparent?: string) {
  return {
    specversion: '1.0',
    id,
    source: '/tests/orders',
    type: `com.middlemart.${type}.v1`,
    time: new Date().toISOString(),
    data,
    ...(traceparent ? { traceparent } : {}),
  };
}

/** Sets on-hand stock through the canonical ingest (a stock count per SKU and location). */
export async function setStock(
  t: OrderTestApp,
  levels: Array<{ sku: string; location: string; count: number }>,
  sequence: number,
): Promise<void> {
  for (const l of levels) {
    const res = await t.call(
      'POST',
      '/v1/events',
      cloudEvent('inventory.adjusted', `count-${l.sku}-${l.location}-${sequence}`, {
        sku: l.sku,
        location: l.location,
        reason: 'cycle_count',
        count: l.count,
        sourceSystem: 'wms',
        sourceSequence: sequence,
        sourceTimestamp: new Date(Date.now() - 1000).toISOString(),
      }),
    );
    if (res.status !== 202) throw new Error(`stock count refused: ${res.status} ${res.text}`);
  }
}

/** Posts `order.created` through the canonical ingest. */
export async function placeOrder(t: OrderTestApp, spec: OrderSpec, traceparent?: string) {
  const res = await t.call(
    'POST',
    '/v1/events',
    cloudEvent('order.created', `evt-${spec.id}`, canonicalOrder(spec), traceparent),
  );
  if (res.status !== 202) throw new Error(`order refused: ${res.status} ${res.text}`);
  return res.json as { id: string; traceId: string };
}

export async function orderState(t: OrderTestApp, id: string): Promise<any> {
  const res = await t.call('GET', `/v1/orders/${encodeURIComponent(id)}`);
  return res.status === 200 ? res.json : undefined;
}

export async function waitForState(t: OrderTestApp, id: string, state: string, timeoutMs?: number) {
  return eventually(
    async () => {
      const o = await orderState(t, id);
      return o?.state === state ? o : undefined;
    },
    `order ${id} in state ${state}`,
    timeoutMs,
  );
}
