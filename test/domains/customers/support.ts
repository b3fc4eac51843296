// Starts the real app with the customers module alone (on a temporary SQLite file) and a test
// module whose performers capture every `customer.sync` the domain delivers, with helpers to call
// the API and wait until the engine has nothing left to do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { App } from '../../../src/app.js';
import { createApiKey } from '../../../src/api/auth/api-keys.js';
import type { Role } from '../../../src/api/auth/roles.js';
import { parseConfig } from '../../../src/config/load.js';
import type { SystemAction } from '../../../src/ports/system-actions.js';
import { customersModule } from '../../../src/wiring/customers.js';
import type { FeatureModule } from '../../../src/wiring/index.js';
import { startQuietApp } from '../../support/app.js';

export type SyncAction = Extract<SystemAction, { action: 'customer.sync' }>;

export interface Sent {
  destination: string;
  action: SyncAction;
}

export const ESTATE_WITH_HOLDERS = `version: 1
systems:
  - id: commerce
    kind: shopify
    baseUrl: http://127.0.0.1:9
  - id: pos
    kind: pos
    baseUrl: http://127.0.0.1:9
  - id: crm
    kind: crm
    baseUrl: http://127.0.0.1:9
  - id: loyalty
    kind: loyalty
    baseUrl: http://127.0.0.1:9
fieldOwnership:
  customer:
    email: commerce
customers:
  ownership:
    givenName: crm
    familyName: crm
    loyaltyId: loyalty
  sourceTrust: [crm, loyalty, commerce]
`;

/** A parsed JSON answer, read loosely by the tests (they assert on its shape). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface CustomersTestApp {
  app: App;
  dir: string;
  dbFile: string;
  sent: Sent[];
  key(roles: Role[]): Promise<string>;
  call(
    method: string,
    path: string,
    opts?: { key?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; headers: Headers; text: string; json: () => Json }>;
  /** Waits (bounded) until no message or delivery is waiting or in flight. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export async function startCustomersApp(
  opts: {
    yaml?: string;
    env?: Record<string, string>;
    extraModules?: FeatureModule[];
    captureSystems?: string[];
    /** Run on a fresh PostgreSQL database of MIDDLEMART_TEST_PG_URL's server instead of SQLite. */
    postgres?: boolean;
  } = {},
): Promise<CustomersTestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-customers-'));
  const parsed = parseConfig(opts.yaml ?? ESTATE_WITH_HOLDERS, 'test.yaml', opts.env ?? {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const sent: Sent[] = [];
  const capture: FeatureModule = {
    name: 'capture-customer-sync',
    start(ctx) {
      const systems = opts.captureSystems ?? ctx.config.systems.map((s) => s.id);
      for (const system of systems) {
        ctx.registerAction(system, 'customer.sync', async (action) => {
          sent.push({ destination: system, action: action as SyncAction });
          return { ok: true };
        });
      }
      return {};
    },
  };
  const dbFile = join(dir, 'mm.db');
  let storeUrl = `sqlite:${dbFile}`;
  let dropDatabase: (() => Promise<void>) | undefined;
  if (opts.postgres) {
    const admin = process.env.MIDDLEMART_TEST_PG_URL;
    if (!admin) throw new Error('MIDDLEMART_TEST_PG_URL not set');
    const name = `mm_customers_${randomBytes(5).toString('hex')}`;
    const run = async (sql: string) => {
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    };
    await run(`CREATE DATABASE ${name}`);
    const url = new URL(admin);
    url.pathname = `/${name}`;
    storeUrl = url.toString();
    dropDatabase = () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    // A cluster store has no key file beside it: the key comes from the environment.
    process.env.MIDDLEMART_PII_KEY ??= randomBytes(32).toString('base64');
  }
  let app: App;
  try {
    app = await startQuietApp({
      config: parsed.config,
      dir,
      storeUrl,
      modules: [customersModule, capture, ...(opts.extraModules ?? [])],
    });
  } catch (err) {
    await dropDatabase?.();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const url = app.url!;
  return {
    app,
    dir,
    dbFile,
    sent,
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
    settle: async () => {
      for (let i = 0; i < 400; i++) {
        const s = await app.engine.stats();
        if (
          s.messages.total.depth === 0 &&
          s.messages.inFlight === 0 &&
          s.deliveries.total.depth === 0 &&
          s.deliveries.inFlight === 0
        ) {
          return;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('the engine did not settle');
    },
    close: async () => {
      await app.stop();
      await dropDatabase?.();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every message that failed for good (so a test can show why). */
export async function deadMessages(app: App): Promise<unknown[]> {
  return app.store.query(
    "SELECT type, last_error FROM messages WHERE status = 'dead' UNION ALL SELECT destination AS type, last_error FROM deliveries WHERE status = 'dead'",
  );
}

/** The active golden ids. */
export async function activeCustomers(app: App): Promise<string[]> {
  const rows = await app.store.query<{ id: string }>(
    "SELECT id FROM customer_golden WHERE status = 'active' ORDER BY created_at, id",
  );
  return rows.map((r) => r.id);
}

/** A canonical customer event as a commerce ingress would post it to /v1/events. */
export function customerEvent(
  name: 'customer.created' | 'customer.updated',
  id: string,
  data: Record<string, unknown>,
  time = '2026-11-28T10:00:00Z',
) {
  return {
    specversion: '1.0',
    id,
    source: '/commerce',
    type: `com.middlemart.${name}.v1`,
    time,
    data,
  };
}
