import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDeliveryGate } from '../../../src/runtime/delivery/gate.js';
import type { GateEvent } from '../../../src/runtime/delivery/events.js';
import type { DeliveryAttempt, DeliveryOutcome } from '../../../src/runtime/delivery/types.js';
import { TokenBucket } from '../../../src/runtime/delivery/token-bucket.js';
import { FakeClock, flush } from './fake-clock.js';
import { policy } from './policies.js';

function rateGate(perSecond: number, burst: number, timeoutMs = 1_000) {
  const clock = new FakeClock();
  const events: GateEvent[] = [];
  const gate = createDeliveryGate(
    [
      policy({
        timeoutMs,
        rate: { perSecond, burst },
        concurrency: { max: 1_000, adaptive: false },
      }),
    ],
    { now: clock.now, schedule: clock.schedule, onEvent: (e) => events.push(e) },
  );
  const sentAt: number[] = [];
  const send: DeliveryAttempt['send'] = () => {
    sentAt.push(clock.now());
    return Promise.resolve({ status: 200 });
  };
  const attempt = (key: string): Promise<DeliveryOutcome> =>
    gate.attempt({ destination: 'erp', idempotencyKey: key, attempt: 1, send });
  return { clock, gate, events, sentAt, attempt };
}

void test('the token bucket spends the burst at once, then refills at perSecond', async () => {
  const t = rateGate(10, 3, 60_000);
  const start = t.clock.now();
  const outcomes = Array.from({ length: 13 }, (_, i) => t.attempt(`k${i}`));
  await flush();
  assert.equal(t.sentAt.length, 3, 'the burst goes out at once');
  await t.clock.advance(99);
  assert.equal(t.sentAt.length, 3);
  await t.clock.advance(1);
  assert.equal(t.sentAt.length, 4, 'one token per 100 ms');
  await t.clock.advance(900);
  assert.equal(t.sentAt.length, 13);
  assert.ok((await Promise.all(outcomes)).every((o) => o.kind === 'delivered'));
  assert.deepEqual(
    t.sentAt.map((at) => at - start),
    [0, 0, 0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1_000],
  );
  // Over any one-second span, no more than burst + perSecond calls.
  for (const from of t.sentAt) {
    const inSpan = t.sentAt.filter((at) => at >= from && at < from + 1_000).length;
    assert.ok(inSpan <= 13, `${inSpan} calls in a second`);
  }
  const waits = t.events.filter((e) => e.type === 'rate-limited');
  assert.equal(waits.length, 10);
  assert.ok(waits.every((e) => e.type === 'rate-limited' && !e.deferred));
});

void test('calls per second stay at the rate over a long run', async () => {
  const t = rateGate(5, 1, 600_000);
  const outcomes: Array<Promise<DeliveryOutcome>> = [];
  for (let i = 0; i < 50; i++) outcomes.push(t.attempt(`k${i}`));
  await t.clock.advance(10_000);
  await Promise.all(outcomes);
  const start = t.sentAt[0] ?? 0;
  for (let second = 0; second < 10; second++) {
    const n = t.sentAt.filter(
      (at) => at >= start + second * 1_000 && at < start + (second + 1) * 1_000,
    ).length;
    assert.equal(n, 5, `second ${second}: ${n} calls`);
  }
});

void test('a wait longer than the bound is not taken: retry after the time until a token, not sent', async () => {
  const t = rateGate(2, 2, 1_000);
  const first = [t.attempt('a'), t.attempt('b'), t.attempt('c'), t.attempt('d')];
  // a, b: burst. c: waits 500 ms. d: waits 1 000 ms (= the bound, allowed).
  const e = await t.attempt('e'); // would wait 1 500 ms
  assert.deepEqual(e, {
    kind: 'retry',
    afterMs: 1_500,
    error: 'rate limited: next token in 1500 ms',
    latencyMs: 0,
    notSent: true,
  });
  await t.clock.advance(1_000);
  assert.ok((await Promise.all(first)).every((o) => o.kind === 'delivered'));
  assert.equal(t.sentAt.length, 4);
  const deferredEvents = t.events.filter((ev) => ev.type === 'rate-limited' && ev.deferred);
  assert.equal(deferredEvents.length, 1);
});

void test('an open circuit is checked before the rate limit: no token is spent', async () => {
  const t = rateGate(1, 1, 1_000);
  t.gate.updatePolicies([
    policy({
      rate: { perSecond: 1, burst: 1 },
      circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 },
    }),
  ]);
  const failing = await t.gate.attempt({
    destination: 'erp',
    idempotencyKey: 'x',
    attempt: 1,
    send: () => Promise.resolve({ status: 500 }),
  });
  assert.equal(failing.kind, 'retry');
  for (let i = 0; i < 5; i++) assert.equal((await t.attempt(`k${i}`)).kind, 'circuit-open');
  assert.equal(t.events.filter((e) => e.type === 'rate-limited').length, 0);
});

void test('TokenBucket: refund returns an unused token, never above burst', () => {
  let now = 0;
  const bucket = new TokenBucket({ perSecond: 1, burst: 2 }, () => now);
  assert.deepEqual(bucket.reserve(0), { reserved: true, waitMs: 0 });
  assert.deepEqual(bucket.reserve(0), { reserved: true, waitMs: 0 });
  assert.deepEqual(bucket.reserve(0), { reserved: false, waitMs: 1_000 });
  bucket.refund();
  assert.deepEqual(bucket.reserve(0), { reserved: true, waitMs: 0 });
  now += 10_000;
  bucket.refund();
  assert.equal(bucket.tokens, 2);
});
