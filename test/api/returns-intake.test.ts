// POST /v1/returns over HTTP against the real app: a canonical return is accepted as
// return.requested, partitioned by the original order id (so it queues behind the order), with
// the caller's trace; Idempotency-Key required with Stripe's semantics; bad fields named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { priorityRank } from '../../src/runtime/queue.js';
import { startTestApp, type TestApp } from './app-helpers.js';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const TRACEPARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;

function storeReturn(id = 'rma-1') {
  return {
    id,
    orderId: 'commerce-1000000000042',
    status: 'requested',
    lines: [{ orderLineId: '1', sku: 'MM-00001', quantity: 1, reason: 'size_or_fit' }],
    refundMethod: 'original_payment',
    currency: 'EUR',
    returnLocation: { kind: 'store', location: 'STORE-BER-01' },
    requestedAt: '2026-11-28T07:30:00Z',
  };
}

async function messages(api: TestApp) {
  return api.app.store.query<{
    id: string;
    type: string;
    partition_key: string;
    priority: number;
    payload: string;
    traceparent: string | null;
  }>('SELECT id, type, partition_key, priority, payload, traceparent FROM messages ORDER BY seq');
}

void test('a return is accepted as return.requested, queued behind its original order', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const res = await api.call('POST', '/v1/returns', {
    key,
    body: storeReturn(),
    headers: { 'idempotency-key': 'return:rma-1', traceparent: TRACEPARENT },
  });
  assert.equal(res.status, 202, res.text);
  const answer = res.json() as { id: string; returnId: string; orderId: string; traceId: string };
  assert.equal(answer.returnId, 'rma-1');
  assert.equal(answer.orderId, 'commerce-1000000000042');
  assert.equal(answer.traceId, TRACE_ID);
  const rows = await messages(api);
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.id, answer.id);
  assert.equal(rows[0]!.type, 'com.middlemart.return.requested.v1');
  assert.equal(rows[0]!.partition_key, 'commerce-1000000000042');
  assert.equal(rows[0]!.priority, priorityRank('critical'));
  const event = api.app.engine.readPayload(rows[0]!.payload) as { subject: string; data: unknown };
  assert.equal(event.subject, 'rma-1');
  assert.deepEqual(event.data, storeReturn());
});

void test('returns: key required, replay answered the same, other body 409, bad fields named', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  assert.equal((await api.call('POST', '/v1/returns', { key, body: storeReturn() })).status, 400);

  const headers = { 'idempotency-key': 'r-1' };
  const first = await api.call('POST', '/v1/returns', { key, body: storeReturn(), headers });
  const again = await api.call('POST', '/v1/returns', { key, body: storeReturn(), headers });
  assert.equal(first.status, 202);
  assert.equal(again.status, 202);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(again.json(), first.json());
  const other = await api.call('POST', '/v1/returns', {
    key,
    body: storeReturn('rma-2'),
    headers,
  });
  assert.equal(other.status, 409);

  const bad = {
    ...storeReturn('rma-3'),
    lines: [{ orderLineId: '1', sku: 'MM-1', quantity: -1, reason: 'bored' }],
  };
  const res = await api.call('POST', '/v1/returns', {
    key,
    body: bad,
    headers: { 'idempotency-key': 'r-3' },
  });
  assert.equal(res.status, 400);
  const paths = (res.json() as { errors: Array<{ path: string }> }).errors.map((e) => e.path);
  assert.ok(paths.includes('lines[0].quantity'), paths.join());
  assert.ok(paths.includes('lines[0].reason'), paths.join());
  assert.equal((await messages(api)).length, 1);
});
