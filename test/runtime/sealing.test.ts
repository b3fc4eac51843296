// Sealed engine payloads (ADR 0018): with a sealer, no message, delivery or dead letter row holds
// a customer's email, name or phone in clear, while handlers and senders see clear payloads;
// dead letters show and replay in clear; rows written in clear before the sealer stay readable;
// a payload sealed under a key not configured is a clear error, never garbage; and with the
// personal-data scope only personal payloads (and what their handlers write) are sealed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BACKENDS } from '../store/backends.js';
import { createEngine, type EngineOptions } from '../../src/runtime/engine.js';
import {
  createPayloadSealer,
  isSealedPayload,
  readStoredPayload,
  SEALED_PAYLOAD_PREFIX,
  SealedPayloadError,
  sealedKeyId,
} from '../../src/runtime/sealing.js';
import type { OutboundDelivery, QueuedMessage } from '../../src/runtime/types.js';
import type { Store } from '../../src/store/port.js';
import { passThroughGate, waitFor } from './support.js';

const CUSTOMER = {
  givenName: 'Henrietta',
  familyName: 'Quackenbush',
  email: 'henrietta.quackenbush@example.org',
  phone: '+4915112345678',
};
const PII = Object.values(CUSTOMER);
const ENGINE_TABLES = [
  'messages',
  'deliveries',
  'dead_letters',
  'idempotency_keys',
  'attempts',
  'state',
];

function customerEvent(id: string) {
  return {
    specversion: '1.0',
    id,
    source: '/crm',
    type: 'customer.created',
    data: { id: 'cus-1', ...CUSTOMER },
  };
}

/** Every value of every row of the engine's tables, as text. */
async function rawRows(store: Store): Promise<string[]> {
  const out: string[] = [];
  for (const table of ENGINE_TABLES) {
    for (const row of await store.query(`SELECT * FROM ${table}`)) {
      for (const v of Object.values(row)) {
        if (v === null || v === undefined) continue;
        out.push(Buffer.isBuffer(v) ? v.toString('latin1') : String(v));
      }
    }
  }
  return out;
}

async function assertNoPii(store: Store): Promise<void> {
  const values = await rawRows(store);
  assert.ok(values.length > 0);
  for (const v of values) {
    for (const p of PII)
      assert.ok(!v.includes(p), `a raw engine row holds ${p}: ${v.slice(0, 80)}`);
  }
}

function key(): Buffer {
  return randomBytes(32);
}

const fast: Partial<EngineOptions> = {
  pollMs: { min: 1, max: 10 },
  handlerRetry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
  deliveryMaxAttempts: 2,
};

test('the sealer: prefix and key id, round trip, rotation, wrong key and tampering are clear errors', () => {
  const k1 = key();
  const k2 = key();
  const s1 = createPayloadSealer({ current: k1 });
  const json = JSON.stringify({ email: CUSTOMER.email });
  const sealed = s1.seal(json);
  assert.ok(sealed.startsWith(`${SEALED_PAYLOAD_PREFIX}${s1.keyId}.`));
  assert.equal(sealedKeyId(sealed), s1.keyId);
  assert.ok(s1.isSealed(sealed) && isSealedPayload(sealed));
  assert.ok(!sealed.includes(CUSTOMER.email));
  assert.notEqual(s1.seal(json), sealed, 'a fresh IV every time');
  assert.equal(s1.open(sealed), json);
  // Clear JSON is never mistaken for a sealed payload, and passes through.
  assert.ok(!s1.isSealed(json));
  assert.deepEqual(readStoredPayload(s1, json), { email: CUSTOMER.email });
  assert.deepEqual(readStoredPayload(undefined, json), { email: CUSTOMER.email });
  // Rotation: the new key opens what the old one sealed when the old one is a previous key.
  const s2 = createPayloadSealer({ current: k2, previous: [k1] });
  assert.equal(s2.open(sealed), json);
  assert.notEqual(sealedKeyId(s2.seal(json)), s1.keyId);
  // A key that is not configured: an error naming the key id, not garbage.
  const other = createPayloadSealer({ current: k2 });
  assert.throws(
    () => other.open(sealed),
    (e: unknown) =>
      e instanceof SealedPayloadError &&
      e.message.includes(s1.keyId) &&
      e.message.includes('not configured'),
  );
  assert.throws(
    () => readStoredPayload(undefined, sealed),
    (e: unknown) => e instanceof SealedPayloadError && /no payload key/.test(e.message),
  );
  // Altered ciphertext fails authentication.
  const parts = sealed.split('.');
  const ct = Buffer.from(parts[4]!, 'base64url');
  ct[0] = ct[0]! ^ 1;
  parts[4] = ct.toString('base64url');
  assert.throws(
    () => s1.open(parts.join('.')),
    (e: unknown) => e instanceof SealedPayloadError && /authentication/.test(e.message),
  );
  assert.throws(() => createPayloadSealer({ current: randomBytes(16) }), /32 bytes/);
});

for (const backend of BACKENDS) {
  describe(`sealed payloads: ${backend.name}`, { skip: backend.skip }, () => {
    test('no PII in any engine table; handlers, senders and dead letters see clear payloads', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        const sealer = createPayloadSealer({ current: key() });
        const engine = createEngine({ store, gate: passThroughGate(), sealer, ...fast });
        const handled: QueuedMessage[] = [];
        const sent: OutboundDelivery[] = [];
        let failDelivery = true;
        engine.registerHandler('customer.created', async (msg, tx) => {
          handled.push(msg);
          const data = (msg.payload as { data: typeof CUSTOMER }).data;
          await tx.emit({ type: 'customer.announced', partitionKey: 'cus-1', payload: data });
          await tx.deliver({ destination: 'crm', payload: { action: 'customer.sync', ...data } });
          await tx.state.put('customers', 'cus-1', { seen: true });
        });
        let announcedFails = true;
        engine.registerHandler('customer.announced', async (msg) => {
          handled.push(msg);
          if (announcedFails) throw new Error('announcement handler down');
        });
        engine.registerSender('crm', async (d) => {
          sent.push(d);
          return { status: failDelivery ? 400 : 200 };
        });
        const r = await engine.accept({
          source: 'crm',
          idempotencyKey: 'evt-1',
          requestHash: 'h1',
          type: 'customer.created',
          partitionKey: 'cus-1',
          priority: 'standard',
          payload: customerEvent('evt-1'),
        });
        assert.equal(r.outcome, 'accepted');
        // Idempotent accept compares request hashes, not (sealed) payloads.
        const again = await engine.accept({
          source: 'crm',
          idempotencyKey: 'evt-1',
          requestHash: 'h1',
          type: 'customer.created',
          partitionKey: 'cus-1',
          priority: 'standard',
          payloadJson: JSON.stringify(customerEvent('evt-1')),
          payload: null,
        });
        assert.equal(again.outcome, 'duplicate');
        const conflict = await engine.accept({
          source: 'crm',
          idempotencyKey: 'evt-1',
          requestHash: 'h2',
          type: 'customer.created',
          partitionKey: 'cus-1',
          priority: 'standard',
          payload: customerEvent('evt-1'),
        });
        assert.equal(conflict.outcome, 'conflict');
        engine.start();
        await waitFor('both dead letters', async () => (await engine.stats()).deadLetters === 2);

        // Handlers and the sender saw everything in clear.
        assert.deepEqual(handled[0]!.payload, customerEvent('evt-1'));
        assert.deepEqual(handled[1]!.payload, { id: 'cus-1', ...CUSTOMER });
        assert.deepEqual(sent[0]!.payload, { action: 'customer.sync', id: 'cus-1', ...CUSTOMER });

        // The raw rows: sealed under the key id, no PII anywhere.
        await assertNoPii(store);
        for (const table of ['messages', 'deliveries', 'dead_letters']) {
          const rows = await store.query<{ payload: string }>(`SELECT payload FROM ${table}`);
          assert.ok(rows.length > 0, table);
          for (const row of rows) {
            assert.equal(sealedKeyId(row.payload), sealer.keyId, `${table} payload sealed`);
          }
        }

        // Dead letters list and show in clear.
        const page = await engine.deadLetters.list();
        assert.equal(page.items.length, 2);
        for (const d of page.items) assert.equal(d.payloadError, undefined);
        const message = page.items.find((d) => d.kind === 'message')!;
        const delivery = page.items.find((d) => d.kind === 'delivery')!;
        assert.deepEqual(message.payload, { id: 'cus-1', ...CUSTOMER });
        assert.deepEqual((await engine.deadLetters.show(delivery.id))!.payload, {
          action: 'customer.sync',
          id: 'cus-1',
          ...CUSTOMER,
        });

        // Replay: the handler and the sender get clear payloads again; the copies stay sealed.
        announcedFails = false;
        failDelivery = false;
        const before = handled.length;
        assert.ok(await engine.deadLetters.replay(message.id));
        assert.ok(await engine.deadLetters.replay(delivery.id));
        await waitFor('replayed', () => handled.length > before && sent.length >= 2);
        await waitFor('delivered', () => engine.counters.delivered === 1);
        assert.deepEqual(handled.at(-1)!.payload, { id: 'cus-1', ...CUSTOMER });
        assert.equal(handled.at(-1)!.replayCount, 1);
        assert.deepEqual(sent.at(-1)!.payload, {
          action: 'customer.sync',
          id: 'cus-1',
          ...CUSTOMER,
        });
        await engine.stop();
        await assertNoPii(store);
        assert.equal(engine.payloadKeyId, sealer.keyId);
        const stored = await store.query<{ payload: string }>(
          "SELECT payload FROM messages WHERE type = 'customer.created'",
        );
        assert.deepEqual(engine.readPayload(stored[0]!.payload), customerEvent('evt-1'));
      } finally {
        await store.close();
        await db.drop();
      }
    });

    test('rows written in clear before the sealer are read fine; mixed tables work', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        // Before the upgrade: no sealer. old-1 dies, old-0 writes a delivery that waits (no
        // gate here), old-2 is still queued.
        const plain = createEngine({ store, ...fast, handlerRetry: { maxAttempts: 1 } });
        plain.registerHandler('customer.created', async (msg, tx) => {
          if ((msg.payload as { id: string }).id === 'old-1') throw new Error('down');
          await tx.deliver({
            destination: 'crm',
            payload: { action: 'customer.sync', ...CUSTOMER },
          });
        });
        const accept = (engine: typeof plain, id: string) =>
          engine.accept({
            source: 'crm',
            idempotencyKey: id,
            requestHash: id,
            type: 'customer.created',
            partitionKey: id,
            priority: 'standard',
            payload: customerEvent(id),
          });
        await accept(plain, 'old-0');
        await accept(plain, 'old-1');
        plain.start();
        await waitFor(
          'old-0 handled, old-1 dead',
          async () => plain.counters.processed === 1 && (await plain.stats()).deadLetters === 1,
        );
        await plain.stop();
        await accept(plain, 'old-2');
        const clearRows = await store.query<{ payload: string }>(
          'SELECT payload FROM messages UNION ALL SELECT payload FROM deliveries UNION ALL SELECT payload FROM dead_letters',
        );
        assert.equal(clearRows.length, 5);
        assert.ok(
          clearRows.every((r) => !isSealedPayload(r.payload)),
          'written in clear',
        );

        // Upgrade: the same tables, now with a sealer.
        const sealer = createPayloadSealer({ current: key() });
        const engine = createEngine({ store, gate: passThroughGate(), sealer, ...fast });
        const handled: unknown[] = [];
        const sent: unknown[] = [];
        engine.registerHandler('customer.created', async (msg, tx) => {
          handled.push(msg.payload);
          await tx.deliver({
            destination: 'crm',
            payload: { action: 'customer.sync', ...CUSTOMER },
          });
        });
        engine.registerSender('crm', async (d) => {
          sent.push(d.payload);
          return { status: 200 };
        });
        await accept(engine, 'new-1');
        const dead = await engine.deadLetters.list({ kind: 'message' });
        assert.equal(dead.items.length, 1);
        assert.deepEqual(dead.items[0]!.payload, customerEvent('old-1'));
        assert.ok(await engine.deadLetters.replay(dead.items[0]!.id));
        engine.start();
        await waitFor('all three handled', () => handled.length >= 3, 15_000);
        await waitFor('the old delivery and three new ones', () => sent.length >= 4, 15_000);
        await engine.stop();
        assert.deepEqual(handled.map((p) => (p as { id: string }).id).sort(), [
          'new-1',
          'old-1',
          'old-2',
        ]);
        for (const p of sent) assert.deepEqual(p, { action: 'customer.sync', ...CUSTOMER });
        // New rows are sealed; the clear ones stay as they were (retention purges them).
        const fresh = await store.query<{ payload: string }>(
          "SELECT payload FROM messages WHERE idempotency_key = 'new-1'",
        );
        assert.ok(isSealedPayload(fresh[0]!.payload));
        const deliveries = await store.query<{ payload: string }>('SELECT payload FROM deliveries');
        assert.ok(deliveries.some((d) => isSealedPayload(d.payload)));
      } finally {
        await store.close();
        await db.drop();
      }
    });

    test('a payload sealed under a key not configured is a clear error, never garbage', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        const k1 = key();
        const writer = createEngine({
          store,
          sealer: createPayloadSealer({ current: k1 }),
          ...fast,
        });
        writer.registerHandler('customer.created', async (_m, tx) => {
          await tx.deliver({
            destination: 'crm',
            payload: { action: 'customer.sync', ...CUSTOMER },
          });
        });
        await writer.accept({
          source: 'crm',
          idempotencyKey: 'evt-1',
          requestHash: 'h',
          type: 'customer.created',
          partitionKey: 'cus-1',
          priority: 'standard',
          payload: customerEvent('evt-1'),
        });
        const writerKeyId = writer.payloadKeyId!;
        writer.start();
        await waitFor('handled', () => writer.counters.processed === 1);
        await writer.stop();
        await writer.accept({
          source: 'crm',
          idempotencyKey: 'evt-2',
          requestHash: 'h',
          type: 'customer.created',
          partitionKey: 'cus-2',
          priority: 'standard',
          payload: customerEvent('evt-2'),
        });

        // Another key: the handler is never called with garbage, the sender never sends it.
        const wrong = createEngine({
          store,
          gate: passThroughGate(),
          sealer: createPayloadSealer({ current: key() }),
          ...fast,
        });
        let called = 0;
        wrong.registerHandler('customer.created', async () => {
          called++;
        });
        wrong.registerSender('crm', async () => {
          called++;
          return { status: 200 };
        });
        wrong.start();
        await waitFor('both dead-lettered', async () => (await wrong.stats()).deadLetters === 2);
        await wrong.stop();
        assert.equal(called, 0);
        const dead = await wrong.deadLetters.list();
        assert.equal(dead.items.length, 2);
        for (const d of dead.items) {
          assert.ok(d.lastError?.includes(writerKeyId), d.lastError ?? '');
          assert.ok(d.lastError?.includes('not configured'), d.lastError ?? '');
          assert.equal(d.payload, null);
          assert.ok(d.payloadError?.includes(writerKeyId));
        }
        const raw = await store.query<{ payload: string }>('SELECT payload FROM dead_letters');
        assert.throws(() => wrong.readPayload(raw[0]!.payload), SealedPayloadError);

        // With the old key as a previous key, the replayed work goes through.
        const rotated = createEngine({
          store,
          gate: passThroughGate(),
          sealer: createPayloadSealer({ current: key(), previous: [k1] }),
          ...fast,
        });
        const seen: unknown[] = [];
        rotated.registerHandler('customer.created', async (m) => {
          seen.push(m.payload);
        });
        rotated.registerSender('crm', async (d) => {
          seen.push(d.payload);
          return { status: 200 };
        });
        assert.deepEqual(
          (await rotated.deadLetters.list({ kind: 'message' })).items[0]!.payload,
          customerEvent('evt-2'),
        );
        assert.equal((await rotated.deadLetters.replayMatching({})).length, 2);
        rotated.start();
        await waitFor('replayed through', () => seen.length === 2);
        await rotated.stop();
        assert.deepEqual(
          seen.map((p) => JSON.stringify(p)).sort(),
          [
            JSON.stringify({ action: 'customer.sync', ...CUSTOMER }),
            JSON.stringify(customerEvent('evt-2')),
          ].sort(),
        );
      } finally {
        await store.close();
        await db.drop();
      }
    });

    test('personal-data scope: only personal payloads and what their handlers write are sealed', async () => {
      const db = await backend.create();
      const store = await db.open();
      try {
        const engine = createEngine({
          store,
          gate: passThroughGate(),
          sealer: createPayloadSealer({ current: key() }),
          sealScope: 'personal-data',
          personalDataTypes: ['customer.created'],
          ...fast,
        });
        const sent: string[] = [];
        engine.registerHandler('customer.created', async (_m, tx) => {
          await tx.emit({ type: 'stock.noted', partitionKey: 'sku-1', payload: { derived: true } });
          await tx.deliver({
            destination: 'crm',
            payload: { action: 'customer.sync', ...CUSTOMER },
          });
        });
        engine.registerHandler('stock.noted', async () => undefined);
        engine.registerHandler('stock.adjusted', async (_m, tx) => {
          await tx.deliver({ destination: 'erp', payload: { sku: 'sku-1', delta: 1 } });
          await tx.deliver({
            destination: 'crm',
            payload: { action: 'crm.note', email: CUSTOMER.email },
            personalData: true,
          });
        });
        engine.registerSender('crm', async (d) => {
          sent.push(JSON.stringify(d.payload));
          return { status: 200 };
        });
        engine.registerSender('erp', async (d) => {
          sent.push(JSON.stringify(d.payload));
          return { status: 200 };
        });
        const base = { source: 'test', requestHash: 'h', priority: 'standard' as const };
        await engine.accept({
          ...base,
          idempotencyKey: 'c1',
          type: 'customer.created',
          partitionKey: 'cus-1',
          payload: customerEvent('c1'),
        });
        await engine.accept({
          ...base,
          idempotencyKey: 's1',
          type: 'stock.adjusted',
          partitionKey: 'sku-1',
          payload: { sku: 'sku-1', delta: 1 },
        });
        await engine.accept({
          ...base,
          idempotencyKey: 'x1',
          type: 'stock.adjusted',
          partitionKey: 'sku-2',
          payload: { note: CUSTOMER.email },
          personalData: true,
        });
        engine.start();
        await waitFor('delivered', () => sent.length === 5);
        await engine.stop();
        const messages = await store.query<{
          idempotency_key: string;
          type: string;
          payload: string;
        }>('SELECT idempotency_key, type, payload FROM messages');
        const sealedOf = (k: string) =>
          isSealedPayload(messages.find((m) => m.idempotency_key === k)!.payload);
        assert.ok(sealedOf('c1'), 'a personal type');
        assert.ok(!sealedOf('s1'), 'reference data stays clear');
        assert.ok(sealedOf('x1'), 'flagged on accept');
        const emitted = messages.find((m) => m.type === 'stock.noted')!;
        assert.ok(isSealedPayload(emitted.payload), 'emitted by a personal message handler');
        const deliveries = await store.query<{ destination: string; payload: string }>(
          'SELECT destination, payload FROM deliveries',
        );
        const erp = deliveries.filter((d) => d.destination === 'erp');
        assert.ok(erp.length === 2);
        assert.equal(
          erp.filter((d) => isSealedPayload(d.payload)).length,
          1,
          'x1 inherits, s1 not',
        );
        for (const d of deliveries.filter((x) => x.destination === 'crm')) {
          assert.ok(isSealedPayload(d.payload), 'inherited or flagged');
        }
        await assertNoPii(store);
      } finally {
        await store.close();
        await db.drop();
      }
    });
  });
}
