// The POS simulator: per-store sequences, offline buffering and the batch upload on reconnect,
// against a local receiver standing in for Middlemart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPos } from '../../src/sandbox/pos/index.js';
import type { PosBatch, PosTransaction } from '../../src/sandbox/pos/index.js';

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

async function fakeMiddlemart(
  status: (hit: Hit, n: number) => number = () => 202,
): Promise<{ url: string; hits: Hit[]; server: Server }> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = {
        path: req.url ?? '',
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
      };
      hits.push(hit);
      const code = status(hit, hits.length);
      res.writeHead(code, {
        'content-type': code < 300 ? 'application/json' : 'application/problem+json',
      });
      res.end(
        JSON.stringify(
          code < 300 ? { id: String(hits.length) } : { type: 'about:blank', status: code },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

const fixedClock = () => {
  let t = Date.UTC(2026, 0, 5, 10, 0, 0);
  return () => (t += 1000);
};

void test('an offline store buffers with per-store sequences and uploads one batch on reconnect', async () => {
  const mm = await fakeMiddlemart();
  const pos = createPos({
    seed: 9,
    stores: 3,
    middlemartUrl: mm.url,
    transport: 'native',
    now: fixedClock(),
  });
  const base = await pos.listen();
  try {
    const first = await pos.sell('store-001');
    assert.equal(first.sequence, 1);
    assert.equal(mm.hits.length, 1, 'an online sale is uploaded at once');
    assert.equal(mm.hits[0]?.path, '/v1/stores/store-001/batches');

    const off = await fetch(`${base}/_sandbox/stores/store-001/offline`, { method: 'POST' });
    assert.equal(off.status, 200);
    const buffered: PosTransaction[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/_sandbox/stores/store-001/sales`, { method: 'POST' });
      assert.equal(res.status, 201);
      buffered.push(((await res.json()) as { transaction: PosTransaction }).transaction);
    }
    buffered.push(await pos.returnItem('store-001'));
    assert.deepEqual(
      buffered.map((t) => t.sequence),
      [2, 3, 4, 5],
    );
    assert.equal(buffered[3]?.kind, 'return');
    assert.equal(mm.hits.length, 1, 'nothing is uploaded while offline');

    // Another store keeps its own sequence.
    const other = await pos.sell('store-002');
    assert.equal(other.sequence, 1);

    const state = (await (await fetch(`${base}/_sandbox/state`)).json()) as {
      stores: Array<{
        id: string;
        online: boolean;
        nextSequence: number;
        buffer: PosTransaction[];
      }>;
    };
    const s1 = state.stores.find((s) => s.id === 'store-001');
    assert.ok(s1);
    assert.equal(s1.online, false);
    assert.equal(s1.nextSequence, 6);
    assert.deepEqual(
      s1.buffer.map((t) => t.sequence),
      [2, 3, 4, 5],
    );

    const on = await fetch(`${base}/_sandbox/stores/store-001/online`, { method: 'POST' });
    assert.equal(on.status, 200);
    const answer = (await on.json()) as { uploads: Array<{ ok: boolean; batchId: string }> };
    assert.deepEqual(
      answer.uploads.map((u) => [u.ok, u.batchId]),
      [[true, `store-001:${pos.session}:2-5`]],
    );
    const storeHits = mm.hits.filter((h) => h.path === '/v1/stores/store-001/batches');
    assert.equal(storeHits.length, 2);
    const batch = storeHits[1]?.body as PosBatch;
    assert.equal(batch.offline, true);
    assert.equal(batch.firstSequence, 2);
    assert.equal(batch.lastSequence, 5);
    assert.deepEqual(
      batch.transactions.map((t) => t.transactionId),
      buffered.map((t) => t.transactionId),
    );
    assert.equal(storeHits[1]?.headers['idempotency-key'], `batch:store-001:${pos.session}:2-5`);
    assert.ok(batch.transactions.every((t) => t.session === pos.session));
    assert.equal(pos.store('store-001').buffer.length, 0);
    assert.equal(pos.store('store-001').uploads.length, 2);

    const missing = await fetch(`${base}/_sandbox/stores/store-999/offline`, { method: 'POST' });
    assert.equal(missing.status, 404);
  } finally {
    await pos.close();
    mm.server.close();
  }
});

void test('the events transport uploads canonical events in sequence and keeps what was refused', async () => {
  let refuse = true;
  const mm = await fakeMiddlemart(() => (refuse ? 503 : 202));
  const pos = createPos({
    seed: 10,
    stores: 2,
    middlemartUrl: mm.url,
    transport: 'events',
    now: fixedClock(),
  });
  try {
    pos.goOffline('store-002');
    await pos.sell('store-002');
    await pos.sell('store-002');
    const failed = await pos.goOnline('store-002');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.ok, false);
    assert.equal(pos.store('store-002').buffer.length, 2, 'a refused upload keeps the buffer');
    const firstAttempt = mm.hits[0];

    refuse = false;
    const retried = await pos.sync('store-002');
    assert.equal(retried[0]?.ok, true);
    assert.equal(pos.store('store-002').buffer.length, 0);
    const events = mm.hits.slice(1);
    assert.deepEqual(
      events.map((h) => h.headers['idempotency-key']),
      [`pos:store-002-${pos.session}-000001`, `pos:store-002-${pos.session}-000002`],
    );
    assert.ok(events.every((h) => h.path === '/v1/events'));
    assert.deepEqual(events[0]?.body, firstAttempt?.body, 'a retry resends the same event');
    const data = events[0]?.body as {
      type: string;
      data: { channel: string; fulfilment: { storeLocation: string } };
    };
    assert.equal(data.type, 'com.middlemart.order.created.v1');
    assert.equal(data.data.channel, 'store');
    assert.equal(data.data.fulfilment.storeLocation, 'store-002');
  } finally {
    await pos.close();
    mm.server.close();
  }
});

void test('the same seed rings up the same transactions', async () => {
  const ring = async () => {
    const pos = createPos({ seed: 42, stores: 2, now: fixedClock() });
    const out: PosTransaction[] = [];
    pos.goOffline('store-001');
    for (let i = 0; i < 5; i++) out.push(await pos.sell('store-001'));
    await pos.close();
    return out;
  };
  const a = await ring();
  const b = await ring();
  assert.deepEqual(a, b);
  const c = createPos({ seed: 43, stores: 1, now: fixedClock() });
  c.goOffline('store-001');
  const other = await c.sell('store-001');
  await c.close();
  assert.notDeepEqual(other.lines, a[0]?.lines);
});
