import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buildServer } from '../../src/api/server.js';
import type { AcceptRequest, AcceptResult } from '../../src/runtime/types.js';
import { parseTraceparent } from '../../src/observability/trace-context.js';
import { capturingLogger, fakeDeps } from './helpers.js';

const CALLER_TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function orderEvent(overrides: Record<string, unknown> = {}) {
  return {
    specversion: '1.0',
    id: 'evt-1',
    source: 'urn:middlemart:channel:web',
    type: 'com.middlemart.order.created.v1',
    subject: 'ord-1001',
    time: '2026-01-02T03:04:05Z',
    data: { orderId: 'ord-1001', lines: [{ sku: 'SKU-1', quantity: 2 }] },
    ...overrides,
  };
}

/** An idempotent receiver with Stripe's semantics, in memory: enough to drive every outcome. */
function inMemoryInbox() {
  const seen = new Map<string, { hash: string; result: AcceptResult & { outcome: 'accepted' } }>();
  let next = 0;
  return (req: AcceptRequest): AcceptResult => {
    const slot = `${req.source}\u0000${req.idempotencyKey}`;
    const prior = seen.get(slot);
    if (prior) {
      if (prior.hash !== req.requestHash)
        return { outcome: 'conflict', messageId: prior.result.messageId };
      return { ...prior.result, outcome: 'duplicate' };
    }
    next += 1;
    const result = {
      outcome: 'accepted' as const,
      messageId: `msg-${next}`,
      acceptedAt: new Date(Date.UTC(2026, 0, 2, 3, 4, next)).toISOString(),
      ...(req.traceparent ? { traceparent: req.traceparent } : {}),
    };
    seen.set(slot, { hash: req.requestHash, result });
    return result;
  };
}

async function setup(
  outcome?: (req: AcceptRequest, call: number) => AcceptResult | Promise<AcceptResult>,
) {
  const deps = fakeDeps(outcome ? { outcome } : {});
  const log = capturingLogger();
  const server = await buildServer(deps, { logger: log.logger });
  return { deps, server, log };
}

function post(payload: string, headers: Record<string, string> = {}) {
  return {
    method: 'POST' as const,
    url: '/v1/events',
    headers: { 'content-type': 'application/json', ...headers },
    payload,
  };
}

void test('an accepted event is answered 202 {id, traceId, acceptedAt} after accept resolved', async (t) => {
  const { deps, server } = await setup();
  t.after(() => server.close());
  const raw = JSON.stringify(orderEvent());
  const res = await server.inject(
    post(raw, { 'idempotency-key': 'key-1', traceparent: CALLER_TRACE }),
  );
  assert.equal(res.statusCode, 202);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.deepEqual(res.json(), {
    id: 'msg-1',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    acceptedAt: '2026-01-02T03:04:05.000Z',
  });
  assert.equal(res.headers.location, undefined);
  assert.equal(res.headers['idempotent-replayed'], undefined);

  assert.equal(deps.acceptCalls.length, 1);
  const call = deps.acceptCalls[0]!;
  assert.equal(call.source, 'urn:middlemart:channel:web');
  assert.equal(call.idempotencyKey, 'key-1');
  assert.equal(call.requestHash, createHash('sha256').update(raw).digest('hex'));
  assert.equal(call.type, 'com.middlemart.order.created.v1');
  assert.equal(call.partitionKey, 'ord-1001');
  assert.equal(call.priority, 'critical');
  assert.deepEqual(call.payload, orderEvent());
  // The engine gets this request's span, a child of the caller's, and the same one is echoed.
  const span = parseTraceparent(call.traceparent);
  assert.equal(span?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.notEqual(span?.parentId, '00f067aa0ba902b7');
  assert.equal(res.headers.traceparent, call.traceparent);
});

void test('without an Idempotency-Key header the CloudEvent id is the key', async (t) => {
  const { deps, server } = await setup();
  t.after(() => server.close());
  const res = await server.inject(post(JSON.stringify(orderEvent({ id: 'evt-fallback-9' }))));
  assert.equal(res.statusCode, 202);
  assert.equal(deps.acceptCalls[0]?.idempotencyKey, 'evt-fallback-9');
});

void test('application/cloudevents+json is accepted too', async (t) => {
  const { deps, server } = await setup();
  t.after(() => server.close());
  const res = await server.inject({
    ...post(JSON.stringify(orderEvent())),
    headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
  });
  assert.equal(res.statusCode, 202);
  assert.equal(deps.acceptCalls.length, 1);
});

void test('a duplicate is answered with the same 202 body and Idempotent-Replayed: true', async (t) => {
  const { deps, server } = await setup(inMemoryInbox());
  t.after(() => server.close());
  const raw = JSON.stringify(orderEvent());
  const first = await server.inject(
    post(raw, { 'idempotency-key': 'key-dup', traceparent: CALLER_TRACE }),
  );
  // The retry comes from a new trace; the answer still names the trace of the original.
  const again = await server.inject(post(raw, { 'idempotency-key': 'key-dup' }));
  assert.equal(first.statusCode, 202);
  assert.equal(again.statusCode, 202);
  assert.equal(again.headers['idempotent-replayed'], 'true');
  assert.equal(first.headers['idempotent-replayed'], undefined);
  assert.deepEqual(again.json(), first.json());
  assert.equal(deps.acceptCalls.length, 2);
  assert.equal(deps.acceptCalls[1]?.requestHash, deps.acceptCalls[0]?.requestHash);
});

void test('the same key with a different body is a 409 problem', async (t) => {
  const { server } = await setup(inMemoryInbox());
  t.after(() => server.close());
  await server.inject(post(JSON.stringify(orderEvent()), { 'idempotency-key': 'key-c' }));
  const other = await server.inject(
    post(JSON.stringify(orderEvent({ subject: 'ord-2002' })), { 'idempotency-key': 'key-c' }),
  );
  assert.equal(other.statusCode, 409);
  assert.match(String(other.headers['content-type']), /^application\/problem\+json/);
  const body = other.json() as Record<string, unknown>;
  assert.equal(body.type, 'https://middlemart.dev/problems/idempotency-key-reused');
  assert.match(String(body.detail), /key-c/);
  assert.match(String(body.detail), /different request body/);
});

void test('the request hash is of the raw bytes: the same event re-serialised under one key conflicts', async (t) => {
  const { server } = await setup(inMemoryInbox());
  t.after(() => server.close());
  const event = orderEvent();
  const compact = await server.inject(post(JSON.stringify(event), { 'idempotency-key': 'key-r' }));
  const pretty = await server.inject(
    post(JSON.stringify(event, null, 2), { 'idempotency-key': 'key-r' }),
  );
  assert.equal(compact.statusCode, 202);
  assert.equal(pretty.statusCode, 409);
});

void test('back-pressure is a 429 problem with Retry-After in whole seconds', async (t) => {
  const { server } = await setup(() => ({ outcome: 'backpressure', retryAfterSeconds: 2.2 }));
  t.after(() => server.close());
  const res = await server.inject(post(JSON.stringify(orderEvent())));
  assert.equal(res.statusCode, 429);
  assert.equal(res.headers['retry-after'], '3');
  const body = res.json() as Record<string, unknown>;
  assert.equal(body.type, 'https://middlemart.dev/problems/backpressure');
});

void test('an event the catalogue rejects is a 400 problem listing every error with its path', async (t) => {
  const { deps, server } = await setup();
  t.after(() => server.close());
  const res = await server.inject(
    post(
      JSON.stringify(
        orderEvent({
          type: 'com.example.unknown',
          data: { lines: [{ quantity: 1 }, { quantity: 0 }, { quantity: 'x' }] },
        }),
      ),
    ),
  );
  assert.equal(res.statusCode, 400);
  const body = res.json() as { type: string; errors: Array<{ path: string; message: string }> };
  assert.equal(body.type, 'https://middlemart.dev/problems/validation-error');
  assert.deepEqual(
    body.errors.map((e) => e.path),
    ['type', 'data.lines[1].quantity', 'data.lines[2].quantity'],
  );
  assert.equal(deps.acceptCalls.length, 0);
});

void test('a body that is not a CloudEvent envelope is a 400 problem naming the field', async (t) => {
  const { deps, server } = await setup();
  t.after(() => server.close());
  const { id: _id, ...withoutId } = orderEvent();
  const res = await server.inject(post(JSON.stringify(withoutId)));
  assert.equal(res.statusCode, 400);
  const body = res.json() as { type: string; errors: Array<{ path: string; message: string }> };
  assert.equal(body.type, 'https://middlemart.dev/problems/validation-error');
  assert.deepEqual(body.errors, [{ path: 'id', message: 'is required' }]);

  const array = await server.inject(post('[1,2,3]'));
  assert.equal(array.statusCode, 400);
  assert.equal(deps.acceptCalls.length, 0);
});

void test('an invalid Idempotency-Key header is a 400 problem naming the header', async (t) => {
  const { deps, server } = await setup();
  t.after(() => server.close());
  for (const key of ['', 'k'.repeat(256), 'tab\there', 'caf\u00e9']) {
    const res = await server.inject(post(JSON.stringify(orderEvent()), { 'idempotency-key': key }));
    assert.equal(res.statusCode, 400, `key ${JSON.stringify(key)}`);
    const body = res.json() as { type: string; detail: string; errors: Array<{ path: string }> };
    assert.equal(body.type, 'https://middlemart.dev/problems/invalid-idempotency-key');
    assert.match(body.detail, /Idempotency-Key/);
    assert.equal(body.errors[0]?.path, 'headers["idempotency-key"]');
  }
  // The longest valid key passes.
  const ok = await server.inject(
    post(JSON.stringify(orderEvent()), { 'idempotency-key': 'k'.repeat(255) }),
  );
  assert.equal(ok.statusCode, 202);
  assert.equal(deps.acceptCalls.length, 1);
});

void test('an event id unfit as a key, with no header, is a 400 problem', async (t) => {
  const { deps, server } = await setup();
  t.after(() => server.close());
  const res = await server.inject(post(JSON.stringify(orderEvent({ id: 'x'.repeat(300) }))));
  assert.equal(res.statusCode, 400);
  assert.equal(
    (res.json() as { type: string }).type,
    'https://middlemart.dev/problems/invalid-idempotency-key',
  );
  assert.equal(deps.acceptCalls.length, 0);
});

void test('without a traceparent header the event traceparent extension is continued', async (t) => {
  const { deps, server } = await setup();
  t.after(() => server.close());
  const res = await server.inject(post(JSON.stringify(orderEvent({ traceparent: CALLER_TRACE }))));
  assert.equal(res.statusCode, 202);
  assert.equal((res.json() as { traceId: string }).traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(
    parseTraceparent(deps.acceptCalls[0]?.traceparent)?.traceId,
    '4bf92f3577b34da6a3ce929d0e0e4736',
  );
  assert.equal(res.headers.traceparent, deps.acceptCalls[0]?.traceparent);
});

void test('an engine failure is a 500 problem that leaks nothing', async (t) => {
  const { server, log } = await setup(() => {
    throw new Error('SQLITE_BUSY: database is locked /var/lib/middlemart.db');
  });
  t.after(() => server.close());
  const res = await server.inject(post(JSON.stringify(orderEvent())));
  assert.equal(res.statusCode, 500);
  assert.ok(!res.body.includes('SQLITE'), res.body);
  assert.ok(log.records().some((r) => r.msg === 'unexpected error'));
});
