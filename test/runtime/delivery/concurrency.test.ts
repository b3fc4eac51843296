import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createDeliveryGate } from '../../../src/runtime/delivery/gate.js';
import type { GateEvent } from '../../../src/runtime/delivery/events.js';
import type {
  DeliveryAttempt,
  DeliveryOutcome,
  DeliveryResponse,
} from '../../../src/runtime/delivery/types.js';
import { FakeClock, deferred, flush } from './fake-clock.js';
import { policy } from './policies.js';

/** A slow destination that counts how many calls it has at once. */
function slowStub(
  delayMs: number,
  answer: (n: number) => DeliveryResponse = () => ({ status: 200 }),
) {
  let inFlight = 0;
  let maxInFlight = 0;
  let calls = 0;
  const send: DeliveryAttempt['send'] = async () => {
    calls += 1;
    const n = calls;
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      await sleep(delayMs);
      return answer(n);
    } finally {
      inFlight -= 1;
    }
  };
  return { send, stats: () => ({ inFlight, maxInFlight, calls }) };
}

const generous = { timeoutMs: 30_000 };

void test('never more than max in flight under 200 parallel attempts', async () => {
  const gate = createDeliveryGate([
    policy({ ...generous, concurrency: { max: 5, adaptive: false } }),
  ]);
  const stub = slowStub(5);
  const outcomes = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      gate.attempt({ destination: 'erp', idempotencyKey: `k${i}`, attempt: 1, send: stub.send }),
    ),
  );
  assert.ok(
    outcomes.every((o) => o.kind === 'delivered'),
    'all delivered',
  );
  assert.equal(stub.stats().calls, 200);
  assert.equal(stub.stats().maxInFlight, 5, 'the limit is used, and never exceeded');
  assert.equal(gate.status('erp').inFlight, 0);
});

void test('adaptive limit under 429s: never more than max in flight, and the limit comes down', async () => {
  const events: GateEvent[] = [];
  const gate = createDeliveryGate(
    [
      policy({
        ...generous,
        // 429s do not trip the breaker; make sure nothing else does either.
        circuitBreaker: { consecutiveFailures: 1_000, halfOpenAfterMs: 1_000 },
        concurrency: { max: 8, adaptive: true },
      }),
    ],
    { onEvent: (e) => events.push(e) },
  );
  const stub = slowStub(3, (n) => (n % 4 === 0 ? { status: 429 } : { status: 200 }));
  const outcomes = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      gate.attempt({ destination: 'erp', idempotencyKey: `k${i}`, attempt: 1, send: stub.send }),
    ),
  );
  assert.equal(stub.stats().calls, 200);
  assert.ok(stub.stats().maxInFlight <= 8, `max in flight ${stub.stats().maxInFlight}`);
  assert.equal(outcomes.filter((o) => o.kind === 'retry').length, 50);
  const changes = events.filter((e) => e.type === 'concurrency-limit');
  assert.ok(
    changes.some((e) => e.reason === 'decrease'),
    'the limit decreased',
  );
  assert.ok(changes.every((e) => e.to >= 1 && e.to <= 8));
});

function adaptiveGate(clock: FakeClock, max = 8, latencyTargetMs?: number) {
  const events: GateEvent[] = [];
  const gate = createDeliveryGate(
    [
      policy({
        circuitBreaker: { consecutiveFailures: 1_000, halfOpenAfterMs: 1_000 },
        concurrency: { max, adaptive: true, ...(latencyTargetMs ? { latencyTargetMs } : {}) },
      }),
    ],
    { now: clock.now, schedule: clock.schedule, onEvent: (e) => events.push(e) },
  );
  const attempt = (send: DeliveryAttempt['send'], key = 'k'): Promise<DeliveryOutcome> =>
    gate.attempt({ destination: 'erp', idempotencyKey: key, attempt: 1, send });
  return { gate, events, attempt };
}

void test('AIMD: ×0.5 (min 1) on each 429 or 503, +1 per success up to max', async () => {
  const clock = new FakeClock();
  const { gate, attempt, events } = adaptiveGate(clock, 8);
  const limit = () => gate.status('erp').concurrencyLimit;
  assert.equal(limit(), 8);
  await attempt(() => Promise.resolve({ status: 429 }));
  assert.equal(limit(), 4);
  await attempt(() => Promise.resolve({ status: 503 }));
  assert.equal(limit(), 2);
  assert.equal(gate.status('erp').congested, true, 'squeezed to a quarter of max: congested');
  await attempt(() => Promise.resolve({ status: 429 }));
  await attempt(() => Promise.resolve({ status: 429 }));
  assert.equal(limit(), 1, 'never below 1');
  // Other failures leave the limit alone.
  await attempt(() => Promise.resolve({ status: 500 }));
  await attempt(() => Promise.resolve({ status: 400 }));
  await attempt(() => Promise.reject(new Error('reset')));
  assert.equal(limit(), 1);
  for (let i = 0; i < 20; i++) await attempt(() => Promise.resolve({ status: 200 }));
  assert.equal(limit(), 8, 'recovered, and never above max');
  assert.equal(gate.status('erp').congested, false);
  const trace = events.flatMap((e) => (e.type === 'concurrency-limit' ? [e.to] : []));
  assert.deepEqual(trace, [4, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
});

void test('AIMD: a burst of 429s from calls sent together halves the limit once', async () => {
  const clock = new FakeClock();
  const { gate, attempt } = adaptiveGate(clock, 8);
  const answers = Array.from({ length: 8 }, () => deferred<DeliveryResponse>());
  const pending = answers.map((a, i) => attempt(() => a.promise, `k${i}`));
  await flush();
  assert.equal(gate.status('erp').inFlight, 8);
  for (const a of answers) a.resolve({ status: 429 });
  await Promise.all(pending);
  assert.equal(gate.status('erp').concurrencyLimit, 4);
  // A call sent after the decrease may decrease again.
  await attempt(() => Promise.resolve({ status: 429 }));
  assert.equal(gate.status('erp').concurrencyLimit, 2);
});

void test('AIMD: latency above the target decreases; a timeout too', async () => {
  const clock = new FakeClock();
  const { gate, attempt } = adaptiveGate(clock, 8, 500);
  const after =
    (ms: number, status = 200) =>
    () => {
      clock.tick(ms);
      return Promise.resolve({ status });
    };
  await attempt(after(600));
  assert.equal(gate.status('erp').concurrencyLimit, 4, 'slow success');
  await attempt(after(400));
  assert.equal(gate.status('erp').concurrencyLimit, 5, 'fast success');
  await attempt(after(500));
  assert.equal(gate.status('erp').concurrencyLimit, 6, 'at the target is within it');
  const hung = attempt(() => new Promise(() => {}));
  await clock.advance(1_000);
  assert.equal((await hung).kind, 'retry');
  assert.equal(gate.status('erp').concurrencyLimit, 3, 'timeout');
});

void test('a decreased limit holds new calls back until in-flight calls drain below it', async () => {
  const clock = new FakeClock();
  const { attempt } = adaptiveGate(clock, 4);
  const answers = Array.from({ length: 4 }, () => deferred<DeliveryResponse>());
  const first = answers.map((a, i) => attempt(() => a.promise, `k${i}`));
  await flush();
  answers[0]?.resolve({ status: 429 }); // limit 4 → 2, three still in flight
  await first[0];
  let laterSent = false;
  const later = attempt(() => {
    laterSent = true;
    return Promise.resolve({ status: 200 });
  });
  await flush();
  assert.equal(laterSent, false, '3 in flight ≥ limit 2');
  answers[1]?.resolve({ status: 200 }); // +1 → 3 with 2 in flight: room for one
  await flush();
  assert.equal(laterSent, true);
  answers[2]?.resolve({ status: 200 });
  answers[3]?.resolve({ status: 200 });
  await Promise.all([...first, later]);
});

void test('waiters are served first in, first out', async () => {
  const clock = new FakeClock();
  const gate = createDeliveryGate([policy({ concurrency: { max: 1, adaptive: false } })], {
    now: clock.now,
    schedule: clock.schedule,
  });
  const order: string[] = [];
  const gateOpen = deferred<DeliveryResponse>();
  const run = (key: string, response?: Promise<DeliveryResponse>) =>
    gate.attempt({
      destination: 'erp',
      idempotencyKey: key,
      attempt: 1,
      send: () => {
        order.push(key);
        return response ?? Promise.resolve({ status: 200 });
      },
    });
  const all = [run('a', gateOpen.promise), run('b'), run('c'), run('d')];
  await flush();
  assert.deepEqual(order, ['a']);
  gateOpen.resolve({ status: 200 });
  await Promise.all(all);
  assert.deepEqual(order, ['a', 'b', 'c', 'd']);
});

void test('the wait queue is bounded in length and in time: beyond it, deferred and not sent', async () => {
  const clock = new FakeClock();
  const events: GateEvent[] = [];
  const gate = createDeliveryGate([policy({ concurrency: { max: 1, adaptive: false } })], {
    now: clock.now,
    schedule: clock.schedule,
    random: () => 0.5,
    maxWaitingPerDestination: 1,
    maxAdmissionWaitMs: 300,
    onEvent: (e) => events.push(e),
  });
  let sent = 0;
  const hold = deferred<DeliveryResponse>();
  const run = (key: string) =>
    gate.attempt({
      destination: 'erp',
      idempotencyKey: key,
      attempt: 1,
      send: () => {
        sent += 1;
        return hold.promise;
      },
    });
  const a = run('a');
  const b = run('b'); // waits
  const c = await run('c'); // queue full
  assert.deepEqual(c, {
    kind: 'retry',
    afterMs: 100,
    error: 'concurrency limit: wait queue full',
    latencyMs: 0,
    notSent: true,
  });
  await clock.advance(300);
  const bOutcome = await b;
  assert.equal(bOutcome.kind, 'retry');
  assert.equal((bOutcome as { notSent?: boolean }).notSent, true);
  assert.match((bOutcome as { error: string }).error, /no slot within 300 ms/);
  assert.equal(sent, 1);
  hold.resolve({ status: 200 });
  assert.equal((await a).kind, 'delivered');
  assert.deepEqual(
    events.flatMap((e) => (e.type === 'bulkhead-rejected' ? [e.reason] : [])),
    ['queue-full', 'wait-timeout'],
  );
});

void test('after a timeout the slot is held until the sender lets go (bounded by one more timeout)', async () => {
  const clock = new FakeClock();
  const gate = createDeliveryGate([policy({ concurrency: { max: 1, adaptive: false } })], {
    now: clock.now,
    schedule: clock.schedule,
    maxAdmissionWaitMs: 10_000,
  });
  const a = gate.attempt({
    destination: 'erp',
    idempotencyKey: 'a',
    attempt: 1,
    send: () => new Promise(() => {}), // ignores the abort
  });
  await clock.advance(1_000);
  assert.equal((await a).kind, 'retry');
  assert.equal(gate.status('erp').inFlight, 1, 'still held: the sender has not let go');
  let bSent = false;
  const b = gate.attempt({
    destination: 'erp',
    idempotencyKey: 'b',
    attempt: 1,
    send: () => {
      bSent = true;
      return Promise.resolve({ status: 200 });
    },
  });
  await clock.advance(999);
  assert.equal(bSent, false);
  await clock.advance(1);
  assert.equal(bSent, true);
  assert.equal((await b).kind, 'delivered');

  // A sender that honours the abort frees the slot at once.
  const c = gate.attempt({
    destination: 'erp',
    idempotencyKey: 'c',
    attempt: 1,
    send: ({ signal }) =>
      new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('aborted'))),
      ),
  });
  await clock.advance(1_000);
  assert.equal((await c).kind, 'retry');
  await flush();
  assert.equal(gate.status('erp').inFlight, 0);
});
