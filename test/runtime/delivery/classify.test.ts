import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyStatus } from '../../../src/runtime/delivery/classify.js';
import { createDeliveryGate } from '../../../src/runtime/delivery/gate.js';
import type { DeliveryAttempt, DeliveryOutcome } from '../../../src/runtime/delivery/types.js';
import { FakeClock, flush } from './fake-clock.js';
import { policy } from './policies.js';

function makeGate(clock = new FakeClock()) {
  return createDeliveryGate(
    [
      policy({
        // A breaker that never opens here: this file is about classification alone.
        circuitBreaker: { consecutiveFailures: 1_000, halfOpenAfterMs: 1_000 },
        retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 },
      }),
    ],
    { now: clock.now, schedule: clock.schedule, random: () => 0.5 },
  );
}

function attempt(send: DeliveryAttempt['send'], n = 1): DeliveryAttempt {
  return { destination: 'erp', idempotencyKey: 'order-1/erp', attempt: n, send };
}

const TABLE: Array<[number, DeliveryOutcome['kind']]> = [
  [200, 'delivered'],
  [201, 'delivered'],
  [204, 'delivered'],
  [400, 'permanent'],
  [401, 'permanent'],
  [404, 'permanent'],
  [408, 'retry'],
  [409, 'permanent'],
  [422, 'permanent'],
  [425, 'retry'],
  [429, 'retry'],
  [500, 'retry'],
  [502, 'retry'],
  [503, 'retry'],
  [504, 'retry'],
  [301, 'permanent'],
];

void test('the classification table: 2xx delivered, 408/425/429/5xx retry, other statuses permanent', async () => {
  const gate = makeGate();
  for (const [status, kind] of TABLE) {
    const outcome = await gate.attempt(attempt(() => Promise.resolve({ status })));
    assert.equal(outcome.kind, kind, `HTTP ${status}`);
    if (outcome.kind === 'retry' || outcome.kind === 'permanent') {
      assert.equal(outcome.status, status);
      assert.match(outcome.error, new RegExp(`^HTTP ${status}\\b`));
    }
    assert.equal(
      classifyStatus(status),
      kind === 'delivered' ? 'success' : kind === 'retry' ? 'retryable' : 'permanent',
    );
  }
});

void test('a delivered outcome carries the response body; a permanent one its problem detail', async () => {
  const gate = makeGate();
  assert.deepEqual(
    await gate.attempt(
      attempt(() => Promise.resolve({ status: 201, body: { erpOrderId: 'SO-1' } })),
    ),
    { kind: 'delivered', status: 201, latencyMs: 0, body: { erpOrderId: 'SO-1' } },
  );
  const rejected = await gate.attempt(
    attempt(() =>
      Promise.resolve({
        status: 422,
        body: { type: 'x', title: 'Invalid', detail: 'unknown SKU 123' },
      }),
    ),
  );
  assert.deepEqual(rejected, {
    kind: 'permanent',
    error: 'HTTP 422 Unprocessable Entity: unknown SKU 123',
    status: 422,
    latencyMs: 0,
  });
});

void test('a transport error (the sender throws) is retryable', async () => {
  const gate = makeGate();
  const outcome = await gate.attempt(
    attempt(() =>
      Promise.reject(Object.assign(new Error('connect refused'), { code: 'ECONNREFUSED' })),
    ),
  );
  assert.equal(outcome.kind, 'retry');
  assert.equal(
    (outcome as { error: string }).error,
    'transport error: ECONNREFUSED connect refused',
  );
  assert.equal((outcome as { status?: number }).status, undefined);
  // A sender that throws synchronously is a transport failure too.
  const sync = await gate.attempt(
    attempt(() => {
      throw new Error('bad socket');
    }),
  );
  assert.equal(sync.kind, 'retry');
});

void test('a timeout aborts the signal and is retryable', async () => {
  const clock = new FakeClock();
  const gate = makeGate(clock);
  let signal: AbortSignal | undefined;
  const pending = gate.attempt(
    attempt((ctx) => {
      signal = ctx.signal;
      return new Promise(() => {}); // never answers, ignores the signal
    }),
  );
  await flush();
  assert.equal(signal?.aborted, false);
  await clock.advance(999);
  assert.equal(signal?.aborted, false, 'not before the timeout');
  await clock.advance(1);
  assert.equal(signal?.aborted, true);
  assert.equal((signal?.reason as DOMException).name, 'TimeoutError');
  const outcome = await pending;
  assert.equal(outcome.kind, 'retry');
  assert.equal((outcome as { error: string }).error, 'timed out after 1000 ms');
  assert.equal((outcome as { latencyMs: number }).latencyMs, 1_000);
});

void test('a retryable failure on the last attempt becomes permanent with the last error', async () => {
  const gate = makeGate();
  const send = () => Promise.resolve({ status: 503 });
  assert.equal((await gate.attempt(attempt(send, 2))).kind, 'retry');
  assert.deepEqual(await gate.attempt(attempt(send, 3)), {
    kind: 'permanent',
    error: 'attempts exhausted (3 of 3): HTTP 503 Service Unavailable',
    status: 503,
    latencyMs: 0,
  });
  const lastTransport = await gate.attempt(attempt(() => Promise.reject(new Error('reset')), 3));
  assert.equal(lastTransport.kind, 'permanent');
  assert.match((lastTransport as { error: string }).error, /transport error: reset$/);
});
