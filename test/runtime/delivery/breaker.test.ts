import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDeliveryGate } from '../../../src/runtime/delivery/gate.js';
import type { GateEvent } from '../../../src/runtime/delivery/events.js';
import type {
  CircuitBreakerPolicy,
  DeliveryAttempt,
  DeliveryResponse,
} from '../../../src/runtime/delivery/types.js';
import { FakeClock, deferred, flush } from './fake-clock.js';
import { policy } from './policies.js';

function setup(circuitBreaker: CircuitBreakerPolicy) {
  const clock = new FakeClock();
  const events: GateEvent[] = [];
  const gate = createDeliveryGate(
    [policy({ circuitBreaker, concurrency: { max: 10, adaptive: false } })],
    {
      now: clock.now,
      schedule: clock.schedule,
      random: () => 0.5,
      onEvent: (e) => events.push(e),
    },
  );
  let calls = 0;
  const send =
    (response: DeliveryResponse | Error): DeliveryAttempt['send'] =>
    () => {
      calls += 1;
      return response instanceof Error ? Promise.reject(response) : Promise.resolve(response);
    };
  const attempt = (s: DeliveryAttempt['send']) =>
    gate.attempt({ destination: 'erp', idempotencyKey: 'k', attempt: 1, send: s });
  const transitions = () =>
    events.flatMap((e) => (e.type === 'circuit' ? [`${e.from}->${e.to}`] : []));
  return { clock, gate, attempt, send, calls: () => calls, transitions };
}

void test('opens after N consecutive failures and short-circuits without calling send', async () => {
  const t = setup({ consecutiveFailures: 3, halfOpenAfterMs: 5_000 });
  await t.attempt(t.send({ status: 500 }));
  await t.attempt(t.send(new Error('reset')));
  assert.equal(t.gate.status('erp').circuit, 'closed');
  await t.attempt(t.send({ status: 504 }));
  assert.equal(t.gate.status('erp').circuit, 'open');
  assert.equal(t.calls(), 3);

  await t.clock.advance(1_000);
  const outcome = await t.attempt(t.send({ status: 200 }));
  assert.deepEqual(outcome, { kind: 'circuit-open', afterMs: 4_000 });
  assert.equal(t.calls(), 3, 'send was not called while open');
  assert.deepEqual(t.transitions(), ['closed->open']);
});

void test('a success resets the consecutive count', async () => {
  const t = setup({ consecutiveFailures: 3, halfOpenAfterMs: 5_000 });
  for (let i = 0; i < 5; i++) {
    await t.attempt(t.send({ status: 500 }));
    await t.attempt(t.send({ status: 500 }));
    await t.attempt(t.send({ status: 200 }));
  }
  assert.equal(t.gate.status('erp').circuit, 'closed');
});

void test('half-opens after the interval, admits one probe at a time, closes on success', async () => {
  const t = setup({ consecutiveFailures: 2, halfOpenAfterMs: 5_000 });
  await t.attempt(t.send({ status: 503 }));
  await t.attempt(t.send({ status: 503 }));
  assert.equal(t.gate.status('erp').circuit, 'open');
  await t.clock.advance(4_999);
  assert.equal(t.gate.status('erp').circuit, 'open');
  await t.clock.advance(1);
  assert.equal(t.gate.status('erp').circuit, 'half-open');
  assert.equal(
    t.gate.status('erp').congested,
    false,
    'half-open is not congestion: deferrable work may send the probe',
  );

  const probe = deferred<DeliveryResponse>();
  let probeCalls = 0;
  const probing = t.attempt(() => {
    probeCalls += 1;
    return probe.promise;
  });
  await flush();
  assert.equal(probeCalls, 1);
  const before = t.calls();
  const second = await t.attempt(t.send({ status: 200 }));
  assert.equal(second.kind, 'circuit-open', 'a second caller is refused while the probe runs');
  assert.equal(t.calls(), before, 'and not sent');

  probe.resolve({ status: 200 });
  assert.equal((await probing).kind, 'delivered');
  assert.equal(t.gate.status('erp').circuit, 'closed');
  assert.equal((await t.attempt(t.send({ status: 200 }))).kind, 'delivered');
  assert.deepEqual(t.transitions(), ['closed->open', 'open->half-open', 'half-open->closed']);
});

void test('a failed probe reopens the circuit for another interval', async () => {
  const t = setup({ consecutiveFailures: 1, halfOpenAfterMs: 5_000 });
  await t.attempt(t.send({ status: 500 }));
  await t.clock.advance(5_000);
  const probe = await t.attempt(t.send(new Error('still down')));
  assert.equal(probe.kind, 'retry');
  assert.equal(t.gate.status('erp').circuit, 'open');
  assert.deepEqual(await t.attempt(t.send({ status: 200 })), {
    kind: 'circuit-open',
    afterMs: 5_000,
  });
  await t.clock.advance(5_000);
  assert.equal((await t.attempt(t.send({ status: 200 }))).kind, 'delivered');
  assert.deepEqual(t.transitions(), [
    'closed->open',
    'open->half-open',
    'half-open->open',
    'open->half-open',
    'half-open->closed',
  ]);
});

void test('a timed-out probe reopens the circuit', async () => {
  const t = setup({ consecutiveFailures: 1, halfOpenAfterMs: 5_000 });
  await t.attempt(t.send({ status: 500 }));
  await t.clock.advance(5_000);
  const probing = t.attempt(
    (ctx) =>
      new Promise((_, reject) =>
        ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
      ),
  );
  await t.clock.advance(1_000);
  assert.equal((await probing).kind, 'retry');
  assert.equal(t.gate.status('erp').circuit, 'open');
});

void test('opens on the failure rate over the sliding window once the minimum calls are seen', async () => {
  const t = setup({
    consecutiveFailures: 100,
    failureRateThreshold: 0.5,
    samplingWindowMs: 10_000,
    minimumCalls: 10,
    halfOpenAfterMs: 5_000,
  });
  // 9 calls, 5 failures (56 %) but below the minimum: stays closed.
  for (let i = 0; i < 9; i++) {
    await t.attempt(t.send({ status: i % 2 === 0 ? 500 : 200 }));
    await t.clock.advance(100);
  }
  assert.equal(t.gate.status('erp').circuit, 'closed');
  // The 10th call, a failure: 6 of 10 failed.
  await t.attempt(t.send({ status: 500 }));
  assert.equal(t.gate.status('erp').circuit, 'open');
});

void test('the failure-rate window slides: old failures stop counting', async () => {
  const t = setup({
    consecutiveFailures: 100,
    failureRateThreshold: 0.5,
    samplingWindowMs: 10_000,
    minimumCalls: 4,
    halfOpenAfterMs: 5_000,
  });
  await t.attempt(t.send({ status: 500 }));
  await t.attempt(t.send({ status: 500 }));
  await t.attempt(t.send({ status: 200 })); // 3 calls: under the minimum
  await t.clock.advance(10_001); // all three leave the window
  await t.attempt(t.send({ status: 200 })); // had they stayed: 2 of 4 failed, open
  assert.equal(t.gate.status('erp').circuit, 'closed');
  await t.attempt(t.send({ status: 200 }));
  await t.attempt(t.send({ status: 200 }));
  await t.attempt(t.send({ status: 500 })); // 1 of 4
  await t.attempt(t.send({ status: 500 })); // 2 of 5
  assert.equal(t.gate.status('erp').circuit, 'closed');
  await t.attempt(t.send({ status: 500 })); // 3 of 6
  assert.equal(t.gate.status('erp').circuit, 'open');
});

void test('4xx permanent errors and 429 do not trip the breaker', async () => {
  const t = setup({
    consecutiveFailures: 2,
    failureRateThreshold: 0.1,
    minimumCalls: 2,
    halfOpenAfterMs: 5_000,
  });
  for (const status of [400, 404, 409, 422, 429, 429, 429, 425, 400, 429]) {
    await t.attempt(t.send({ status }));
  }
  assert.equal(t.gate.status('erp').circuit, 'closed');
  assert.equal(t.calls(), 10);
  // Sanity: the same breaker does open on real failures.
  await t.attempt(t.send({ status: 500 }));
  await t.attempt(t.send({ status: 500 }));
  assert.equal(t.gate.status('erp').circuit, 'open');
});

void test('calls waiting for a slot when the circuit opens are not sent', async () => {
  const clock = new FakeClock();
  const gate = createDeliveryGate(
    [
      policy({
        concurrency: { max: 1, adaptive: false },
        circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 5_000 },
      }),
    ],
    { now: clock.now, schedule: clock.schedule },
  );
  const first = deferred<DeliveryResponse>();
  let sent = 0;
  const send: DeliveryAttempt['send'] = () => {
    sent += 1;
    return sent === 1 ? first.promise : Promise.resolve({ status: 200 });
  };
  const a = gate.attempt({ destination: 'erp', idempotencyKey: 'a', attempt: 1, send });
  const b = gate.attempt({ destination: 'erp', idempotencyKey: 'b', attempt: 1, send });
  await flush();
  first.resolve({ status: 500 });
  assert.equal((await a).kind, 'retry');
  assert.equal((await b).kind, 'circuit-open');
  assert.equal(sent, 1);
});
