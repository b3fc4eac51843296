// Authentication and roles, end to end: the real app on a temporary SQLite file, real keys, real
// HTTP. The table-driven test walks EVERY registered route: each must declare an access rule, and
// each role is let through or refused (403 naming the roles) exactly as the rule says. A new
// route without a rule fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holds, ROLES, type Role } from '../../src/api/auth/roles.js';
import { registeredRoutes } from '../../src/api/server.js';
import { revokeApiKey, parseApiKey } from '../../src/api/auth/api-keys.js';
import { adjustment, startTestApp } from './app-helpers.js';
import { capturingLogger } from './helpers.js';

const UNAUTHORIZED = 'https://middlemart.dev/problems/unauthorized';
const FORBIDDEN = 'https://middlemart.dev/problems/forbidden';

/** A concrete path for a route pattern (parameters filled, wildcards given a file name). */
function pathOf(url: string): string {
  return url
    .replace(/:prefix/g, '0123456789ab')
    .replace(/:[A-Za-z_]+/g, 'x')
    .replace(/\*$/, 'index.html');
}

void test('every registered route declares an access rule that the hook enforces per role', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const keys = new Map<Role, string>();
  for (const role of ROLES) keys.set(role, await api.key([role]));

  const routes = registeredRoutes(api.app.server!);
  assert.ok(routes.length >= 10, `only ${routes.length} routes registered`);
  const missing = routes.filter((r) => r.config.access === undefined);
  assert.deepEqual(
    missing.map((r) => `${r.method} ${r.url}`),
    [],
    'routes without an access rule (set config.access)',
  );

  for (const route of routes) {
    const path = pathOf(route.url);
    const body =
      ['POST', 'PUT', 'PATCH'].includes(route.method) && !route.config.noBody ? {} : undefined;
    const label = `${route.method} ${route.url}`;
    if (route.config.access === 'public') {
      const res = await api.call(route.method, path, { ...(body ? { body } : {}) });
      if (typeof route.config.signature === 'string') {
        // Signed public routes need no key, but an unsigned request is refused (401) or names
        // no configured sender (404).
        assert.ok(
          [401, 404].includes(res.status),
          `${label} is signed-public but got ${res.status}`,
        );
        continue;
      }
      assert.ok(
        res.status !== 401 && res.status !== 403,
        `${label} is public but got ${res.status}`,
      );
      continue;
    }
    const access = route.config.access as readonly Role[];
    const anonymous = await api.call(route.method, path, { ...(body ? { body } : {}) });
    assert.equal(anonymous.status, 401, `${label} without a key`);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer/);
    for (const role of ROLES) {
      const res = await api.call(route.method, path, {
        key: keys.get(role)!,
        ...(body ? { body } : {}),
      });
      const allowed = holds({ keyPrefix: '', name: '', roles: [role], tier: 'standard' }, access);
      if (allowed) {
        assert.ok(
          res.status !== 401 && res.status !== 403,
          `${label} as ${role}: ${res.status} ${res.text}`,
        );
      } else {
        assert.equal(res.status, 403, `${label} as ${role} should be refused`);
        if (route.method !== 'HEAD') {
          const problem = res.json() as { type: string; requiredRoles: string[] };
          assert.equal(problem.type, FORBIDDEN);
          assert.deepEqual(problem.requiredRoles, [...access]);
        }
      }
    }
  }
});

void test('the documented rules: who may call what', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const rules = new Map(
    registeredRoutes(api.app.server!).map((r) => [`${r.method} ${r.url}`, r.config.access]),
  );
  assert.equal(rules.get('GET /healthz'), 'public');
  assert.equal(rules.get('GET /readyz'), 'public');
  assert.equal(rules.get('GET /openapi.json'), 'public');
  assert.deepEqual(rules.get('POST /v1/events'), ['channel', 'admin']);
  assert.equal(rules.get('POST /v1/webhooks/shopify/:systemId'), 'public');
  assert.equal(rules.get('POST /v1/webhooks/wms/:systemId'), 'public');
  assert.deepEqual(rules.get('POST /v1/orders'), ['channel', 'admin']);
  assert.deepEqual(rules.get('POST /v1/returns'), ['channel', 'admin']);
  assert.deepEqual(rules.get('POST /v1/stores/:storeId/batches'), ['channel', 'admin']);
  assert.deepEqual(rules.get('GET /v1/stores/:storeId/sequence-gaps'), [
    'channel',
    'operator',
    'admin',
  ]);
  assert.deepEqual(rules.get('POST /v1/webhook-subscriptions'), ['channel', 'admin']);
  for (const r of [
    'GET /v1/ops/dead-letters',
    'GET /v1/ops/dead-letters/:id',
    'POST /v1/ops/dead-letters/:id/replay',
    'POST /v1/ops/replays',
    'GET /v1/ops/queues',
    'GET /metrics',
  ]) {
    assert.deepEqual(rules.get(r), ['operator', 'admin'], r);
  }
  assert.deepEqual(rules.get('GET /v1/audit'), ['auditor', 'admin']);
  assert.deepEqual(rules.get('POST /v1/admin/keys'), ['admin']);
  assert.deepEqual(rules.get('DELETE /v1/admin/keys/:prefix'), ['admin']);
});

void test('missing, malformed, unknown, wrong-secret and revoked keys are 401 problems', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const good = await api.key(['channel']);
  const parsed = parseApiKey(good)!;
  const wrongSecret = `mm_${parsed.prefix}_${'A'.repeat(43)}`;
  const unknown = `mm_ffffffffffff_${parsed.secret}`;

  const ok = await api.call('POST', '/v1/events', { key: good, body: adjustment('a-1', 1) });
  assert.equal(ok.status, 202, ok.text);

  for (const [what, headers] of [
    ['no header', {}],
    ['basic auth', { authorization: 'Basic dXNlcjpwYXNz' }],
    ['not a key', { authorization: 'Bearer hello' }],
    ['wrong secret', { authorization: `Bearer ${wrongSecret}` }],
    ['unknown prefix', { authorization: `Bearer ${unknown}` }],
  ] as const) {
    const res = await api.call('POST', '/v1/events', { headers, body: adjustment('a-2', 2) });
    assert.equal(res.status, 401, what);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal((res.json() as { type: string }).type, UNAUTHORIZED);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="middlemart"/);
  }

  assert.equal(await revokeApiKey(api.app.store, parsed.prefix), true);
  const revoked = await api.call('POST', '/v1/events', { key: good, body: adjustment('a-3', 3) });
  assert.equal(revoked.status, 401);

  // Unknown paths need a key too, then answer 404.
  assert.equal((await api.call('GET', '/v1/nowhere')).status, 401);
  assert.equal(
    (await api.call('GET', '/v1/nowhere', { key: await api.key(['steward']) })).status,
    404,
  );
  // Health and readiness never need one.
  assert.equal((await api.call('GET', '/healthz')).status, 200);
  assert.equal((await api.call('GET', '/readyz')).status, 200);
});

void test('admins create, list and revoke keys over HTTP; the secret is shown once and audited', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const admin = await api.key(['admin']);
  const created = await api.call('POST', '/v1/admin/keys', {
    key: admin,
    body: { name: 'web shop', roles: ['channel'], tier: 'premium' },
  });
  assert.equal(created.status, 201, created.text);
  const { key, record } = created.json() as {
    key: string;
    record: { prefix: string; tier: string };
  };
  assert.match(key, /^mm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
  assert.equal(record.tier, 'premium');

  const list = await api.call('GET', '/v1/admin/keys', { key: admin });
  assert.equal(list.status, 200);
  assert.ok(!list.text.includes(parseApiKey(key)!.secret), 'a listing never shows a secret');
  assert.ok(list.text.includes(record.prefix));

  const bad = await api.call('POST', '/v1/admin/keys', {
    key: admin,
    body: { name: 'x', roles: ['root'] },
  });
  assert.equal(bad.status, 400);
  assert.equal((bad.json() as { errors: Array<{ path: string }> }).errors[0]?.path, 'roles[0]');

  assert.equal(
    (await api.call('DELETE', `/v1/admin/keys/${record.prefix}`, { key: admin })).status,
    204,
  );
  assert.equal(
    (await api.call('DELETE', `/v1/admin/keys/${record.prefix}`, { key: admin })).status,
    404,
  );
  assert.equal((await api.call('DELETE', '/v1/admin/keys/nope', { key: admin })).status, 400);
  assert.equal(
    (await api.call('POST', '/v1/events', { key, body: adjustment('k-1', 1) })).status,
    401,
  );

  const auditor = await api.key(['auditor']);
  const audit = await api.call('GET', '/v1/audit', { key: auditor });
  assert.equal(audit.status, 200, audit.text);
  const actions = (audit.json() as { items: Array<{ action: string; target: string }> }).items;
  assert.deepEqual(
    actions.map((a) => a.action),
    ['key.revoked', 'key.created'],
  );
  assert.ok(actions.every((a) => a.target === record.prefix));
  assert.equal((await api.call('GET', '/v1/audit?cursor=bogus', { key: auditor })).status, 400);
});

void test('request logs name the key by its prefix and never carry its secret', async (t) => {
  const log = capturingLogger('info');
  const api = await startTestApp({ workers: false, logger: log.logger });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const { prefix, secret } = parseApiKey(key)!;
  assert.equal(
    (await api.call('POST', '/v1/events', { key, body: adjustment('l-1', 1) })).status,
    202,
  );
  assert.equal((await api.call('GET', '/v1/ops/queues', { key })).status, 403);
  const text = log.lines.join('');
  assert.ok(!text.includes(secret), 'a secret reached the log');
  assert.ok(
    log.records().some((r) => r.keyPrefix === prefix && r.msg === 'event ingest'),
    'the ingest line names the key prefix',
  );
});
