import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fullJitterBackoffMs,
  parseRetryAfterMs,
  retryDelayMs,
} from '../../../src/runtime/delivery/backoff.js';
import { createDeliveryGate } from '../../../src/runtime/delivery/gate.js';
import { FakeClock, seededRandom } from './fake-clock.js';
import { policy } from './policies.js';

const retry = { baseDelayMs: 100, maxDelayMs: 10_000 };

void test('full-jitter backoff stays within [0, min(max, base·2^(n-1))) and grows with the attempt', () => {
  const random = seededRandom(42);
  const means: number[] = [];
  for (let attempt = 1; attempt <= 10; attempt++) {
    const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
    let sum = 0;
    let highest = 0;
    let lowest = Infinity;
    const samples = 2_000;
    for (let i = 0; i < samples; i++) {
      const delay = fullJitterBackoffMs(attempt, retry, random);
      assert.ok(Number.isInteger(delay), `integer delay, got ${delay}`);
      assert.ok(
        delay >= 0 && delay < ceiling,
        `attempt ${attempt}: ${delay} outside [0, ${ceiling})`,
      );
      sum += delay;
      highest = Math.max(highest, delay);
      lowest = Math.min(lowest, delay);
    }
    // Full jitter spreads over the whole range, not around the ceiling.
    assert.ok(highest > ceiling * 0.95, `attempt ${attempt}: highest ${highest} of ${ceiling}`);
    assert.ok(lowest < ceiling * 0.05, `attempt ${attempt}: lowest ${lowest} of ${ceiling}`);
    const mean = sum / samples;
    assert.ok(Math.abs(mean - ceiling / 2) < ceiling * 0.05, `attempt ${attempt}: mean ${mean}`);
    means.push(mean);
  }
  // Doubling until the cap (100·2^7 = 12 800 > 10 000), flat after.
  for (let i = 1; i < 7; i++) {
    const ratio = (means[i] ?? 0) / (means[i - 1] ?? 1);
    assert.ok(ratio > 1.8 && ratio < 2.2, `mean ratio ${ratio} at attempt ${i + 1}`);
  }
});

void test('full-jitter backoff is exactly random × ceiling and survives huge attempt numbers', () => {
  assert.equal(
    fullJitterBackoffMs(1, retry, () => 0),
    0,
  );
  assert.equal(
    fullJitterBackoffMs(1, retry, () => 0.5),
    50,
  );
  assert.equal(
    fullJitterBackoffMs(3, retry, () => 0.5),
    200,
  );
  assert.equal(
    fullJitterBackoffMs(4, retry, () => 0.999),
    799,
  );
  assert.equal(
    fullJitterBackoffMs(40, retry, () => 0.5),
    5_000,
  );
  assert.equal(
    fullJitterBackoffMs(100_000, retry, () => 0.5),
    5_000,
  );
  assert.equal(
    fullJitterBackoffMs(100_000, { baseDelayMs: 0, maxDelayMs: 10 }, () => 0.5),
    0,
  );
});

void test('Retry-After is read as delay-seconds or as an HTTP-date', () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  assert.equal(parseRetryAfterMs('120', now), 120_000);
  assert.equal(parseRetryAfterMs(' 3 ', now), 3_000);
  assert.equal(parseRetryAfterMs('0', now), 0);
  assert.equal(parseRetryAfterMs(new Date(now + 30_000).toUTCString(), now), 30_000);
  assert.equal(parseRetryAfterMs('Thu, 01 Jan 2026 12:01:00 GMT', now), 60_000);
  assert.equal(parseRetryAfterMs('Thu, 01 Jan 2026 11:00:00 GMT', now), 0, 'a past date means now');
  assert.equal(parseRetryAfterMs('soon', now), undefined);
  assert.equal(parseRetryAfterMs('-5', now), undefined);
  assert.equal(parseRetryAfterMs('', now), undefined);
  assert.equal(parseRetryAfterMs(undefined, now), undefined);
});

void test('Retry-After wins over backoff, capped at maxDelayMs; unreadable falls back to backoff', () => {
  const now = Date.UTC(2026, 0, 1);
  const half = (): number => 0.5;
  assert.equal(retryDelayMs(1, retry, '7', now, half), 7_000);
  assert.equal(retryDelayMs(1, retry, '3600', now, half), 10_000);
  assert.equal(retryDelayMs(1, retry, new Date(now + 86_400_000).toUTCString(), now, half), 10_000);
  assert.equal(retryDelayMs(3, retry, 'garbage', now, half), 200);
  assert.equal(retryDelayMs(3, retry, undefined, now, half), 200);
});

void test('the gate honours Retry-After (seconds and date, capped) and otherwise backs off with jitter', async () => {
  const clock = new FakeClock();
  const gate = createDeliveryGate(
    [
      policy({
        retry: { maxAttempts: 10, ...retry },
        circuitBreaker: { consecutiveFailures: 100, halfOpenAfterMs: 1_000 },
      }),
    ],
    {
      now: clock.now,
      schedule: clock.schedule,
      random: () => 0.25,
    },
  );
  const answer = (status: number, retryAfter?: string) => () =>
    Promise.resolve(retryAfter === undefined ? { status } : { status, retryAfter });
  const attempt = (n: number, send: ReturnType<typeof answer>) =>
    gate.attempt({ destination: 'erp', idempotencyKey: 'k', attempt: n, send });

  assert.deepEqual(await attempt(1, answer(429, '7')), {
    kind: 'retry',
    afterMs: 7_000,
    error: 'HTTP 429 Too Many Requests',
    status: 429,
    latencyMs: 0,
  });
  const date = new Date(clock.now() + 4_000).toUTCString();
  assert.equal(((await attempt(1, answer(503, date))) as { afterMs: number }).afterMs, 4_000);
  assert.equal(((await attempt(1, answer(503, '99999'))) as { afterMs: number }).afterMs, 10_000);
  // No Retry-After: 0.25 × min(10 000, 100 × 2^(n-1)).
  assert.equal(((await attempt(1, answer(500))) as { afterMs: number }).afterMs, 25);
  assert.equal(((await attempt(4, answer(502))) as { afterMs: number }).afterMs, 200);
  assert.equal(((await attempt(9, answer(504))) as { afterMs: number }).afterMs, 2_500);
});
