// Scenarios: deterministic traffic from a seed, valid canonical events, native forms that
// verify, and the runner's summary against a local fake Middlemart that accepts some requests
// and rejects others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseEvent } from '../../src/canonical/index.js';
import { verifyShopifyWebhook } from '../../src/sandbox/commerce/wire.js';
import {
  SCENARIOS,
  SCENARIO_NAMES,
  eventsTransport,
  nativeTransport,
  percentile,
  runScenario,
  runTraffic,
  serialiseTraffic,
} from '../../src/sandbox/scenarios/index.js';
import type { PlannedRequest, TrafficItem } from '../../src/sandbox/scenarios/index.js';
import type { PosBatch } from '../../src/sandbox/pos/index.js';
import { run } from '../../src/cli/main.js';
import { register as registerSimulate } from '../../src/cli/commands/simulate.js';

/** Small sizes so every scenario generates quickly. */
const SMALL: Record<
  string,
  { size: number; stores?: number; offlineSeconds?: number; batchSize?: number }
> = {
  steady: { size: 120 },
  'flash-sale': { size: 60 },
  'bulk-price-update': { size: 1200, batchSize: 250 },
  'return-surge': { size: 40 },
  'store-reconnect': { size: 90, stores: 6, offlineSeconds: 30 },
};

void test('every scenario is deterministic by seed and differs between seeds', () => {
  assert.deepEqual(SCENARIO_NAMES.sort(), Object.keys(SMALL).sort());
  for (const name of SCENARIO_NAMES) {
    const scenario = SCENARIOS[name];
    assert.ok(scenario);
    const a = serialiseTraffic(scenario.generate({ ...SMALL[name], seed: 5 }));
    const b = serialiseTraffic(scenario.generate({ ...SMALL[name], seed: 5 }));
    const c = serialiseTraffic(scenario.generate({ ...SMALL[name], seed: 6 }));
    assert.ok(a.length > 1000, `${name} generates traffic`);
    assert.equal(a, b, `${name}: same seed, same bytes`);
    assert.notEqual(a, c, `${name}: another seed, other traffic`);
    const plannedA = scenario
      .generate({ ...SMALL[name], seed: 5 })
      .flatMap((i) => nativeTransport({ webhookSecret: 's' }).plan(i));
    const plannedB = scenario
      .generate({ ...SMALL[name], seed: 5 })
      .flatMap((i) => nativeTransport({ webhookSecret: 's' }).plan(i));
    assert.deepEqual(plannedA, plannedB, `${name}: same requests on the wire`);
  }
});

void test('scenario events are valid canonical CloudEvents with keys no other run uses', () => {
  // One Middlemart sees many runs: keys must not repeat across scenarios or seeds.
  const keys = new Set<string>();
  const nativeKeys = new Set<string>();
  const native = nativeTransport({ webhookSecret: 'k' });
  for (const [name, seed] of SCENARIO_NAMES.flatMap((n) => [[n, 11] as const, [n, 12] as const])) {
    const items = SCENARIOS[name]?.generate({ ...SMALL[name], seed }) ?? [];
    for (const item of items) {
      for (const event of item.events) {
        const parsed = parseEvent(JSON.parse(JSON.stringify(event)));
        assert.ok(parsed.ok, `${name}: ${JSON.stringify(parsed.ok ? [] : parsed.issues)}`);
        const key = String(event.idempotencykey);
        assert.ok(!keys.has(key), `${name}/${seed}: idempotency key ${key} is unique`);
        keys.add(key);
      }
      for (const req of native.plan(item)) {
        if (req.path === '/v1/events') continue;
        const key = req.headers['idempotency-key'] ?? req.headers['x-shopify-webhook-id'] ?? '';
        assert.ok(
          key !== '' && !nativeKeys.has(key),
          `${name}/${seed}: native key ${key} is unique`,
        );
        nativeKeys.add(key);
      }
    }
  }
  assert.ok(nativeKeys.size > 100);
});

void test('scenario sizes follow rate × duration or size', () => {
  const steady = SCENARIOS.steady;
  assert.ok(steady);
  assert.equal(steady.generate({ rate: 4, duration: 5 }).length, 20);
  assert.equal(steady.generate({ size: 7 }).length, 7);
  assert.throws(() => steady.generate({ rate: -1 }), /--rate/);
  const bulk = SCENARIOS['bulk-price-update']?.generate({ size: 1000, batchSize: 300 }) ?? [];
  assert.deepEqual(
    bulk.map((i) => i.events.length),
    [300, 300, 300, 100],
  );
});

void test('native forms: signed webhooks and per-store sequenced batches', () => {
  const secret = 'native-secret';
  const transport = nativeTransport({ webhookSecret: secret });
  const steady = SCENARIOS.steady?.generate({ size: 200, seed: 3 }) ?? [];
  const requests = steady.flatMap((i) => transport.plan(i));
  const webhooks = requests.filter((r) => r.label.startsWith('webhook:'));
  assert.ok(webhooks.length > 10);
  for (const r of webhooks) {
    assert.equal(r.path, '/v1/webhooks/shopify/commerce');
    assert.ok(verifyShopifyWebhook(secret, r.body, r.headers['x-shopify-hmac-sha256']));
  }
  const labels = new Set(requests.map((r) => r.label));
  for (const l of [
    'webhook:orders/create',
    'api:orders',
    'pos:batch',
    'event:inventory.adjusted',
  ]) {
    assert.ok(labels.has(l), `steady sends ${l}`);
  }

  const reconnect =
    SCENARIOS['store-reconnect']?.generate({
      size: 90,
      stores: 6,
      offlineSeconds: 30,
      maxBatchSize: 8,
    }) ?? [];
  assert.equal(reconnect.length, 6, 'one upload per store');
  let splitStores = 0;
  for (const item of reconnect) {
    const reqs = transport.plan(item);
    const batches = reqs.map((r) => JSON.parse(r.body) as PosBatch);
    assert.ok(
      batches.every((b) => b.transactions.length <= 8),
      'uploads are split into batches of at most 8',
    );
    splitStores += batches.length > 1 ? 1 : 0;
    const sequences = batches.flatMap((b) => b.transactions.map((t) => t.sequence));
    assert.deepEqual(
      sequences,
      Array.from({ length: sequences.length }, (_, i) => i + 1),
      `${item.origin}: sequences 1..n without gaps, in order`,
    );
    assert.ok(batches.every((b) => b.offline && b.storeId === item.origin));
    assert.equal(item.events.length, sequences.length, 'the events form carries every transaction');
  }
  assert.ok(splitStores > 0, 'some store uploads several batches');
});

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Decides a fake Middlemart's answer to a request, the same way for planned requests. */
function verdict(path: string, body: string): { status: number; type?: string } {
  if (path === '/v1/events') {
    const event = JSON.parse(body) as { type: string; id: string };
    if (event.type === 'com.middlemart.customer.created.v1') {
      return { status: 400, type: 'https://middlemart.dev/problems/validation' };
    }
    if (event.type === 'com.middlemart.inventory.adjusted.v1') return { status: 429 };
  }
  return { status: 202 };
}

async function fakeMiddlemart(): Promise<{ url: string; hits: Hit[]; server: Server }> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      hits.push({ path: req.url ?? '', headers: req.headers, body });
      const v = verdict(req.url ?? '', body);
      if (v.status === 202) {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: String(hits.length),
            traceId: 'x',
            acceptedAt: new Date().toISOString(),
          }),
        );
      } else if (v.type) {
        res.writeHead(v.status, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ type: v.type, title: 'Invalid', status: v.status }));
      } else {
        res.writeHead(v.status, { 'retry-after': '1' });
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

/** A fake simulator state endpoint, as the ERP simulators expose it. */
async function fakeSystem(state: unknown): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url === '/_sandbox/state') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(state));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

void test('the runner summarises accepted and rejected requests against a fake Middlemart', async () => {
  const mm = await fakeMiddlemart();
  const erp = await fakeSystem({
    name: 'cloud-erp',
    receivedTotals: { salesOrders: 12 },
    counters: { rateLimitViolations: 2, concurrencyViolations: 0, salesOrderDuplicates: 1 },
  });
  try {
    const items: TrafficItem[] = SCENARIOS.steady?.generate({ size: 80, seed: 21 }) ?? [];
    const transport = eventsTransport();
    const planned: PlannedRequest[] = items.flatMap((i) => transport.plan(i));
    const expected = { accepted: 0, reasons: {} as Record<string, number> };
    for (const r of planned) {
      const v = verdict(r.path, r.body);
      if (v.status === 202) expected.accepted++;
      else {
        const reason = `${v.status} ${v.type ?? '-'}`;
        expected.reasons[reason] = (expected.reasons[reason] ?? 0) + 1;
      }
    }
    assert.ok(
      expected.accepted > 0 && Object.keys(expected.reasons).length === 2,
      'the fake both accepts and rejects',
    );

    let lastProgress = { done: 0, total: 0 };
    const summary = await runTraffic({
      target: mm.url,
      transport,
      items,
      rate: 0,
      concurrency: 4,
      maxDurationMs: 60_000,
      apiKey: 'test-key',
      systems: [
        { id: 'cloud-erp', url: erp.url },
        { id: 'gone', url: 'http://127.0.0.1:9' },
      ],
      onProgress: (p) => (lastProgress = p),
    });
    assert.equal(summary.planned, planned.length);
    assert.equal(summary.sent, planned.length);
    assert.equal(summary.notSent, 0);
    assert.equal(summary.stoppedBy, 'completed');
    assert.equal(summary.accepted, expected.accepted);
    assert.equal(summary.rejected, planned.length - expected.accepted);
    assert.deepEqual(summary.rejectedByReason, expected.reasons);
    assert.ok(summary.latencyMs.p50 > 0);
    assert.ok(summary.latencyMs.p50 <= summary.latencyMs.p95);
    assert.ok(summary.latencyMs.p95 <= summary.latencyMs.p99);
    assert.ok(summary.latencyMs.p99 <= summary.latencyMs.max);
    assert.deepEqual(lastProgress, {
      done: planned.length,
      total: planned.length,
      accepted: expected.accepted,
      rejected: planned.length - expected.accepted,
    });
    assert.deepEqual(summary.limitViolations, {
      'cloud-erp.rateLimitViolations': 2,
      'cloud-erp.concurrencyViolations': 0,
    });
    assert.deepEqual(summary.systems[0]?.received, { salesOrders: 12 });
    assert.ok(summary.systems[1]?.error, 'an unreachable system is reported');

    assert.equal(mm.hits.length, planned.length);
    assert.ok(mm.hits.every((h) => h.headers.authorization === 'Bearer test-key'));
    assert.ok(mm.hits.every((h) => typeof h.headers['idempotency-key'] === 'string'));
    assert.deepEqual(
      new Set(mm.hits.map((h) => h.headers['idempotency-key'])).size,
      planned.length,
    );
  } finally {
    mm.server.close();
    erp.server.close();
  }
});

void test('the runner stops at its count and time bounds', async () => {
  const mm = await fakeMiddlemart();
  try {
    const items = SCENARIOS.steady?.generate({ size: 30, seed: 2 }) ?? [];
    const counted = await runTraffic({
      target: mm.url,
      transport: eventsTransport(),
      items,
      rate: 0,
      maxRequests: 10,
      maxDurationMs: 60_000,
    });
    assert.equal(counted.sent, 10);
    assert.equal(counted.notSent, 20);
    assert.equal(counted.stoppedBy, 'count');

    // One request per second with a 300 ms budget: the second request is never due in time.
    const timed = await runTraffic({
      target: mm.url,
      transport: eventsTransport(),
      items,
      rate: 1,
      concurrency: 1,
      maxDurationMs: 300,
    });
    assert.equal(timed.stoppedBy, 'time');
    assert.equal(timed.sent, 1);
    assert.equal(timed.notSent, 29);
  } finally {
    mm.server.close();
  }
});

void test('runScenario through the native transport reaches the channel routes', async () => {
  const mm = await fakeMiddlemart();
  try {
    const { summary, options } = await runScenario(
      'store-reconnect',
      { size: 24, stores: 4, offlineSeconds: 10, seed: 8 },
      { target: mm.url, transport: nativeTransport({ webhookSecret: 'x' }), rate: 0 },
    );
    assert.equal(options.stores, 4);
    assert.equal(summary.sent, 4);
    assert.equal(summary.accepted, 4);
    assert.deepEqual(mm.hits.map((h) => h.path).sort(), [
      '/v1/stores/store-001/batches',
      '/v1/stores/store-002/batches',
      '/v1/stores/store-003/batches',
      '/v1/stores/store-004/batches',
    ]);
  } finally {
    mm.server.close();
  }
});

void test('percentile uses the nearest rank', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(values, 50), 50);
  assert.equal(percentile(values, 95), 95);
  assert.equal(percentile(values, 99), 99);
  assert.equal(percentile([], 50), 0);
});

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { writeOut: (s: string) => void out.push(s), writeErr: (s: string) => void err.push(s) },
    out,
    err,
  };
}

void test('middlemart simulate: an unknown scenario or a bad option exits 2 naming it', async () => {
  const a = capture();
  assert.equal(await run(['simulate', 'black-friday'], a.io, [registerSimulate]), 2);
  assert.match(a.err.join(''), /unknown scenario 'black-friday'/);
  assert.match(a.err.join(''), /steady/);

  const b = capture();
  assert.equal(await run(['simulate', 'steady', '--rate', 'fast'], b.io, [registerSimulate]), 2);
  assert.match(b.err.join(''), /--rate/);

  const c = capture();
  assert.equal(
    await run(['simulate', 'steady', '--transport', 'carrier-pigeon'], c.io, [registerSimulate]),
    2,
  );
  assert.match(c.err.join(''), /carrier-pigeon/);
});

void test('middlemart simulate --json prints one summary object', async () => {
  const mm = await fakeMiddlemart();
  try {
    const cap = capture();
    const code = await run(
      [
        'simulate',
        'flash-sale',
        '--target',
        mm.url,
        '--size',
        '15',
        '--rate',
        '500',
        '--seed',
        '4',
        '--json',
      ],
      cap.io,
      [registerSimulate],
    );
    assert.equal(code, 0, cap.err.join(''));
    const summary = JSON.parse(cap.out.join('')) as {
      scenario: string;
      sent: number;
      accepted: number;
    };
    assert.equal(summary.scenario, 'flash-sale');
    assert.equal(summary.sent, 3 + 15, 'the opening price changes of 3 hot SKUs, then 15 orders');
  } finally {
    mm.server.close();
  }
});
