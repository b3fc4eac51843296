// The operations API against the real engine: dead letters made by a failing handler and a
// refusing destination, listed with filters and cursor pages, shown (payload redacted unless the
// key also holds payload-reader), replayed one by one and by filter; queues and circuits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PermanentError } from '../../src/runtime/index.js';
import { adjustment, startTestApp, type TestApp } from './app-helpers.js';

// The catalogue's types already have (no-op) handlers in the app; these tests own a type of their
// own and accept through the engine's inbox directly.
const TYPE = 'test.stock-count.v1';

interface DeadLetterBody {
  id: string;
  kind: string;
  destination: string | null;
  payload: unknown;
  payloadRedacted: boolean;
  lastError: string | null;
  status: string;
}

/** SKUs starting with D are delivered to the ERP (which refuses them); others fail the handler. */
function failEverything(api: TestApp): void {
  api.app.engine.registerHandler(TYPE, async (message, tx) => {
    const data = message.payload as { sku: string };
    if (data.sku.startsWith('D')) {
      await tx.deliver({ destination: 'erp', payload: { item: data.sku } });
      return;
    }
    throw new PermanentError(`unknown SKU ${data.sku}`);
  });
  api.app.engine.registerSender('erp', async () => ({
    status: 422,
    body: { error: 'no such item' },
  }));
}

async function waitForDeadLetters(api: TestApp, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const page = await api.app.engine.deadLetters.list({}, { limit: 100 });
    if (page.items.length >= n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fewer than ${n} dead letters`);
}

void test('dead letters: filters, cursor pages, redaction, replay one and by filter', async (t) => {
  const api = await startTestApp();
  t.after(() => api.close());
  failEverything(api);
  for (const [i, sku] of ['SKU-A', 'SKU-B', 'SKU-C', 'D-1', 'D-2'].entries()) {
    const res = await api.app.engine.accept({
      source: 'test',
      idempotencyKey: `e-${i}`,
      requestHash: `h-${i}`,
      type: TYPE,
      partitionKey: sku,
      priority: 'standard',
      payload: { sku },
    });
    assert.equal(res.outcome, 'accepted');
  }
  await waitForDeadLetters(api, 5);

  const operator = await api.key(['operator']);
  const reader = await api.key(['operator', 'payload-reader']);

  // Filters.
  const deliveries = await api.call('GET', '/v1/ops/dead-letters?destination=erp', {
    key: operator,
  });
  assert.equal(deliveries.status, 200, deliveries.text);
  const dItems = (deliveries.json() as { items: DeadLetterBody[] }).items;
  assert.equal(dItems.length, 2);
  assert.ok(dItems.every((d) => d.kind === 'delivery' && d.destination === 'erp'));
  const byError = await api.call('GET', '/v1/ops/dead-letters?error=unknown%20sku%20sku-b', {
    key: operator,
  });
  assert.equal((byError.json() as { items: DeadLetterBody[] }).items.length, 1);
  const byType = await api.call('GET', `/v1/ops/dead-letters?type=${TYPE}&kind=message`, {
    key: operator,
  });
  assert.equal((byType.json() as { items: DeadLetterBody[] }).items.length, 3);
  const future = await api.call('GET', '/v1/ops/dead-letters?since=2999-01-01T00:00:00Z', {
    key: operator,
  });
  assert.equal((future.json() as { items: DeadLetterBody[] }).items.length, 0);
  const past = await api.call('GET', '/v1/ops/dead-letters?until=2000-01-01T00:00:00Z', {
    key: operator,
  });
  assert.equal((past.json() as { items: DeadLetterBody[] }).items.length, 0);

  // Cursor pages cover everything exactly once.
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const res = await api.call(
      'GET',
      `/v1/ops/dead-letters?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      { key: operator },
    );
    const page = res.json() as { items: DeadLetterBody[]; nextCursor?: string };
    assert.ok(page.items.length <= 2);
    seen.push(...page.items.map((d) => d.id));
    cursor = page.nextCursor;
  } while (cursor);
  assert.equal(seen.length, 5);
  assert.equal(new Set(seen).size, 5);

  // Bad input is a 400 problem naming the parameter, never a 500.
  for (const q of ['limit=0', 'limit=abc', 'since=yesterday', 'kind=letter', 'cursor=bogus']) {
    const res = await api.call('GET', `/v1/ops/dead-letters?${q}`, { key: operator });
    assert.equal(res.status, 400, `${q}: ${res.text}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  }

  // Payload bodies: redacted for a plain operator, shown to a payload-reader.
  const id = dItems[0]!.id;
  const redacted = (
    await api.call('GET', `/v1/ops/dead-letters/${id}`, { key: operator })
  ).json() as DeadLetterBody;
  assert.equal(redacted.payloadRedacted, true);
  assert.equal(redacted.payload, null);
  const shown = (
    await api.call('GET', `/v1/ops/dead-letters/${id}`, { key: reader })
  ).json() as DeadLetterBody;
  assert.equal(shown.payloadRedacted, false);
  assert.match((shown.payload as { item: string }).item, /^D-[12]$/);
  const listed = (await api.call('GET', '/v1/ops/dead-letters', { key: operator })).json() as {
    items: DeadLetterBody[];
  };
  assert.ok(listed.items.every((d) => d.payload === null && d.payloadRedacted));
  assert.equal((await api.call('GET', '/v1/ops/dead-letters/nope', { key: operator })).status, 404);

  // Replay one delivery: re-queued under its own id (the refusing ERP dead-letters it again).
  const replay = await api.call('POST', `/v1/ops/dead-letters/${id}/replay`, { key: operator });
  assert.equal(replay.status, 202, replay.text);
  assert.deepEqual(replay.json(), {
    id,
    kind: 'delivery',
    newId: id,
    priority: 'standard',
    destination: 'erp',
  });
  // Replay one message: a new message; the dead letter is then spent (409), unknown ids are 404.
  const message = (byType.json() as { items: DeadLetterBody[] }).items[0]!;
  const replayed = await api.call('POST', `/v1/ops/dead-letters/${message.id}/replay`, {
    key: operator,
  });
  assert.equal(replayed.status, 202, replayed.text);
  const requeued = replayed.json() as { newId: string; priority: string; destination?: string };
  assert.notEqual(requeued.newId, message.id);
  assert.equal(requeued.priority, 'standard');
  assert.equal(requeued.destination, undefined);
  const again = await api.call('POST', `/v1/ops/dead-letters/${message.id}/replay`, {
    key: operator,
  });
  assert.equal(again.status, 409);
  assert.equal(
    (again.json() as { type: string }).type,
    'https://middlemart.dev/problems/already-replayed',
  );
  assert.equal(
    (await api.call('POST', '/v1/ops/dead-letters/nope/replay', { key: operator })).status,
    404,
  );

  // Replay by filter, bounded by the limit.
  const bulk = await api.call('POST', '/v1/ops/replays', {
    key: operator,
    body: { kind: 'message', error: 'unknown sku', limit: 2 },
  });
  assert.equal(bulk.status, 202, bulk.text);
  assert.equal((bulk.json() as { replayed: number }).replayed, 2);
  const typo = await api.call('POST', '/v1/ops/replays', {
    key: operator,
    body: { destinaton: 'erp', limit: 1000 },
  });
  assert.equal(typo.status, 400, 'a misspelt filter never widens a replay');
  assert.deepEqual((typo.json() as { errors: unknown[] }).errors, [
    { path: 'destinaton', message: 'is not allowed' },
  ]);
  const noBody = await api.call('POST', '/v1/ops/replays', { key: operator });
  assert.equal(noBody.status, 400);
  const badBulk = await api.call('POST', '/v1/ops/replays', { key: operator, body: { limit: -1 } });
  assert.equal(badBulk.status, 400);
  assert.equal((badBulk.json() as { errors: Array<{ path: string }> }).errors[0]?.path, 'limit');

  // Replays are in the audit log, with the operator's key.
  const audit = (
    await api.call('GET', '/v1/audit', { key: await api.key(['auditor']) })
  ).json() as {
    items: Array<{ action: string; actor: string }>;
  };
  const actions = audit.items.map((a) => a.action);
  assert.ok(actions.includes('dead-letter.replayed'), actions.join());
  assert.ok(actions.includes('dead-letters.replayed-by-filter'), actions.join());
  assert.ok(actions.includes('dead-letter.payload-viewed'), actions.join());
});

void test('queues: depth and oldest age by class and destination, and circuit states', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  await api.call('POST', '/v1/events', { key: channel, body: adjustment('q-1', 1) });
  await api.call('POST', '/v1/events', { key: channel, body: adjustment('q-2', 2, 'SKU-2') });
  const res = await api.call('GET', '/v1/ops/queues', { key: await api.key(['operator']) });
  assert.equal(res.status, 200, res.text);
  const body = res.json() as {
    messages: {
      total: { depth: number };
      byClass: Record<string, { depth: number; oldestAgeMs: number }>;
    };
    deliveries: { byDestination: Record<string, unknown> };
    circuits: Array<{ id: string; circuit: string }>;
  };
  assert.equal(body.messages.total.depth, 2);
  const cls = Object.values(body.messages.byClass).find((c) => c.depth === 2);
  assert.ok(cls && cls.oldestAgeMs >= 0);
  assert.deepEqual(
    body.circuits.map((c) => [c.id, c.circuit]),
    [
      ['erp', 'closed'],
      ['wms', 'closed'],
    ],
  );
});
