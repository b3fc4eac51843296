// Rate limits per key by SLA tier: each key has its own one-second window; beyond it a 429 problem
// with Retry-After. Public routes are not limited.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tierOf } from '../../src/api/limits.js';
import { startTestApp } from './app-helpers.js';

void test('a key over its tier gets a 429 problem with Retry-After; other keys are unaffected', async (t) => {
  const api = await startTestApp({
    workers: false,
    rateTiers: { standard: { requestsPerSecond: 3 }, premium: { requestsPerSecond: 1000 } },
  });
  t.after(() => api.close());
  const standard = await api.key(['operator']);
  const other = await api.key(['operator']);
  const premium = await api.key(['operator'], 'premium');

  const statuses: number[] = [];
  let limited: Awaited<ReturnType<typeof api.call>> | undefined;
  for (let i = 0; i < 6; i++) {
    const res = await api.call('GET', '/v1/ops/queues', { key: standard });
    statuses.push(res.status);
    if (res.status === 429) limited ??= res;
  }
  assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
  assert.ok(limited, `no 429 in ${statuses.join(',')}`);
  assert.match(limited.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const problem = limited.json() as { type: string; status: number; limit: number };
  assert.equal(problem.type, 'https://middlemart.dev/problems/rate-limited');
  assert.equal(problem.status, 429);
  assert.equal(problem.limit, 3);
  const retryAfter = Number(limited.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`);

  // Limits are per key, and per tier.
  assert.equal((await api.call('GET', '/v1/ops/queues', { key: other })).status, 200);
  for (let i = 0; i < 20; i++) {
    assert.equal((await api.call('GET', '/v1/ops/queues', { key: premium })).status, 200);
  }
  // Health is never limited.
  for (let i = 0; i < 10; i++) assert.equal((await api.call('GET', '/healthz')).status, 200);
});

void test('a key naming an unknown tier is held to the standard tier', () => {
  const tiers = { standard: { requestsPerSecond: 50 }, premium: { requestsPerSecond: 500 } };
  assert.equal(tierOf(tiers, 'gold').requestsPerSecond, 50);
  assert.equal(tierOf(tiers, 'premium').requestsPerSecond, 500);
  assert.equal(tierOf({ bronze: { requestsPerSecond: 5 } }, undefined).requestsPerSecond, 5);
});

void test('a body over the limit is a 413 problem', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const res = await api.call('POST', '/v1/events', {
    key,
    body: { specversion: '1.0', pad: 'x'.repeat(2 * 1024 * 1024) },
  });
  assert.equal(res.status, 413);
  assert.equal(
    (res.json() as { type: string }).type,
    'https://middlemart.dev/problems/body-too-large',
  );
});

void test('rate tiers come from the estate config (server.rateTiers)', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { parseConfig } = await import('../../src/config/load.js');
  const { startApp } = await import('../../src/app.js');
  const { createApiKey } = await import('../../src/api/auth/api-keys.js');
  const { createLogger } = await import('../../src/observability/logger.js');
  const parsed = parseConfig(
    'version: 1\nserver:\n  rateTiers:\n    standard: { requestsPerSecond: 2 }\n    gold: { requestsPerSecond: 1000 }\n',
    'estate.yaml',
    {},
  );
  assert.ok(parsed.ok, JSON.stringify(!parsed.ok && parsed.issues));
  const dir = mkdtempSync(join(tmpdir(), 'mm-tiers-'));
  const app = await startApp({
    config: { ...parsed.config, engine: { ...parsed.config.engine, roles: ['api'] } },
    port: 0,
    storeUrl: `sqlite:${join(dir, 'mm.db')}`,
    logger: createLogger({ level: 'silent' }),
  });
  t.after(async () => {
    await app.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const standard = (await createApiKey(app.store, { name: 's', roles: ['operator'] })).key;
  const gold = (await createApiKey(app.store, { name: 'g', roles: ['operator'], tier: 'gold' }))
    .key;
  const call = async (key: string) =>
    (await fetch(`${app.url}/v1/ops/queues`, { headers: { authorization: `Bearer ${key}` } }))
      .status;
  const s = [
    await call(standard),
    await call(standard),
    await call(standard),
    await call(standard),
  ];
  assert.ok(s.includes(429), `standard: ${s.join(',')}`);
  const g = [await call(gold), await call(gold), await call(gold), await call(gold)];
  assert.deepEqual(g, [200, 200, 200, 200]);

  const bad = parseConfig('version: 1\nserver:\n  rateTiers: {}\n', 'estate.yaml', {});
  assert.equal(bad.ok, false);
});
