import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSimulator, mulberry32, RECEIVED_RETENTION } from '../../src/sandbox/kit.js';
import type { Simulator } from '../../src/sandbox/kit.js';
import { FaultInjector, parseFaultRequest } from '../../src/sandbox/faults.js';

interface Clock {
  now: () => number;
  advance: (ms: number) => void;
}

function manualClock(start = 1_700_000_000_000): Clock {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

async function startEcho(
  clock: Clock,
  seed = 1,
): Promise<{ sim: Simulator; url: string; handled: () => number }> {
  const sim = createSimulator('echo', { now: clock.now, random: mulberry32(seed) });
  let handled = 0;
  sim.app.get('/things', async () => {
    handled += 1;
    return { things: [1, 2, 3], note: 'a reasonably long body so truncation is visible' };
  });
  sim.app.post('/things', async (request) => {
    handled += 1;
    sim.record('things', request.body);
    return { ok: true };
  });
  const url = await sim.listen();
  return { sim, url, handled: () => handled };
}

async function injectFault(url: string, body: unknown): Promise<Response> {
  return fetch(`${url}/_sandbox/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

void test('mulberry32 is deterministic and in [0, 1)', () => {
  const a = mulberry32(42);
  const b = mulberry32(42);
  const c = mulberry32(43);
  const seqA = Array.from({ length: 100 }, () => a());
  const seqB = Array.from({ length: 100 }, () => b());
  const seqC = Array.from({ length: 100 }, () => c());
  assert.deepEqual(seqA, seqB);
  assert.notDeepEqual(seqA, seqC);
  for (const v of seqA) assert.ok(v >= 0 && v < 1);
});

void test('state shows received entries, totals, counters, faults and provider state', async () => {
  const clock = manualClock();
  const { sim, url } = await startEcho(clock);
  try {
    sim.setStateProvider(() => ({ extra: { widgets: 7 } }));
    sim.count('rateLimitViolations');
    sim.count('rateLimitViolations', 2);
    const res = await fetch(`${url}/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sku: 'A' }),
    });
    assert.equal(res.status, 200);
    const state = (await (await fetch(`${url}/_sandbox/state`)).json()) as Record<string, unknown>;
    assert.equal(state.name, 'echo');
    assert.deepEqual(state.received, { things: [{ sku: 'A' }] });
    assert.deepEqual(state.receivedTotals, { things: 1 });
    assert.deepEqual(state.counters, { rateLimitViolations: 3 });
    assert.deepEqual(state.faults, []);
    assert.deepEqual(state.extra, { widgets: 7 });
    assert.deepEqual(sim.received('things'), [{ sku: 'A' }]);
    assert.deepEqual(sim.received(), { things: [{ sku: 'A' }] });
  } finally {
    await sim.close();
  }
});

void test('received entries are capped per channel while totals keep counting', () => {
  const sim = createSimulator('cap');
  for (let i = 0; i < RECEIVED_RETENTION + 5; i += 1) sim.record('orders', i);
  const kept = sim.received('orders') as number[];
  assert.equal(kept.length, RECEIVED_RETENTION);
  assert.equal(kept[0], 5);
  assert.equal(kept.at(-1), RECEIVED_RETENTION + 4);
});

void test('a bad fault body is rejected with 400 and field errors', async () => {
  const { sim, url } = await startEcho(manualClock());
  try {
    const res = await injectFault(url, { kind: 'errorRate', rate: 2 });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { errors: { path: string; message: string }[] };
    assert.ok(
      body.errors.some((e) => e.path === 'rate'),
      JSON.stringify(body),
    );

    const res2 = await injectFault(url, [{ kind: 'latency', distribution: 'uniform', ms: 10 }]);
    assert.equal(res2.status, 400);
    const body2 = (await res2.json()) as { errors: { path: string }[] };
    assert.ok(
      body2.errors.some((e) => e.path === '[0].maxMs'),
      JSON.stringify(body2),
    );

    const res3 = await injectFault(url, { kind: 'meteorStrike' });
    assert.equal(res3.status, 400);

    const res4 = await injectFault(url, { kind: 'outage' });
    assert.equal(res4.status, 400, 'an outage needs durationMs');
    assert.deepEqual(sim.faults.active(), []);
  } finally {
    await sim.close();
  }
});

void test('errorRate fault answers the configured status, scoped by route and method', async () => {
  const { sim, url, handled } = await startEcho(manualClock());
  try {
    const res = await injectFault(url, {
      kind: 'errorRate',
      rate: 1,
      status: 503,
      route: '/things',
      method: 'post',
    });
    assert.equal(res.status, 201);
    const posted = await fetch(`${url}/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(posted.status, 503);
    assert.equal(handled(), 0, 'an injected error is answered before the handler');
    const got = await fetch(`${url}/things`);
    assert.equal(got.status, 200, 'GET is outside the fault scope');
    const state = (await (await fetch(`${url}/_sandbox/state`)).json()) as {
      counters: Record<string, number>;
    };
    assert.equal(state.counters['faults.errorRate'], 1);
    const cleared = await fetch(`${url}/_sandbox/faults`, { method: 'DELETE' });
    assert.equal(cleared.status, 204);
    const after = await fetch(`${url}/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(after.status, 200);
  } finally {
    await sim.close();
  }
});

void test('rateLimitStorm fault answers 429 with Retry-After', async () => {
  const { sim, url } = await startEcho(manualClock());
  try {
    await injectFault(url, { kind: 'rateLimitStorm', rate: 1, retryAfterSeconds: 7 });
    const res = await fetch(`${url}/things`);
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '7');
  } finally {
    await sim.close();
  }
});

void test('outage fault destroys the connection and ends by itself', async () => {
  const clock = manualClock();
  const { sim, url, handled } = await startEcho(clock);
  try {
    const res = await injectFault(url, { kind: 'outage', durationMs: 5000, startInMs: 1000 });
    assert.equal(res.status, 201);
    assert.equal((await fetch(`${url}/things`)).status, 200, 'not started yet');
    clock.advance(1000);
    await assert.rejects(fetch(`${url}/things`), TypeError);
    assert.equal(handled(), 1, 'a request during the outage never reaches its handler');
    clock.advance(5000);
    assert.equal((await fetch(`${url}/things`)).status, 200, 'outage over');
    assert.deepEqual(sim.faults.active(), []);
  } finally {
    await sim.close();
  }
});

void test('malformed fault handles the request but corrupts the 200 response', async () => {
  const { sim, url, handled } = await startEcho(manualClock());
  try {
    await injectFault(url, { faults: [{ kind: 'malformed', rate: 1 }] });
    const res = await fetch(`${url}/things`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sku: 'B' }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.throws(() => JSON.parse(text) as unknown);
    assert.equal(handled(), 1);
    assert.deepEqual(sim.received('things'), [{ sku: 'B' }]);
  } finally {
    await sim.close();
  }
});

void test('latency fault delays the response', async () => {
  const { sim, url } = await startEcho(manualClock());
  try {
    await injectFault(url, { kind: 'latency', distribution: 'fixed', ms: 200 });
    const started = performance.now();
    const res = await fetch(`${url}/things`);
    const elapsed = performance.now() - started;
    assert.equal(res.status, 200);
    assert.ok(elapsed >= 180, `elapsed ${elapsed}`);
  } finally {
    await sim.close();
  }
});

void test('fault windows expire by themselves', () => {
  const clock = manualClock();
  const faults = new FaultInjector({ now: clock.now, random: mulberry32(1) });
  faults.inject({ kind: 'errorRate', rate: 1, durationMs: 100 });
  assert.equal(faults.decide('/x', 'GET').outcome.type, 'error');
  clock.advance(100);
  assert.equal(faults.decide('/x', 'GET').outcome.type, 'pass');
  assert.equal(faults.active().length, 0);
});

void test('seeded error rates are reproducible and near the configured rate', () => {
  const run = (seed: number): string[] => {
    const faults = new FaultInjector({ now: () => 0, random: mulberry32(seed) });
    faults.inject({ kind: 'errorRate', rate: 0.3 });
    return Array.from({ length: 2000 }, () => faults.decide('/x', 'GET').outcome.type);
  };
  const a = run(7);
  assert.deepEqual(a, run(7));
  const errors = a.filter((t) => t === 'error').length;
  assert.ok(errors > 450 && errors < 750, `errors ${errors}`);
});

void test('latency distributions stay within their bounds and latencies add up', () => {
  const faults = new FaultInjector({ now: () => 0, random: mulberry32(3) });
  faults.inject({ kind: 'latency', distribution: 'uniform', ms: 10, maxMs: 50 });
  for (let i = 0; i < 200; i += 1) {
    const d = faults.decide('/a', 'GET').delayMs;
    assert.ok(d >= 10 && d <= 50, `uniform ${d}`);
  }
  faults.clear();
  faults.inject({ kind: 'latency', distribution: 'exponential', ms: 20, maxMs: 100 });
  let sum = 0;
  for (let i = 0; i < 2000; i += 1) {
    const d = faults.decide('/a', 'GET').delayMs;
    assert.ok(d >= 0 && d <= 100, `exponential ${d}`);
    sum += d;
  }
  const mean = sum / 2000;
  assert.ok(mean > 12 && mean < 28, `exponential mean ${mean}`);
  faults.clear();
  faults.inject({ kind: 'latency', distribution: 'fixed', ms: 5 });
  faults.inject({ kind: 'latency', distribution: 'fixed', ms: 7, route: '/a' });
  assert.equal(faults.decide('/a/b?x=1', 'GET').delayMs, 12);
  assert.equal(faults.decide('/b', 'GET').delayMs, 5);
});

void test('outage takes precedence over other faults', () => {
  const faults = new FaultInjector({ now: () => 0, random: () => 0 });
  faults.inject({ kind: 'errorRate', rate: 1 });
  faults.inject({ kind: 'outage', durationMs: 1000 });
  assert.equal(faults.decide('/x', 'GET').outcome.type, 'outage');
});

void test('parseFaultRequest accepts one fault, an array or { faults }', () => {
  const one = parseFaultRequest({ kind: 'malformed', rate: 0.1 });
  assert.ok(one.ok && one.faults.length === 1);
  const many = parseFaultRequest([
    { kind: 'malformed', rate: 0.1 },
    { kind: 'rateLimitStorm', rate: 0.2 },
  ]);
  assert.ok(many.ok && many.faults.length === 2);
  const wrapped = parseFaultRequest({ faults: [{ kind: 'errorRate', rate: 0.5 }] });
  assert.ok(wrapped.ok && wrapped.faults[0]?.kind === 'errorRate');
  if (wrapped.ok && wrapped.faults[0]?.kind === 'errorRate') {
    assert.equal(wrapped.faults[0].status, 500, 'status defaults to 500');
  }
});
