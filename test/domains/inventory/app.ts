// Starts the real composition root for inventory tests: an estate config of the test's own (ERP,
// channels, inventory section), SQLite in a temporary folder or a PostgreSQL schema of its own,
// with keys minted for the API.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startApp, type App } from '../../../src/app.js';
import { createApiKey } from '../../../src/api/auth/api-keys.js';
import type { Role } from '../../../src/api/auth/roles.js';
import { parseConfig } from '../../../src/config/load.js';
import type { EstateConfig } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/observability/logger.js';
import { inventoryModule } from '../../../src/wiring/inventory.js';
import type { FeatureModule } from '../../../src/wiring/index.js';

export const PG_URL = process.env.MIDDLEMART_TEST_PG_URL;

export interface InventoryTestDb {
  /** The store URL startApp opens (PostgreSQL: the schema selected by search_path). */
  url: string;
  drop(): Promise<void>;
}

export function sqliteDb(): InventoryTestDb {
  const dir = mkdtempSync(join(tmpdir(), 'mm-inv-'));
  return {
    url: `sqlite:${join(dir, 'mm.db')}`,
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function postgresDb(): Promise<InventoryTestDb> {
  if (!PG_URL) throw new Error('MIDDLEMART_TEST_PG_URL not set');
  const schema = `mm_inv_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA "${schema}"`);
  } finally {
    await client.end();
  }
  const u = new URL(PG_URL);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

export const BASE_ESTATE = `version: 1
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
`;

export function estateConfig(yaml: string, env: Record<string, string> = {}): EstateConfig {
  const parsed = parseConfig(yaml, 'test.yaml', env);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return parsed.config;
}

export interface InventoryApp {
  app: App;
  url: string;
  key(roles: Role[]): Promise<string>;
  call(
    method: string,
    path: string,
    opts?: { key?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; headers: Headers; json: () => unknown; text: string }>;
  close(): Promise<void>;
}

export async function startInventoryApp(opts: {
  config?: EstateConfig;
  db?: InventoryTestDb;
  now?: () => number;
  /** The feature modules (default: the inventory module alone). */
  modules?: readonly FeatureModule[];
}): Promise<InventoryApp> {
  const db = opts.db ?? sqliteDb();
  const config = opts.config ?? estateConfig(BASE_ESTATE);
  const app = await startApp({
    config,
    port: 0,
    storeUrl: db.url,
    logger: createLogger({ level: 'silent' }),
    rateTiers: {
      standard: { requestsPerSecond: 1_000_000 },
      premium: { requestsPerSecond: 1_000_000 },
    },
    modules: opts.modules ?? [inventoryModule],
    ...(opts.now ? { now: opts.now } : {}),
  });
  const url = app.url!;
  return {
    app,
    url,
    key: async (roles) =>
      (await createApiKey(app.store, { name: `test ${roles.join('+')}`, roles })).key,
    call: async (method, path, o = {}) => {
      const headers: Record<string, string> = { ...o.headers };
      if (o.key) headers.authorization = `Bearer ${o.key}`;
      if (o.body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${url}${path}`, {
        method,
        headers,
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) };
    },
    close: async () => {
      await app.stop();
      if (!opts.db) await db.drop();
    },
  };
}

/** Waits (bounded) until `check` is true. */
export async function eventually(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 25,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

type AdjustmentReason = 'cycle_count' | 'receipt' | 'sale' | 'correction' | 'return';

/** An inventory.adjusted data object. */
export function adjustmentData(
  sku: string,
  location: string,
  seq: number,
  change: { delta: number } | { count: number },
  opts: { source?: string; at?: number; reason?: AdjustmentReason } = {},
) {
  const reason: AdjustmentReason =
    opts.reason ?? ('count' in change ? 'cycle_count' : change.delta > 0 ? 'receipt' : 'sale');
  return {
    sku,
    location,
    reason,
    ...change,
    sourceSystem: opts.source ?? 'wms',
    sourceSequence: seq,
    sourceTimestamp: new Date(
      opts.at ?? Date.UTC(2026, 10, 28, 10, 0, 0) + seq * 1000,
    ).toISOString(),
  };
}
