// A deprecated route answers with Deprecation, Sunset and a Link to its successor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../src/api/server.js';
import { deprecatedRoute, deprecationHeaders } from '../../src/api/versioning.js';
import { capturingLogger, fakeDeps } from './helpers.js';

const d = {
  deprecatedAt: new Date('2026-11-01T00:00:00Z'),
  sunsetAt: new Date('2027-05-01T00:00:00Z'),
  successor: '/v2/widgets',
};

void test('deprecation headers follow RFC 9745 and RFC 8594', () => {
  assert.deepEqual(deprecationHeaders(d), {
    deprecation: `@${Date.UTC(2026, 10, 1) / 1000}`,
    sunset: 'Sat, 01 May 2027 00:00:00 GMT',
    link: '</v2/widgets>; rel="successor-version"',
  });
});

void test('a deprecated route sends them on every answer, errors included', async (t) => {
  const server = await buildServer(fakeDeps(), { logger: capturingLogger().logger });
  server.get(
    '/v1/widgets',
    { config: { access: ['channel', 'admin'] }, onSend: deprecatedRoute(d) },
    async () => ({ ok: true }),
  );
  t.after(() => server.close());
  const ok = await server.inject({ method: 'GET', url: '/v1/widgets' });
  assert.equal(ok.statusCode, 200);
  assert.equal(ok.headers.deprecation, '@1793491200');
  assert.equal(ok.headers.sunset, 'Sat, 01 May 2027 00:00:00 GMT');
  assert.equal(ok.headers.link, '</v2/widgets>; rel="successor-version"');
});
