import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCloudErp } from '../../src/sandbox/cloud-erp/index.js';
import type { CloudErp, CloudErpOptions } from '../../src/sandbox/cloud-erp/index.js';
import { buildCatalogue } from '../../src/sandbox/cloud-erp/catalogue.js';
import { TokenBucket } from '../../src/sandbox/cloud-erp/limits.js';

const SECRET = 'erp-test-secret';

interface Clock {
  now: () => number;
  advance: (ms: number) => void;
}
function manualClock(start = 1_750_000_000_000): Clock {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

async function start(
  extra: Partial<CloudErpOptions> = {},
): Promise<{ erp: CloudErp; url: string }> {
  const erp = createCloudErp({ clientSecret: SECRET, ...extra });
  const url = await erp.listen();
  return { erp, url };
}

async function token(url: string): Promise<string> {
  const res = await fetch(`${url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'middlemart',
      client_secret: SECRET,
    }).toString(),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { access_token: string; token_type: string };
  assert.equal(body.token_type, 'Bearer');
  return body.access_token;
}

function api(url: string, bearer: string) {
  return (path: string, init: { method?: string; body?: unknown } = {}): Promise<Response> =>
    fetch(`${url}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${bearer}`,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
}

void test('the catalogue is deterministic per seed with a few SKUs absent', () => {
  const a = buildCatalogue({ seed: 9 });
  const b = buildCatalogue({ seed: 9 });
  const c = buildCatalogue({ seed: 10 });
  assert.equal(a.items.length, 200);
  assert.equal(a.absentSkus.length, 4);
  assert.deepEqual(a.items, b.items);
  assert.deepEqual(a.absentSkus, b.absentSkus);
  assert.notDeepEqual(
    a.items.map((i) => i.displayName),
    c.items.map((i) => i.displayName),
  );
  const known = new Set(a.items.map((i) => i.itemId));
  for (const sku of a.absentSkus) assert.ok(!known.has(sku));
  assert.equal(a.allSkus.length, 204);
});

void test('OAuth2 client credentials: form body, HTTP Basic, bad credentials, bearer required', async () => {
  const { erp, url } = await start();
  try {
    const bad = await fetch(`${url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=middlemart&client_secret=wrong',
    });
    assert.equal(bad.status, 401);
    assert.deepEqual(await bad.json(), { error: 'invalid_client' });

    const basic = await fetch(`${url}/oauth2/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`middlemart:${SECRET}`).toString('base64')}`,
      },
      body: 'grant_type=client_credentials',
    });
    assert.equal(basic.status, 200);
    const issued = (await basic.json()) as { access_token: string; expires_in: number };
    assert.equal(issued.expires_in, 3600);

    const noBearer = await fetch(`${url}/api/v1/items`);
    assert.equal(noBearer.status, 401);
    const body = (await noBearer.json()) as { 'o:errorDetails': { 'o:errorCode': string }[] };
    assert.equal(body['o:errorDetails'][0]?.['o:errorCode'], 'INVALID_LOGIN');

    const unknown = await api(url, 'not-a-token')('/api/v1/items');
    assert.equal(unknown.status, 401);

    const ok = await api(url, issued.access_token)('/api/v1/items');
    assert.equal(ok.status, 200);
    const items = (await ok.json()) as { totalResults: number; items: { itemId: string }[] };
    assert.equal(items.totalResults, 200);

    const wrongGrant = await fetch(`${url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=password&client_id=middlemart&client_secret=${SECRET}`,
    });
    assert.equal(wrongGrant.status, 400);
  } finally {
    await erp.close();
  }
});

void test('access tokens expire after their TTL', async () => {
  const clock = manualClock();
  const { erp, url } = await start({ now: clock.now, tokenTtlSeconds: 60 });
  try {
    const bearer = await token(url);
    assert.equal((await api(url, bearer)('/api/v1/locations')).status, 200);
    clock.advance(59_000);
    assert.equal((await api(url, bearer)('/api/v1/locations')).status, 200);
    clock.advance(1_000);
    const expired = await api(url, bearer)('/api/v1/locations');
    assert.equal(expired.status, 401);
    assert.match(expired.headers.get('www-authenticate') ?? '', /invalid_token/);
    const fresh = await token(url);
    assert.equal((await api(url, fresh)('/api/v1/locations')).status, 200);
  } finally {
    await erp.close();
  }
});

void test('sales orders are deduplicated by external reference and both posts are recorded', async () => {
  const { erp, url } = await start();
  try {
    const call = api(url, await token(url));
    const item = erp.catalogue.items[0];
    assert.ok(item);
    const order = {
      externalReference: 'MM-ORD-1001',
      currency: 'EUR',
      customer: { id: erp.catalogue.customers[0]?.id },
      lines: [{ item: { id: item.id }, quantity: 2, rate: 19.99 }],
    };
    const first = await call('/api/v1/sales-orders', { method: 'POST', body: order });
    assert.equal(first.status, 201);
    const created = (await first.json()) as { id: string; total: number; lines: unknown[] };
    assert.equal(created.total, 39.98);
    assert.equal(first.headers.get('location'), `/api/v1/sales-orders/${created.id}`);

    const second = await call('/api/v1/sales-orders', { method: 'POST', body: order });
    assert.equal(second.status, 200);
    assert.equal(((await second.json()) as { id: string }).id, created.id);

    const got = await call(`/api/v1/sales-orders/${created.id}`);
    assert.equal(got.status, 200);
    const byRef = await call('/api/v1/sales-orders?externalReference=MM-ORD-1001');
    const list = (await byRef.json()) as { items: { id: string }[] };
    assert.deepEqual(
      list.items.map((o) => o.id),
      [created.id],
    );
    assert.equal((await call('/api/v1/sales-orders/999999')).status, 404);

    const recorded = erp.received('salesOrders') as { duplicate: boolean }[];
    assert.deepEqual(
      recorded.map((r) => r.duplicate),
      [false, true],
    );
    assert.equal(erp.counters().salesOrderDuplicates, 1);

    const invoices = await call(
      `/api/v1/invoices?status=open&customer=${erp.catalogue.customers[0]?.id}`,
    );
    const open = (await invoices.json()) as { items: { createdFrom?: { id: string } }[] };
    assert.ok(open.items.some((i) => i.createdFrom?.id === created.id));

    const stock = await call('/api/v1/inventory?location=DC-EU-1');
    const levels = (await stock.json()) as {
      items: { item: { id: string }; quantityCommitted: number }[];
    };
    assert.equal(levels.items.find((l) => l.item.id === item.id)?.quantityCommitted, 2);

    const memo = await call('/api/v1/credit-memos', {
      method: 'POST',
      body: {
        externalReference: 'MM-RET-1',
        createdFrom: { id: created.id },
        currency: 'EUR',
        lines: [{ item: { id: item.id }, quantity: 1, rate: 19.99 }],
      },
    });
    assert.equal(memo.status, 201);
    const memoAgain = await call('/api/v1/credit-memos', {
      method: 'POST',
      body: { externalReference: 'MM-RET-1' },
    });
    assert.equal(memoAgain.status, 200);
  } finally {
    await erp.close();
  }
});

void test('validation errors come back in the ERP shape with field paths', async () => {
  const { erp, url } = await start();
  try {
    const call = api(url, await token(url));
    const absent = erp.catalogue.absentSkus[0];
    assert.ok(absent);
    const res = await call('/api/v1/sales-orders', {
      method: 'POST',
      body: {
        externalReference: 'MM-ORD-BAD',
        currency: 'EUR',
        lines: [
          { item: { id: '999999' }, quantity: 1, rate: 5 },
          { item: { id: erp.catalogue.items[1]?.id }, quantity: 0, rate: 5 },
          { quantity: 1, rate: 5 },
        ],
      },
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as {
      status: number;
      'o:errorDetails': { detail: string; 'o:errorPath': string; 'o:errorCode': string }[];
    };
    assert.equal(body.status, 400);
    const byPath = new Map(body['o:errorDetails'].map((d) => [d['o:errorPath'], d]));
    assert.equal(byPath.get('lines[0].item')?.['o:errorCode'], 'INVALID_KEY_OR_REF');
    assert.equal(byPath.get('lines[1].quantity')?.['o:errorCode'], 'INVALID_FLD_VALUE');
    assert.equal(byPath.get('lines[2].item')?.['o:errorCode'], 'USER_ERROR');

    const missing = await call('/api/v1/sales-orders', { method: 'POST', body: { lines: [] } });
    assert.equal(missing.status, 400);
    const missingBody = (await missing.json()) as {
      'o:errorDetails': { 'o:errorPath': string }[];
    };
    const paths = missingBody['o:errorDetails'].map((d) => d['o:errorPath']).sort();
    assert.deepEqual(paths, ['currency', 'externalReference', 'lines']);
    assert.equal(erp.counters().salesOrdersRejected, 2);

    const bearer = await token(url);
    const broken = await fetch(`${url}/api/v1/sales-orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: '{"externalReference": "MM-',
    });
    assert.equal(broken.status, 400);
    const brokenBody = (await broken.json()) as { 'o:errorDetails': { 'o:errorCode': string }[] };
    assert.equal(brokenBody['o:errorDetails'][0]?.['o:errorCode'], 'USER_ERROR');
    const missingRoute = await call('/api/v1/vendors');
    assert.equal(missingRoute.status, 404);

    const badCustomer = await call('/api/v1/customers', {
      method: 'POST',
      body: { companyName: 'X', email: 'nope', country: 'DE', currency: 'EUR' },
    });
    assert.equal(badCustomer.status, 400);
    const good = await call('/api/v1/customers', {
      method: 'POST',
      body: {
        externalReference: 'CUST-EXT-1',
        companyName: 'Fjord Trading AS',
        email: 'ap@fjord.example',
        country: 'NO',
        currency: 'NOK',
        taxId: 'NO123456789',
        terms: 'NET30',
        creditLimit: 10000,
      },
    });
    assert.equal(good.status, 201);
    const found = await call('/api/v1/customers?externalReference=CUST-EXT-1');
    assert.equal(((await found.json()) as { count: number }).count, 1);
  } finally {
    await erp.close();
  }
});

void test('the account-wide concurrency limit answers 429 and counts violations', async () => {
  const { erp, url } = await start({ concurrencyLimit: 2, processingDelayMs: 1500, burst: 100 });
  try {
    const call = api(url, await token(url));
    const responses = await Promise.all(Array.from({ length: 8 }, () => call('/api/v1/locations')));
    const statuses = responses.map((r) => r.status).sort();
    const rejected = responses.filter((r) => r.status === 429);
    assert.ok(rejected.length >= 1, `statuses ${statuses.join(',')}`);
    assert.ok(statuses.filter((s) => s === 200).length >= 2, `statuses ${statuses.join(',')}`);
    for (const r of rejected) {
      assert.equal(r.headers.get('retry-after'), '1');
      const body = (await r.json()) as { 'o:errorDetails': { 'o:errorCode': string }[] };
      assert.equal(body['o:errorDetails'][0]?.['o:errorCode'], 'CONCURRENCY_LIMIT_EXCEEDED');
    }
    const state = (await (await fetch(`${url}/_sandbox/state`)).json()) as {
      concurrencyViolations: number;
      maxConcurrencyObserved: number;
      counters: Record<string, number>;
    };
    assert.equal(state.concurrencyViolations, rejected.length);
    assert.equal(state.counters.concurrencyViolations, rejected.length);
    assert.ok(state.maxConcurrencyObserved >= 3);
    // Sequential requests after the burst are admitted again.
    assert.equal((await call('/api/v1/locations')).status, 200);
  } finally {
    await erp.close();
  }
});

void test('the per-account rate limit answers 429 with Retry-After and counts violations', async () => {
  const clock = manualClock();
  const { erp, url } = await start({ now: clock.now, ratePerSecond: 2, burst: 3 });
  try {
    const call = api(url, await token(url));
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await call('/api/v1/locations')).status);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    const limited = await call('/api/v1/locations');
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '1');
    const body = (await limited.json()) as { 'o:errorDetails': { 'o:errorCode': string }[] };
    assert.equal(body['o:errorDetails'][0]?.['o:errorCode'], 'RATE_LIMIT_EXCEEDED');
    assert.equal(erp.counters().rateLimitViolations, 3);
    clock.advance(1000);
    assert.equal((await call('/api/v1/locations')).status, 200);
    assert.equal((await call('/api/v1/locations')).status, 200);
    assert.equal((await call('/api/v1/locations')).status, 429);
  } finally {
    await erp.close();
  }
});

void test('token bucket refills at its rate up to its capacity', () => {
  const clock = manualClock();
  const bucket = new TokenBucket(2, 4, clock.now);
  assert.ok(bucket.take().ok);
  assert.ok(bucket.take().ok);
  const denied = bucket.take();
  assert.deepEqual(denied, { ok: false, retryAfterSeconds: 1 });
  clock.advance(250);
  assert.ok(bucket.take().ok);
  clock.advance(10_000);
  assert.equal(bucket.available(), 2);
});

void test('item master filter and inventory by location', async () => {
  const { erp, url } = await start();
  try {
    const call = api(url, await token(url));
    const sku = erp.catalogue.items[5]?.itemId ?? '';
    const one = (await (await call(`/api/v1/items?itemId=${sku}`)).json()) as {
      items: { itemId: string; upcCode: string }[];
    };
    assert.equal(one.items.length, 1);
    assert.equal(one.items[0]?.upcCode.length, 13);
    const absent = erp.catalogue.absentSkus[0] ?? '';
    const none = (await (await call(`/api/v1/items?itemId=${absent}`)).json()) as {
      count: number;
    };
    assert.equal(none.count, 0);
    const stock = (await (await call('/api/v1/inventory?location=DC-US-1')).json()) as {
      items: { location: { id: string } }[];
    };
    assert.equal(stock.items.length, 200);
    assert.ok(stock.items.every((s) => s.location.id === 'DC-US-1'));
    const unknown = await call('/api/v1/inventory?location=MOON-1');
    assert.equal(unknown.status, 400);
    const page = (await (await call('/api/v1/items?limit=50&offset=190')).json()) as {
      count: number;
      hasMore: boolean;
    };
    assert.deepEqual([page.count, page.hasMore], [10, false]);
  } finally {
    await erp.close();
  }
});

void test('a malformed-response fault leaves the order posted, findable by external reference', async () => {
  const { erp, url } = await start();
  try {
    const call = api(url, await token(url));
    const item = erp.catalogue.items[3];
    assert.ok(item);
    const injected = await fetch(`${url}/_sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        kind: 'malformed',
        rate: 1,
        route: '/api/v1/sales-orders',
        method: 'POST',
      }),
    });
    assert.equal(injected.status, 201);
    const res = await call('/api/v1/sales-orders', {
      method: 'POST',
      body: {
        externalReference: 'MM-ORD-LOST-REPLY',
        currency: 'EUR',
        lines: [{ item: { id: item.id }, quantity: 1, rate: 10 }],
      },
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.throws(() => JSON.parse(text) as unknown);
    const found = await call('/api/v1/sales-orders?externalReference=MM-ORD-LOST-REPLY');
    assert.equal(((await found.json()) as { count: number }).count, 1);
  } finally {
    await erp.close();
  }
});
