// The OpenAPI 3.1 document is generated from the route schemas, so a route without a schema would
// be undocumented and unvalidated: this test fails when any route lacks one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registeredRoutes } from '../../src/api/server.js';
import { startTestApp } from './app-helpers.js';

void test('every route has a schema: params, body, querystring where they apply, and responses', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const problems: string[] = [];
  for (const route of registeredRoutes(api.app.server!)) {
    const label = `${route.method} ${route.url}`;
    const schema = route.schema;
    if (route.method === 'HEAD') continue; // Fastify's twin of a GET route, same schema
    if (schema?.hide === true) {
      // Only the API reference itself is left out of the document.
      if (!(route.url === '/openapi.json' || route.url.startsWith('/docs'))) {
        problems.push(`${label}: hidden from the document`);
      }
      continue;
    }
    if (!schema) {
      problems.push(`${label}: no schema`);
      continue;
    }
    const response = schema.response as Record<string, unknown> | undefined;
    if (!response || !Object.keys(response).some((s) => s.startsWith('2'))) {
      problems.push(`${label}: no success response schema`);
    }
    if (route.config.access !== 'public' && response && !('401' in response && '403' in response)) {
      problems.push(`${label}: 401 and 403 answers not declared`);
    }
    if (route.url.includes(':') && !schema.params) problems.push(`${label}: no params schema`);
    if (['POST', 'PUT', 'PATCH'].includes(route.method) && !schema.body && !route.config.noBody) {
      problems.push(`${label}: no body schema (or config.noBody)`);
    }
    if (
      route.method === 'GET' &&
      !schema.querystring &&
      route.url.startsWith('/v1/ops/dead-letters') &&
      !route.url.includes(':')
    ) {
      problems.push(`${label}: no querystring schema`);
    }
  }
  assert.deepEqual(problems, []);
});

void test('/openapi.json is OpenAPI 3.1 with bearer security, public, and /docs renders it', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const res = await api.call('GET', '/openapi.json');
  assert.equal(res.status, 200);
  const doc = res.json() as {
    openapi: string;
    components: {
      securitySchemes: Record<string, { type: string; scheme: string }>;
      schemas: Record<string, unknown>;
    };
    security: unknown[];
    paths: Record<
      string,
      Record<string, { security?: unknown[]; responses: Record<string, unknown> }>
    >;
  };
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(
    Object.values(doc.components.securitySchemes).map((s) => [s.type, s.scheme]),
    [['http', 'bearer']],
  );
  assert.deepEqual(doc.security, [{ apiKey: [] }]);
  for (const path of [
    '/v1/events',
    '/v1/ops/dead-letters',
    '/v1/ops/dead-letters/{id}',
    '/v1/ops/dead-letters/{id}/replay',
    '/v1/ops/replays',
    '/v1/ops/queues',
    '/v1/admin/keys',
    '/v1/audit',
    '/metrics',
  ]) {
    assert.ok(doc.paths[path], `${path} is documented`);
  }
  assert.deepEqual(doc.paths['/healthz']?.get?.security, []);
  assert.ok(doc.paths['/v1/events']?.post?.responses['401']);
  assert.ok(!doc.paths['/openapi.json'], 'the document does not describe itself');

  const docs = await api.call('GET', '/docs/');
  assert.equal(docs.status, 200);
  assert.match(docs.headers.get('content-type') ?? '', /text\/html/);
  assert.match(docs.text, /swagger/i);
});
