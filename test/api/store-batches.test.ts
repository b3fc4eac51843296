// POST /v1/stores/{storeId}/batches and GET …/sequence-gaps over HTTP against the real app:
// sales become order.created (store_sale), returns return.requested behind their sale; resent
// sequences are duplicates answered with their first message, an upload replayed under its
// Idempotency-Key gets its first answer, a sequence resent with other content refuses the batch
// (nothing taken), gaps are reported; and the sandbox POS uploads through it natively.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startApp } from '../../src/app.js';
import { createApiKey } from '../../src/api/auth/api-keys.js';
import { createLogger } from '../../src/observability/logger.js';
import { createPos } from '../../src/sandbox/pos/index.js';
import { ingressModule } from '../../src/wiring/ingress.js';
import { BASE_ESTATE, PG_URL, estateConfig, postgresDb } from '../domains/inventory/app.js';
import { priorityRank } from '../../src/runtime/queue.js';
import { startTestApp, type TestApp } from './app-helpers.js';

interface Tx {
  storeId: string;
  session: string;
  sequence: number;
  transactionId: string;
  kind: 'sale' | 'return';
  occurredAt: string;
  register: string;
  currency: string;
  lines: Array<{ lineId: string; sku: string; quantity: number; unitPrice: number }>;
  total: number;
  tender: 'card' | 'cash';
  originalTransactionId?: string;
  returnReason?: 'size_or_fit';
}

function txId(store: string, session: string, seq: number) {
  return `${store}-${session}-${String(seq).padStart(6, '0')}`;
}

function sale(store: string, session: string, seq: number, quantity = 1): Tx {
  return {
    storeId: store,
    session,
    sequence: seq,
    transactionId: txId(store, session, seq),
    kind: 'sale',
    occurredAt: new Date(Date.UTC(2026, 10, 28, 8, 0, seq)).toISOString(),
    register: 'R1',
    currency: 'EUR',
    lines: [{ lineId: '1', sku: 'MM-00001', quantity, unitPrice: 1500 }],
    total: 1500 * quantity,
    tender: 'card',
  };
}

function storeReturn(store: string, session: string, seq: number, of: number): Tx {
  return {
    ...sale(store, session, seq),
    kind: 'return',
    originalTransactionId: txId(store, session, of),
    returnReason: 'size_or_fit',
  };
}

function batch(store: string, session: string, txs: Tx[]) {
  const seqs = txs.map((t) => t.sequence);
  return {
    storeId: store,
    session,
    batchId: `${store}:${session}:${Math.min(...seqs)}-${Math.max(...seqs)}`,
    firstSequence: Math.min(...seqs),
    lastSequence: Math.max(...seqs),
    createdAt: txs[txs.length - 1]!.occurredAt,
    offline: false,
    transactions: txs,
  };
}

interface Answer {
  received: number;
  accepted: number;
  duplicates: number;
  lastSequence: number;
  transactions: Array<{ sequence: number; id: string; outcome: string; event: string }>;
  gaps: Array<{ session: string; from: number; to: number; missing: number }>;
  traceId: string;
}

async function messages(api: TestApp) {
  return api.app.store.query<{
    seq: number;
    id: string;
    type: string;
    partition_key: string;
    idempotency_key: string;
    priority: number;
    payload: string;
  }>(
    'SELECT seq, id, type, partition_key, idempotency_key, priority, payload FROM messages ORDER BY seq',
  );
}

async function upload(
  api: TestApp,
  key: string,
  store: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return api.call('POST', `/v1/stores/${store}/batches`, { key, body, headers });
}

void test('a batch of sales and a return: canonical events, partitioned so the return follows its sale', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const txs = [
    sale('store-001', 'a1', 1, 2),
    sale('store-001', 'a1', 2),
    storeReturn('store-001', 'a1', 3, 1),
  ];
  const traceId = '5bf92f3577b34da6a3ce929d0e0e4736';
  const res = await upload(api, key, 'store-001', batch('store-001', 'a1', txs), {
    traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
  });
  assert.equal(res.status, 202, res.text);
  const answer = res.json() as Answer;
  assert.equal(answer.received, 3);
  assert.equal(answer.accepted, 3);
  assert.equal(answer.duplicates, 0);
  assert.equal(answer.lastSequence, 3);
  assert.deepEqual(answer.gaps, []);
  assert.equal(answer.traceId, traceId);
  assert.deepEqual(
    answer.transactions.map((x) => [x.sequence, x.event, x.outcome]),
    [
      [1, 'order.created', 'accepted'],
      [2, 'order.created', 'accepted'],
      [3, 'return.requested', 'accepted'],
    ],
  );

  const rows = await messages(api);
  assert.equal(rows.length, 3);
  const byKey = new Map(rows.map((r) => [r.idempotency_key, r]));
  const first = byKey.get('pos:store-001:a1:1')!;
  const ret = byKey.get('pos:store-001:a1:3')!;
  assert.equal(first.type, 'com.middlemart.order.created.v1');
  assert.equal(first.partition_key, 'pos-store-001-a1-000001');
  assert.equal(first.priority, priorityRank('critical'));
  const order = (api.app.engine.readPayload(first.payload) as { data: Record<string, unknown> })
    .data;
  assert.equal(order.channel, 'store');
  assert.deepEqual(order.fulfilment, { method: 'store_sale', storeLocation: 'store-001' });
  assert.deepEqual((order.totals as { grandTotal: unknown }).grandTotal, {
    amount: 3000,
    currency: 'EUR',
  });
  assert.equal(ret.type, 'com.middlemart.return.requested.v1');
  assert.equal(ret.partition_key, first.partition_key, 'the return queues behind its sale');
  assert.ok(ret.seq > first.seq, 'the sale is accepted before its return');
  const data = (api.app.engine.readPayload(ret.payload) as { data: Record<string, unknown> }).data;
  assert.equal(data.orderId, 'pos-store-001-a1-000001');
  assert.deepEqual(data.returnLocation, { kind: 'store', location: 'store-001' });
});

void test('duplicates and replays are harmless: same sequence, same message; same upload, same answer', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const body = batch('store-002', 's1', [sale('store-002', 's1', 1), sale('store-002', 's1', 2)]);
  const headers = { 'idempotency-key': `batch:${body.batchId}` };
  const first = await upload(api, key, 'store-002', body, headers);
  assert.equal(first.status, 202, first.text);
  const replay = await upload(api, key, 'store-002', body, headers);
  assert.equal(replay.status, 202);
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(replay.json(), first.json());

  // The same transactions in another cut of the buffer (no key): duplicates, and one new.
  const recut = await upload(
    api,
    key,
    'store-002',
    batch('store-002', 's1', [sale('store-002', 's1', 2), sale('store-002', 's1', 3)]),
  );
  assert.equal(recut.status, 202, recut.text);
  const a = recut.json() as Answer;
  const firstIds = (first.json() as Answer).transactions;
  assert.deepEqual(
    a.transactions.map((x) => [x.sequence, x.outcome]),
    [
      [2, 'duplicate'],
      [3, 'accepted'],
    ],
  );
  assert.equal(
    a.transactions[0]!.id,
    firstIds[1]!.id,
    'a duplicate is answered with its first message',
  );
  assert.equal(a.duplicates, 1);
  assert.equal(a.accepted, 1);
  assert.equal((await messages(api)).length, 3);

  // The same key for another upload is a 409.
  const other = await upload(
    api,
    key,
    'store-002',
    batch('store-002', 's1', [sale('store-002', 's1', 4)]),
    headers,
  );
  assert.equal(other.status, 409);
});

void test('a sequence resent with other content refuses the whole batch; nothing of it is taken', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  assert.equal(
    (await upload(api, key, 'store-003', batch('store-003', 'x', [sale('store-003', 'x', 1)])))
      .status,
    202,
  );
  const changed = sale('store-003', 'x', 1, 3);
  const res = await upload(
    api,
    key,
    'store-003',
    batch('store-003', 'x', [changed, sale('store-003', 'x', 2)]),
  );
  assert.equal(res.status, 409, res.text);
  const problem = res.json() as { errors: Array<{ path: string; message: string }> };
  assert.equal(problem.errors[0]?.path, 'transactions[0].sequence');
  assert.equal((await messages(api)).length, 1, 'sequence 2 was not taken either');
});

void test('gaps are reported in the answer and by GET …/sequence-gaps until the store fills them', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const store = 'store-004';
  await upload(api, key, store, batch(store, 'g', [sale(store, 'g', 1), sale(store, 'g', 2)]));
  const res = await upload(
    api,
    key,
    store,
    batch(store, 'g', [sale(store, 'g', 5), sale(store, 'g', 6)]),
  );
  assert.equal(res.status, 202);
  assert.deepEqual((res.json() as Answer).gaps, [{ session: 'g', from: 3, to: 4, missing: 2 }]);

  const reader = await api.key(['operator']);
  const gaps = await api.call('GET', `/v1/stores/${store}/sequence-gaps`, { key: reader });
  assert.equal(gaps.status, 200, gaps.text);
  assert.deepEqual(gaps.json(), {
    storeId: store,
    sessions: [{ session: 'g', received: 4, lastSequence: 6 }],
    gaps: [{ session: 'g', from: 3, to: 4, missing: 2 }],
  });

  const filled = await upload(
    api,
    key,
    store,
    batch(store, 'g', [sale(store, 'g', 3), sale(store, 'g', 4)]),
  );
  assert.deepEqual((filled.json() as Answer).gaps, []);
  // A batch that starts above 1 in a new session has a gap from 1.
  const late = await upload(api, key, store, batch(store, 'h', [sale(store, 'h', 3)]));
  assert.deepEqual((late.json() as Answer).gaps, [{ session: 'h', from: 1, to: 2, missing: 2 }]);
  // Another store's numbers are its own.
  const other = await api.call('GET', '/v1/stores/store-999/sequence-gaps', { key: reader });
  assert.deepEqual(other.json(), { storeId: 'store-999', sessions: [], gaps: [] });
});

void test('an invalid batch is a 400 naming every field; nothing is stored', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const bad = sale('store-005', 'v', 2);
  bad.lines[0]!.quantity = 0;
  const wrongTotal = { ...sale('store-005', 'v', 3), total: 1 };
  const orphan = { ...storeReturn('store-005', 'v', 4, 1), originalTransactionId: undefined };
  const res = await upload(
    api,
    key,
    'store-005',
    batch('store-005', 'v', [sale('store-005', 'v', 1), bad, wrongTotal, orphan as Tx]),
  );
  assert.equal(res.status, 400, res.text);
  const paths = (res.json() as { errors: Array<{ path: string }> }).errors.map((e) => e.path);
  assert.ok(paths.includes('transactions[1].lines[0].quantity'), paths.join());

  const res2 = await upload(
    api,
    key,
    'store-005',
    batch('store-005', 'v', [wrongTotal, orphan as Tx]),
  );
  const paths2 = (res2.json() as { errors: Array<{ path: string }> }).errors.map((e) => e.path);
  assert.deepEqual(paths2, ['transactions[0].total', 'transactions[1].originalTransactionId']);

  const elsewhere = await upload(
    api,
    key,
    'store-006',
    batch('store-005', 'v', [sale('store-005', 'v', 1)]),
  );
  assert.equal(elsewhere.status, 400);
  assert.ok(
    (elsewhere.json() as { errors: Array<{ path: string }> }).errors.some(
      (e) => e.path === 'storeId',
    ),
  );
  assert.equal((await messages(api)).length, 0);
});

void test('the sandbox POS uploads live and offline-buffered transactions natively', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const key = await api.key(['channel']);
  const pos = createPos({
    seed: 3,
    stores: 2,
    transport: 'native',
    middlemartUrl: api.url,
    apiKey: key,
  });
  await pos.listen();
  t.after(() => pos.close());

  const live = await pos.sell('store-001');
  pos.goOffline('store-002');
  const sold = [await pos.sell('store-002'), await pos.sell('store-002')];
  const returned = await pos.returnItem('store-002', sold[0]!.transactionId);
  const uploads = await pos.goOnline('store-002');
  assert.equal(uploads.length, 1);
  assert.ok(uploads[0]!.ok, JSON.stringify(uploads[0]));
  assert.deepEqual(uploads[0]!.statuses, [202]);
  assert.equal(pos.store('store-002').buffer.length, 0);

  const rows = await messages(api);
  const keys = rows.map((r) => r.idempotency_key);
  assert.deepEqual(
    keys.sort(),
    [
      `pos:store-001:${pos.session}:${live.sequence}`,
      `pos:store-002:${pos.session}:1`,
      `pos:store-002:${pos.session}:2`,
      `pos:store-002:${pos.session}:3`,
    ].sort(),
  );
  const ret = rows.find(
    (r) => r.idempotency_key === `pos:store-002:${pos.session}:${returned.sequence}`,
  )!;
  assert.equal(ret.type, 'com.middlemart.return.requested.v1');
  assert.equal(ret.partition_key, `pos-${sold[0]!.transactionId}`);

  // Uploading again (nothing buffered) and resending a batch the POS already sent change nothing.
  await pos.sync('store-002');
  assert.equal((await messages(api)).length, 4);
  const gaps = await api.call('GET', '/v1/stores/store-002/sequence-gaps', { key });
  assert.deepEqual((gaps.json() as { gaps: unknown[] }).gaps, []);
});

void test(
  'PostgreSQL: the ledger takes, deduplicates and reports gaps the same way',
  { skip: PG_URL ? false : 'MIDDLEMART_TEST_PG_URL not set' },
  async (t) => {
    const db = await postgresDb();
    const config = estateConfig(BASE_ESTATE);
    const app = await startApp({
      config: { ...config, engine: { ...config.engine, roles: ['api'] } },
      port: 0,
      storeUrl: db.url,
      // The ingress module alone: this test is about its ledger on PostgreSQL.
      modules: [ingressModule],
      logger: createLogger({ level: 'silent' }),
    });
    t.after(async () => {
      await app.stop();
      await db.drop();
    });
    const key = (await createApiKey(app.store, { name: 'pos', roles: ['channel'] })).key;
    const post = async (body: unknown) => {
      const res = await fetch(`${app.url}/v1/stores/store-pg/batches`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, answer: (await res.json()) as Answer };
    };
    const s = 'pg';
    const one = await post(batch('store-pg', s, [sale('store-pg', s, 1), sale('store-pg', s, 4)]));
    assert.equal(one.status, 202, JSON.stringify(one.answer));
    assert.deepEqual(one.answer.gaps, [{ session: s, from: 2, to: 3, missing: 2 }]);
    const two = await post(
      batch('store-pg', s, [
        sale('store-pg', s, 1),
        sale('store-pg', s, 2),
        storeReturn('store-pg', s, 3, 1),
      ]),
    );
    assert.equal(two.status, 202);
    assert.deepEqual(
      two.answer.transactions.map((x) => x.outcome),
      ['duplicate', 'accepted', 'accepted'],
    );
    assert.equal(two.answer.transactions[0]!.id, one.answer.transactions[0]!.id);
    assert.deepEqual(two.answer.gaps, []);
    assert.equal(two.answer.lastSequence, 4);
    const rows = await app.store.query<{ n: number | string }>(
      'SELECT COUNT(*) AS n FROM messages',
    );
    assert.equal(Number(rows[0]!.n), 4);
  },
);
