// Starts the real composition root on a temporary SQLite file (no sandbox), with helpers to mint
// keys of any role and call the API over loopback HTTP.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../../src/app.js';
import { createApiKey } from '../../src/api/auth/api-keys.js';
import type { Role } from '../../src/api/auth/roles.js';
import type { RateTier } from '../../src/api/limits.js';
import type { JwtOptions } from '../../src/api/auth/jwt.js';
import { parseConfig } from '../../src/config/load.js';
import type { Logger } from 'pino';
import type { Tracing } from '../../src/observability/tracing.js';
import { startQuietApp } from '../support/app.js';

const ESTATE = `version: 1
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
    connector: custom
  - id: wms
    kind: wms
    baseUrl: http://127.0.0.1:9
`;

export interface TestApp {
  app: App;
  url: string;
  key(roles: Role[], tier?: string): Promise<string>;
  call(
    method: string,
    path: string,
    opts?: { key?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<{ status: number; headers: Headers; text: string; json: () => unknown }>;
  close(): Promise<void>;
}

export async function startTestApp(
  opts: {
    rateTiers?: Record<string, RateTier>;
    workers?: boolean;
    logger?: Logger;
    jwt?: JwtOptions;
    /** The estate config (YAML) instead of the default one-ERP estate. */
    estate?: string;
    tracing?: Tracing;
  } = {},
): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-api-'));
  const parsed = parseConfig(opts.estate ?? ESTATE, 'test.yaml', {});
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const config = {
    ...parsed.config,
    engine: {
      ...parsed.config.engine,
      roles: opts.workers === false ? (['api'] as const) : parsed.config.engine.roles,
    },
  } as typeof parsed.config;
  const app = await startQuietApp({
    config,
    dir,
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.jwt ? { jwt: opts.jwt } : {}),
    ...(opts.tracing ? { tracing: opts.tracing } : {}),
    ...(opts.rateTiers ? { rateTiers: opts.rateTiers } : {}),
  });
  const url = app.url!;
  return {
    app,
    url,
    key: async (roles, tier) =>
      (
        await createApiKey(app.store, {
          name: `test ${roles.join('+')}`,
          roles,
          ...(tier ? { tier } : {}),
        })
      ).key,
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
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A canonical inventory adjustment the catalogue accepts. */
export function adjustment(id: string, count: number, sku = 'SKU-1') {
  return {
    specversion: '1.0',
    id,
    source: '/wms/dc-eu-1',
    type: 'com.middlemart.inventory.adjusted.v1',
    time: '2026-11-28T10:00:00Z',
    data: {
      sku,
      location: 'DC-EU-1',
      reason: 'cycle_count',
      count,
      sourceSystem: 'wms',
      sourceSequence: count,
      sourceTimestamp: '2026-11-28T10:00:00Z',
    },
  };
}
