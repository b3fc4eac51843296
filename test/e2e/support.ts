// Calls of the e2e tests: JSON over HTTP to Middlemart's API or a sandbox simulator.
/* eslint-disable @typescript-eslint/no-explicit-any -- JSON answers, read field by field in assertions */
import type { App } from '../../src/app.js';
import { createApiKey } from '../../src/api/auth/api-keys.js';
import type { EstateConfig } from '../../src/config/schema.js';
import { startQuietApp } from '../support/app.js';

/**
 * Middlemart for an e2e test: SQLite in `dir`, order polling every 20 ms (backorders every
 * 200 ms), no client rate limits, and an admin API key.
 */
export async function startE2eApp(
  config: EstateConfig,
  dir: string,
): Promise<{ app: App; key: string }> {
  config.orders.itemLookupIntervalMs = 20;
  config.orders.backorderRetryIntervalMs = 200;
  const app = await startQuietApp({ config, dir });
  const key = (await createApiKey(app.store, { name: 'e2e', roles: ['admin'] })).key;
  return { app, key };
}

export interface JsonAnswer {
  status: number;
  text: string;
  json: any;
}

/** One call; a body is sent as JSON, the answer parsed when it has one. */
export async function jsonCall(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonAnswer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, json: text ? (JSON.parse(text) as unknown) : undefined };
}
