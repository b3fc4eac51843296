import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createDeliveryGate,
  InvalidDestinationPolicyError,
  UnknownDestinationError,
} from '../../../src/runtime/delivery/index.js';
import type { GateEvent } from '../../../src/runtime/delivery/index.js';
import { FakeClock } from './fake-clock.js';
import { policy } from './policies.js';

const ok = () => Promise.resolve({ status: 200 });

void test('an unknown destination is a clear error, never a guessed policy', async () => {
  const gate = createDeliveryGate([policy()]);
  await assert.rejects(
    gate.attempt({ destination: 'crm', idempotencyKey: 'k', attempt: 1, send: ok }),
    (e: unknown) =>
      e instanceof UnknownDestinationError &&
      e.destination === 'crm' &&
      /no delivery policy for destination "crm"/.test(e.message),
  );
  assert.throws(() => gate.status('crm'), UnknownDestinationError);
  assert.throws(() => gate.setBacklog('crm', 1), UnknownDestinationError);
});

void test('invalid policies are refused with every problem named', () => {
  assert.throws(
    () =>
      createDeliveryGate([
        policy(),
        policy({ concurrency: { max: 0, adaptive: true }, timeoutMs: -1 }),
      ]),
    (e: unknown) =>
      e instanceof InvalidDestinationPolicyError &&
      e.message.includes('erp: duplicate destination id') &&
      e.message.includes('erp: concurrency.max must be an integer >= 1, got 0') &&
      e.message.includes('erp: timeoutMs must be > 0, got -1'),
  );
  assert.throws(
    () => createDeliveryGate([policy({ rate: { perSecond: 0, burst: 1 } })]),
    /rate.perSecond must be > 0/,
  );
});

void test('congestion: backlog above the threshold, an open circuit, or a squeezed limit (half-open is not: deferrable work must send the probe)', async () => {
  const clock = new FakeClock();
  const gate = createDeliveryGate(
    [
      policy({
        backlogThreshold: 100,
        concurrency: { max: 8, adaptive: true },
        circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 1_000 },
      }),
    ],
    { now: clock.now, schedule: clock.schedule },
  );
  const attempt = (status: number) =>
    gate.attempt({
      destination: 'erp',
      idempotencyKey: 'k',
      attempt: 1,
      send: () => Promise.resolve({ status }),
    });
  assert.deepEqual(gate.status('erp'), {
    id: 'erp',
    circuit: 'closed',
    inFlight: 0,
    concurrencyLimit: 8,
    congested: false,
  });
  gate.setBacklog('erp', 100);
  assert.equal(gate.status('erp').congested, false, 'at the threshold is not above it');
  gate.setBacklog('erp', 101);
  assert.equal(gate.status('erp').congested, true);
  gate.setBacklog('erp', 0);
  assert.throws(() => gate.setBacklog('erp', -1), RangeError);

  await attempt(429); // 8 → 4: one halving is not "well below"
  assert.equal(gate.status('erp').congested, false);
  await attempt(429); // 4 → 2
  assert.equal(gate.status('erp').congested, true);
  for (let i = 0; i < 6; i++) await attempt(200);
  assert.equal(gate.status('erp').congested, false);

  await attempt(500);
  assert.equal(gate.status('erp').circuit, 'open');
  assert.equal(gate.status('erp').congested, true);
  await clock.advance(1_000);
  assert.equal(gate.status('erp').circuit, 'half-open');
  assert.equal(gate.status('erp').congested, false);
});

void test('destinations are independent: one failing never blocks another', async () => {
  const gate = createDeliveryGate([
    policy({ id: 'erp' }),
    policy({ id: 'loyalty', circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 } }),
  ]);
  await gate.attempt({
    destination: 'loyalty',
    idempotencyKey: 'k',
    attempt: 1,
    send: () => Promise.reject(new Error('down')),
  });
  assert.equal(gate.status('loyalty').circuit, 'open');
  const erp = await gate.attempt({ destination: 'erp', idempotencyKey: 'k', attempt: 1, send: ok });
  assert.equal(erp.kind, 'delivered');
  assert.deepEqual(
    gate.statuses().map((s) => [s.id, s.circuit]),
    [
      ['erp', 'closed'],
      ['loyalty', 'open'],
    ],
  );
});

void test('updatePolicies keeps the state of destinations that stay, adds and removes others', async () => {
  const events: GateEvent[] = [];
  const gate = createDeliveryGate(
    [
      policy({ id: 'erp', concurrency: { max: 8, adaptive: true } }),
      policy({ id: 'crm', circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 } }),
    ],
    { onEvent: (e) => events.push(e) },
  );
  await gate.attempt({
    destination: 'crm',
    idempotencyKey: 'k',
    attempt: 1,
    send: () => Promise.resolve({ status: 500 }),
  });
  assert.equal(gate.status('crm').circuit, 'open');
  gate.updatePolicies([
    policy({ id: 'erp', concurrency: { max: 3, adaptive: true } }),
    policy({ id: 'crm', circuitBreaker: { consecutiveFailures: 5, halfOpenAfterMs: 60_000 } }),
    policy({ id: 'wms' }),
  ]);
  assert.equal(gate.status('crm').circuit, 'open', 'the circuit survives a policy reload');
  assert.equal(gate.status('erp').concurrencyLimit, 3, 'clamped to the new max');
  assert.equal(gate.status('wms').circuit, 'closed');
  assert.ok(
    events.some((e) => e.type === 'concurrency-limit' && e.reason === 'policy' && e.to === 3),
  );
  gate.updatePolicies([policy({ id: 'wms' })]);
  assert.throws(() => gate.status('erp'), UnknownDestinationError);
  assert.deepEqual(
    gate.statuses().map((s) => s.id),
    ['wms'],
  );
});

void test('events tell the story of each attempt; a throwing observer breaks nothing', async () => {
  const clock = new FakeClock();
  const events: GateEvent[] = [];
  const gate = createDeliveryGate(
    [policy({ circuitBreaker: { consecutiveFailures: 1, halfOpenAfterMs: 1_000 } })],
    {
      now: clock.now,
      schedule: clock.schedule,
      random: () => 0.5,
      onEvent: (e) => {
        events.push(e);
        throw new Error('observer bug');
      },
    },
  );
  const base = { destination: 'erp', idempotencyKey: 'o-1', traceparent: 'tp' };
  await gate.attempt({ ...base, attempt: 1, send: ok });
  await gate.attempt({ ...base, attempt: 2, send: () => Promise.resolve({ status: 400 }) });
  await gate.attempt({ ...base, attempt: 3, send: () => Promise.resolve({ status: 503 }) });
  await gate.attempt({ ...base, attempt: 4, send: ok });
  const ref = { destination: 'erp', idempotencyKey: 'o-1' };
  assert.deepEqual(events, [
    { ...ref, attempt: 1, type: 'attempt', traceparent: 'tp' },
    { ...ref, attempt: 1, type: 'delivered', status: 200, latencyMs: 0 },
    { ...ref, attempt: 2, type: 'attempt', traceparent: 'tp' },
    {
      ...ref,
      attempt: 2,
      type: 'permanent',
      error: 'HTTP 400 Bad Request',
      status: 400,
      latencyMs: 0,
    },
    { ...ref, attempt: 3, type: 'attempt', traceparent: 'tp' },
    { type: 'circuit', destination: 'erp', from: 'closed', to: 'open' },
    {
      ...ref,
      attempt: 3,
      type: 'retry',
      afterMs: 200,
      error: 'HTTP 503 Service Unavailable',
      status: 503,
      latencyMs: 0,
      notSent: false,
    },
    { ...ref, attempt: 4, type: 'short-circuited', afterMs: 1_000 },
  ]);
});
