import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer, DEFAULT_BODY_LIMIT_BYTES } from '../../src/api/server.js';
import { PROBLEM_CONTENT_TYPE, ProblemError } from '../../src/api/problem.js';
import { parseTraceparent } from '../../src/observability/trace-context.js';
import { capturingLogger, fakeDeps } from './helpers.js';

const CALLER_TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function assertProblem(
  res: { statusCode: number; headers: Record<string, unknown>; json: () => unknown },
  status: number,
  slug: string,
): Record<string, unknown> {
  assert.equal(res.statusCode, status);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  assert.equal(body.type, `https://middlemart.dev/problems/${slug}`);
  assert.equal(body.status, status);
  assert.equal(typeof body.title, 'string');
  assert.equal(body.instance, `urn:middlemart:request:${String(res.headers['x-request-id'])}`);
  return body;
}

void test('GET /healthz answers 200 {status: ok} even when not ready', async (t) => {
  const server = await buildServer(fakeDeps({ ready: async () => false }), {
    logger: capturingLogger().logger,
  });
  t.after(() => server.close());
  const res = await server.inject({ method: 'GET', url: '/healthz' });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), { status: 'ok' });
});

void test('GET /readyz is 200 when ready, 503 problem when not or when the check throws', async (t) => {
  let state: boolean | Error = true;
  const server = await buildServer(
    fakeDeps({
      ready: async () => {
        if (state instanceof Error) throw state;
        return state;
      },
    }),
    { logger: capturingLogger().logger },
  );
  t.after(() => server.close());
  const ok = await server.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(ok.json(), { status: 'ready' });

  state = false;
  const notReady = await server.inject({ method: 'GET', url: '/readyz' });
  const body = assertProblem(notReady, 503, 'not-ready');
  assert.match(String(body.detail), /store/);
  assert.equal(notReady.headers['retry-after'], '1');

  state = new Error('connect ECONNREFUSED 10.0.0.7:5432');
  const failing = await server.inject({ method: 'GET', url: '/readyz' });
  const failed = assertProblem(failing, 503, 'not-ready');
  assert.ok(!failing.body.includes('ECONNREFUSED'), 'internals leaked');
  assert.match(String(failed.detail), /readiness check failed/);
});

void test('an unknown route is a 404 problem', async (t) => {
  const server = await buildServer(fakeDeps(), { logger: capturingLogger().logger });
  t.after(() => server.close());
  const res = await server.inject({ method: 'GET', url: '/v1/nothing-here?x=1' });
  const body = assertProblem(res, 404, 'not-found');
  assert.equal(body.detail, 'No route GET /v1/nothing-here.');
});

void test('malformed JSON is a 400 problem naming the position when the parser gives one', async (t) => {
  const server = await buildServer(fakeDeps(), { logger: capturingLogger().logger });
  t.after(() => server.close());
  const res = await server.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json' },
    payload: '{"id": 1,',
  });
  const body = assertProblem(res, 400, 'malformed-json');
  assert.match(String(body.detail), /^malformed JSON body/);
  const other = await server.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json' },
    payload: '{"a":1,}',
  });
  const positioned = assertProblem(other, 400, 'malformed-json');
  assert.equal(positioned.position, 7);
  assert.match(String(positioned.detail), /position 7/);
});

void test('an empty JSON body and a __proto__ key are 400 malformed-json', async (t) => {
  const server = await buildServer(fakeDeps(), { logger: capturingLogger().logger });
  t.after(() => server.close());
  const empty = await server.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json' },
    payload: '',
  });
  assertProblem(empty, 400, 'malformed-json');
  const poisoned = await server.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json' },
    payload:
      '{"specversion":"1.0","id":"e","source":"s","type":"com.middlemart.x","__proto__":{"admin":true}}',
  });
  const body = assertProblem(poisoned, 400, 'malformed-json');
  assert.match(String(body.detail), /__proto__/);
});

void test('a body over the limit is a 413 problem; the default limit is 1 MiB', async (t) => {
  assert.equal(DEFAULT_BODY_LIMIT_BYTES, 1024 * 1024);
  const deps = fakeDeps();
  const server = await buildServer(deps, { logger: capturingLogger().logger, bodyLimitBytes: 64 });
  t.after(() => server.close());
  const res = await server.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({
      specversion: '1.0',
      id: 'e1',
      source: 's',
      type: 'com.middlemart.t',
      data: 'x'.repeat(200),
    }),
  });
  const body = assertProblem(res, 413, 'body-too-large');
  assert.match(String(body.detail), /64 bytes/);
  assert.equal(deps.acceptCalls.length, 0);

  const big = await buildServer(fakeDeps(), { logger: capturingLogger().logger });
  t.after(() => big.close());
  const over = await big.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ data: 'x'.repeat(DEFAULT_BODY_LIMIT_BYTES) }),
  });
  assertProblem(over, 413, 'body-too-large');
});

void test('a body of another media type is a 415 problem', async (t) => {
  const deps = fakeDeps();
  const server = await buildServer(deps, { logger: capturingLogger().logger });
  t.after(() => server.close());
  for (const contentType of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/xml',
  ]) {
    const res = await server.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': contentType },
      payload: 'id=1',
    });
    const body = assertProblem(res, 415, 'unsupported-media-type');
    assert.match(String(body.detail), new RegExp(contentType.replace(/[+.]/g, '\\$&')));
  }
  assert.equal(deps.acceptCalls.length, 0);
});

void test('an unexpected throw is a 500 problem without internals, logged with the request id', async (t) => {
  const log = capturingLogger();
  const server = await buildServer(fakeDeps(), { logger: log.logger });
  server.get('/boom', { config: { access: ['admin'] } }, async () => {
    throw new Error('password=hunter2 at /srv/db.ts:42');
  });
  server.get('/typed', { config: { access: ['admin'] } }, async () => {
    throw new ProblemError(409, 'idempotency-key-reused', { detail: 'typed detail' });
  });
  server.get('/client-mistake', { config: { access: ['admin'] } }, async () => {
    throw Object.assign(new Error('bad thing the client did'), { statusCode: 422 });
  });
  t.after(() => server.close());

  const res = await server.inject({
    method: 'GET',
    url: '/boom',
    headers: { 'x-request-id': 'req-boom-1' },
  });
  const body = assertProblem(res, 500, 'internal-error');
  assert.ok(!res.body.includes('hunter2'), 'error message leaked');
  assert.ok(!res.body.includes('db.ts'), 'stack leaked');
  assert.match(String(body.detail), /req-boom-1/);
  const logged = log.records().find((r) => r.msg === 'unexpected error');
  assert.ok(logged, 'the error is logged');
  assert.equal(logged.requestId, 'req-boom-1');
  assert.equal(logged.level, 'error');

  const typed = await server.inject({ method: 'GET', url: '/typed' });
  assert.equal(assertProblem(typed, 409, 'idempotency-key-reused').detail, 'typed detail');

  const client = await server.inject({ method: 'GET', url: '/client-mistake' });
  assertProblem(client, 422, 'bad-request');
});

void test('x-request-id is reused when acceptable, generated otherwise, and echoed', async (t) => {
  const server = await buildServer(fakeDeps(), { logger: capturingLogger().logger });
  t.after(() => server.close());
  const given = await server.inject({
    method: 'GET',
    url: '/healthz',
    headers: { 'x-request-id': 'abc-123' },
  });
  assert.equal(given.headers['x-request-id'], 'abc-123');
  const none = await server.inject({ method: 'GET', url: '/healthz' });
  assert.match(String(none.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  const hostile = await server.inject({
    method: 'GET',
    url: '/healthz',
    headers: { 'x-request-id': 'a'.repeat(500) },
  });
  assert.match(String(hostile.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  const a = await server.inject({ method: 'GET', url: '/healthz' });
  assert.notEqual(a.headers['x-request-id'], none.headers['x-request-id']);
});

void test('traceparent: a caller trace is continued with a child span; none or invalid starts a trace', async (t) => {
  const log = capturingLogger();
  const server = await buildServer(fakeDeps(), { logger: log.logger });
  t.after(() => server.close());
  const continued = await server.inject({
    method: 'GET',
    url: '/nothing',
    headers: { traceparent: CALLER_TRACE },
  });
  const out = parseTraceparent(String(continued.headers.traceparent));
  assert.ok(out);
  assert.equal(out.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.notEqual(out.parentId, '00f067aa0ba902b7');
  // The request's log lines carry the trace id.
  assert.ok(log.records().some((r) => r.traceId === '4bf92f3577b34da6a3ce929d0e0e4736'));

  const fresh = await server.inject({ method: 'GET', url: '/healthz' });
  const started = parseTraceparent(String(fresh.headers.traceparent));
  assert.ok(started);
  assert.notEqual(started.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');

  const invalid = await server.inject({
    method: 'GET',
    url: '/healthz',
    headers: { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' },
  });
  const restarted = parseTraceparent(String(invalid.headers.traceparent));
  assert.ok(restarted);
  assert.notEqual(restarted.traceId, '00000000000000000000000000000000');
});

void test('buildServer listens on a loopback ephemeral port when given port 0', async (t) => {
  const server = await buildServer(fakeDeps(), {
    logger: capturingLogger().logger,
    host: '127.0.0.1',
    port: 0,
  });
  t.after(() => server.close());
  const address = server.server.address();
  assert.ok(address && typeof address === 'object');
  const res = await fetch(`http://127.0.0.1:${address.port}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
  assert.equal(PROBLEM_CONTENT_TYPE, 'application/problem+json');
});
