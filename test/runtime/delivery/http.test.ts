import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDeliveryGate } from '../../../src/runtime/delivery/gate.js';
import { httpSender, joinUrl } from '../../../src/runtime/delivery/http.js';
import { policy } from './policies.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

async function stubServer(handle: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(entry);
      handle(req, res, entry);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  after(close);
  return { baseUrl: `http://127.0.0.1:${port}`, seen, close, server };
}

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

void test('every attempt carries the same Idempotency-Key and the traceparent; JSON in and out', async () => {
  let n = 0;
  const stub = await stubServer((_req, res) => {
    n += 1;
    if (n < 3) {
      res.writeHead(503, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ title: 'Busy', detail: 'posting queue full' }));
      return;
    }
    res.writeHead(201, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ erpOrderId: 'SO-1001' }));
  });
  const gate = createDeliveryGate([policy({ timeoutMs: 10_000 })], { random: () => 0 });
  const send = httpSender({
    baseUrl: `${stub.baseUrl}/api/`,
    path: '/sales-orders',
    headers: { Authorization: 'Bearer t0k3n', 'Idempotency-Key': 'must-not-win' },
    body: { orderId: 'o-1', lines: [{ sku: 'A', qty: 2 }] },
    traceparent: TRACEPARENT,
  });
  const outcomes = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    outcomes.push(
      await gate.attempt({
        destination: 'erp',
        idempotencyKey: 'order-o-1/erp-post',
        attempt,
        traceparent: TRACEPARENT,
        send,
      }),
    );
  }
  assert.deepEqual(
    outcomes.map((o) => o.kind),
    ['retry', 'retry', 'delivered'],
  );
  assert.equal(
    (outcomes[0] as { error: string }).error,
    'HTTP 503 Service Unavailable: posting queue full',
  );
  const delivered = outcomes[2];
  assert.ok(delivered?.kind === 'delivered');
  assert.equal(delivered.status, 201);
  assert.deepEqual(delivered.body, { erpOrderId: 'SO-1001' });

  assert.equal(stub.seen.length, 3);
  for (const req of stub.seen) {
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/api/sales-orders');
    assert.equal(req.headers['idempotency-key'], 'order-o-1/erp-post');
    assert.equal(req.headers.traceparent, TRACEPARENT);
    assert.equal(req.headers.authorization, 'Bearer t0k3n');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(req.body), { orderId: 'o-1', lines: [{ sku: 'A', qty: 2 }] });
  }
});

void test('Retry-After and non-JSON bodies are mapped into the response', async () => {
  const stub = await stubServer((req, res) => {
    if (req.url === '/limited') {
      res.writeHead(429, { 'retry-after': '3', 'content-type': 'text/plain' });
      res.end('slow down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('not json{');
  });
  const controller = new AbortController();
  const ctx = { signal: controller.signal, idempotencyKey: 'k' };
  const limited = await httpSender({ baseUrl: stub.baseUrl, path: 'limited', body: {} })(ctx);
  assert.deepEqual(limited, { status: 429, retryAfter: '3', body: 'slow down' });
  const broken = await httpSender({ baseUrl: stub.baseUrl, path: 'x', method: 'PUT', body: 1 })(
    ctx,
  );
  assert.deepEqual(broken, { status: 200, body: 'not json{' });

  const gate = createDeliveryGate([policy()]);
  const outcome = await gate.attempt({
    destination: 'erp',
    idempotencyKey: 'k',
    attempt: 1,
    send: httpSender({ baseUrl: stub.baseUrl, path: 'limited', body: {} }),
  });
  assert.equal(outcome.kind, 'retry');
  assert.equal((outcome as { afterMs: number }).afterMs, 3_000);
});

void test('the timeout aborts a hung request', async () => {
  let closed: () => void = () => {};
  const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
  const stub = await stubServer((req) => {
    // Never answers; notices when the client gives up.
    req.socket.on('close', () => closed());
  });
  const gate = createDeliveryGate([policy({ timeoutMs: 1_500 })]);
  const outcome = await gate.attempt({
    destination: 'erp',
    idempotencyKey: 'hung-1',
    attempt: 1,
    send: httpSender({ baseUrl: stub.baseUrl, path: 'orders', body: { a: 1 } }),
  });
  assert.equal(outcome.kind, 'retry');
  assert.equal((outcome as { error: string }).error, 'timed out after 1500 ms');
  assert.equal(stub.seen.length, 1);
  // The abort reaches the wire: the server sees the connection go (generous bound).
  const gaveUp = await Promise.race([
    connectionClosed.then(() => true),
    sleep(10_000, false, { ref: false }),
  ]);
  assert.equal(gaveUp, true, 'the client closed the connection');
  assert.equal(gate.status('erp').inFlight, 0, 'the slot is free once the sender let go');
});

void test('a refused connection is a retryable transport error', async () => {
  const stub = await stubServer((_req, res) => res.end());
  await stub.close();
  const gate = createDeliveryGate([policy({ timeoutMs: 10_000 })]);
  const outcome = await gate.attempt({
    destination: 'erp',
    idempotencyKey: 'k',
    attempt: 1,
    send: httpSender({ baseUrl: stub.baseUrl, path: 'orders', body: {} }),
  });
  assert.equal(outcome.kind, 'retry');
  assert.match((outcome as { error: string }).error, /^transport error: .*ECONNREFUSED/);
});

void test('a response body above maxBodyBytes is dropped, the status kept', async () => {
  const stub = await stubServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ blob: 'x'.repeat(5_000) }));
  });
  const ctx = { signal: new AbortController().signal, idempotencyKey: 'k' };
  const small = await httpSender({ baseUrl: stub.baseUrl, path: 'a', maxBodyBytes: 1_000 })(ctx);
  assert.deepEqual(small, { status: 200 });
  const large = await httpSender({ baseUrl: stub.baseUrl, path: 'a', maxBodyBytes: 10_000 })(ctx);
  assert.equal((large.body as { blob: string }).blob.length, 5_000);
  assert.equal(stub.seen[0]?.headers['content-type'], undefined, 'no body, no content type');
});

void test('joinUrl puts exactly one slash between base and path', () => {
  assert.equal(joinUrl('http://h/api', 'orders'), 'http://h/api/orders');
  assert.equal(joinUrl('http://h/api/', '/orders'), 'http://h/api/orders');
  assert.equal(joinUrl('http://h', '/v1/orders?x=1'), 'http://h/v1/orders?x=1');
});
