// The Store contract and the engine's queue semantics, run against SQLite and PostgreSQL alike:
// migrations, idempotent accept, priority order, per-key FIFO, leases, available_at, outbox
// atomicity, dead letters and replay, retention and back-pressure.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKENDS, type TestDatabase } from './backends.js';
import type { Store } from '../../src/store/port.js';
import { WalFile } from '../../src/store/sqlite/wal-file.js';
import { createEngine } from '../../src/runtime/engine.js';
import { PermanentError, type AcceptRequest, type EngineOptions } from '../../src/runtime/index.js';
import {
  claimMessages,
  completeMessage,
  LeaseLostError,
  queueDepths,
} from '../../src/runtime/queue.js';
import { passThroughGate, sleep, waitFor } from '../runtime/support.js';

let n = 0;
function req(over: Partial<AcceptRequest> = {}): AcceptRequest {
  n++;
  return {
    source: 'test',
    idempotencyKey: `k-${n}-${Math.random()}`,
    requestHash: 'h',
    type: 'thing.created',
    partitionKey: `p-${n}`,
    priority: 'standard',
    payload: { n },
    ...over,
  };
}

/** Runs statements one after another (taking a test database back to an earlier schema). */
async function executeAll(store: Store, statements: readonly string[]): Promise<void> {
  for (const sql of statements) await store.execute(sql);
}

async function withStore(
  db: () => Promise<TestDatabase>,
  fn: (store: Store, database: TestDatabase) => Promise<void>,
): Promise<void> {
  const database = await db();
  const store = await database.open();
  try {
    await fn(store, database);
  } finally {
    await store.close();
    await database.drop();
  }
}

for (const backend of BACKENDS) {
  describe(`store conformance: ${backend.name}`, { skip: backend.skip }, () => {
    const run = (fn: (store: Store, database: TestDatabase) => Promise<void>) =>
      withStore(() => backend.create(), fn);
    const engineOn = (store: Store, over: Partial<EngineOptions> = {}) =>
      createEngine({ store, pollMs: { min: 2, max: 20 }, ...over });

    test('migrations are versioned, applied once, and listed', () =>
      run(async (store, database) => {
        const status = await store.migrations();
        assert.ok(status.length >= 1);
        assert.ok(status.every((m) => m.appliedAt !== null));
        assert.deepEqual(await store.migrate(), []);
        const extra = [
          {
            version: 1000,
            name: 'domain table',
            sql: 'CREATE TABLE widgets (id TEXT PRIMARY KEY, n INTEGER NOT NULL)',
          },
        ];
        assert.deepEqual(await store.migrate(extra), [1000]);
        assert.deepEqual(await store.migrate(extra), []);
        await store.execute('INSERT INTO widgets (id, n) VALUES (?, ?)', ['a', 1]);
        const rows = await store.query<{ n: number }>('SELECT n FROM widgets WHERE id = ?', ['a']);
        assert.equal(rows[0]?.n, 1);
        // A second open of the same database applies nothing new.
        const again = await database.open();
        try {
          assert.deepEqual(await again.migrate(), []);
          await again.ping();
        } finally {
          await again.close();
        }
        // A failing transaction leaves nothing behind.
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.execute('INSERT INTO widgets (id, n) VALUES (?, ?)', ['b', 2]);
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.equal((await store.query('SELECT id FROM widgets WHERE id = ?', ['b'])).length, 0);
      }));

    test('statements queued at commit run last, in order, values intact; a failing one commits nothing', () =>
      run(async (store) => {
        await store.migrate([
          {
            version: 1002,
            name: 'at-commit probe',
            sql: `CREATE TABLE at_commit_probe (n INTEGER PRIMARY KEY, v TEXT, b ${
              backend.name === 'postgres' ? 'BYTEA' : 'BLOB'
            })`,
          },
        ]);
        // Values a literal must carry intact (PostgreSQL inlines them into one simple query).
        const tricky = [
          "it's; DROP TABLE at_commit_probe; --",
          'back\\slash \\x00 and "quotes" and ?',
          'ünïcödé ✓',
          '',
        ];
        const seen = await store.transaction(async (tx) => {
          tx.atCommit('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [2, tricky[0]!]);
          tx.atCommit('UPDATE at_commit_probe SET v = v || ? WHERE n = ?', ['!', 2]);
          for (const [i, v] of tricky.slice(1).entries()) {
            tx.atCommit('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [10 + i, v]);
          }
          tx.atCommit('INSERT INTO at_commit_probe (n, v, b) VALUES (?, ?, ?)', [
            20,
            null,
            Buffer.from([0, 1, 0xfe, 0x27]),
          ]);
          await tx.execute('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [1, 'first']);
          // Queued, not yet run: the transaction's own statements see nothing of them.
          return tx.query<{ n: number }>('SELECT n FROM at_commit_probe ORDER BY n');
        });
        assert.deepEqual(
          seen.map((r) => Number(r.n)),
          [1],
        );
        const rows = await store.query<{ n: number; v: string | null; b: Buffer | null }>(
          'SELECT n, v, b FROM at_commit_probe ORDER BY n',
        );
        assert.deepEqual(
          rows.map((r) => [Number(r.n), r.v]),
          [
            [1, 'first'],
            [2, `${tricky[0]!}!`],
            [10, tricky[1]],
            [11, tricky[2]],
            [12, tricky[3]],
            [20, null],
          ],
        );
        assert.deepEqual([...Buffer.from(rows.at(-1)!.b!)], [0, 1, 0xfe, 0x27]);
        // A queued statement that fails: nothing of the transaction commits, and it says why.
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.execute('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [30, 'kept?']);
            tx.atCommit('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [31, 'after']);
            tx.atCommit('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [1, 'duplicate']);
            tx.atCommit('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [32, 'never']);
          }),
          /unique|UNIQUE|duplicate/,
        );
        const left = await store.query<{ n: number }>(
          'SELECT n FROM at_commit_probe WHERE n >= 30 ORDER BY n',
        );
        assert.deepEqual(left, []);
        // The store is usable afterwards (the connection was given back clean).
        await store.transaction(async (tx) => {
          tx.atCommit('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [40, 'after a failure']);
        });
        assert.equal(
          (await store.query('SELECT n FROM at_commit_probe WHERE n = ?', [40])).length,
          1,
        );
        // Queued after the transaction ended: refused.
        let late: (() => void) | undefined;
        await store.transaction(async (tx) => {
          late = () => tx.atCommit('INSERT INTO at_commit_probe (n, v) VALUES (?, ?)', [50, 'x']);
        });
        assert.throws(() => late!(), /finished/);
      }));

    test('durable() puts relaxed commits on disk, and syncs nothing when none is pending', () =>
      run(async (store) => {
        await store.migrate([
          {
            version: 1001,
            name: 'durable probe',
            sql: 'CREATE TABLE durable_probe (id TEXT PRIMARY KEY)',
          },
        ]);
        const write = (id: string, relaxed: boolean) =>
          store.transaction((tx) => tx.execute('INSERT INTO durable_probe (id) VALUES (?)', [id]), {
            relaxed,
          });
        // On SQLite each WAL sync is counted (PostgreSQL's flush is the server's).
        const original = WalFile.prototype.sync;
        let syncs = 0;
        WalFile.prototype.sync = function (this: WalFile) {
          syncs++;
          return original.call(this);
        };
        try {
          await write('durable', false);
          syncs = 0;
          await store.durable();
          assert.equal(syncs, 0, 'a durable commit left nothing to sync');
          await write('relaxed-1', true);
          await write('relaxed-2', true);
          await store.durable();
          assert.equal(syncs, backend.name === 'postgres' ? 0 : 1, 'one sync for both');
          await store.durable();
          assert.equal(syncs, backend.name === 'postgres' ? 0 : 1, 'nothing left to sync');
        } finally {
          WalFile.prototype.sync = original;
        }
        const rows = await store.query<{ id: string }>('SELECT id FROM durable_probe ORDER BY id');
        assert.deepEqual(
          rows.map((r) => r.id),
          ['durable', 'relaxed-1', 'relaxed-2'],
        );
      }));

    test('accept is idempotent per source: duplicate, conflict, and racing accepts', () =>
      run(async (store, database) => {
        const engine = engineOn(store);
        const r = req({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
        const first = await engine.accept(r);
        assert.equal(first.outcome, 'accepted');
        const dup = await engine.accept({ ...r });
        assert.equal(dup.outcome, 'duplicate');
        assert.ok(first.outcome === 'accepted' && dup.outcome === 'duplicate');
        assert.equal(dup.messageId, first.messageId);
        assert.equal(dup.acceptedAt, first.acceptedAt);
        assert.equal(dup.traceparent, r.traceparent);
        const conflict = await engine.accept({ ...r, requestHash: 'other' });
        assert.deepEqual(conflict, { outcome: 'conflict', messageId: first.messageId });
        // Another source may use the same key.
        assert.equal((await engine.accept({ ...r, source: 'other-source' })).outcome, 'accepted');

        // Racing accepts of one key, from this engine and from a second store connection.
        const other = await database.open();
        try {
          const engine2 = engineOn(other);
          const racing = req();
          const results = await Promise.all(
            Array.from({ length: 20 }, (_, i) => (i % 2 ? engine : engine2).accept({ ...racing })),
          );
          const accepted = results.filter((x) => x.outcome === 'accepted');
          assert.equal(accepted.length, 1);
          const ids = new Set(results.map((x) => ('messageId' in x ? x.messageId : '')));
          assert.equal(ids.size, 1);
          await engine2.stop();
        } finally {
          await other.close();
        }
        const count = await store.query<{ n: number }>(
          'SELECT COUNT(*) AS n FROM messages WHERE idempotency_key = ?',
          [r.idempotencyKey],
        );
        assert.equal(Number(count[0]?.n), 2);
        await engine.stop();
      }));

    test('one group commit: head marks, request order, repeated and known keys in the same batch', () =>
      run(async (store) => {
        const engine = engineOn(store);
        // A key with a message already queued, and a key already used.
        const before = await engine.accept(req({ partitionKey: 'busy', payload: 'b0' }));
        const known = req({ partitionKey: 'x', payload: 'known' });
        const knownFirst = await engine.accept(known);
        assert.equal(before.outcome, 'accepted');
        assert.equal(knownFirst.outcome, 'accepted');
        // Accepted together: they reach the same flush.
        const repeated = req({ partitionKey: 'fresh', payload: 'f1' });
        const answers = await Promise.all([
          engine.accept(repeated),
          engine.accept(req({ partitionKey: 'busy', payload: 'b1' })),
          engine.accept(req({ partitionKey: 'fresh', payload: 'f2' })),
          engine.accept({ ...repeated }),
          engine.accept({ ...known }),
          engine.accept({ ...known, requestHash: 'different' }),
          engine.accept(req({ partitionKey: 'fresh', payload: 'f3' })),
          engine.accept(req({ partitionKey: 'alone', payload: 'a1' })),
        ]);
        assert.deepEqual(
          answers.map((a) => a.outcome),
          [
            'accepted',
            'accepted',
            'accepted',
            'duplicate',
            'duplicate',
            'conflict',
            'accepted',
            'accepted',
          ],
        );
        assert.ok(answers[0]!.outcome === 'accepted' && answers[3]!.outcome === 'duplicate');
        assert.equal(answers[3]!.messageId, answers[0]!.messageId);
        assert.ok(knownFirst.outcome === 'accepted' && answers[4]!.outcome === 'duplicate');
        assert.equal(answers[4]!.messageId, knownFirst.messageId);
        const rows = await store.query<{ partition_key: string; payload: string; is_head: number }>(
          `SELECT partition_key, payload, is_head FROM messages
           WHERE partition_key IN ('busy', 'fresh', 'alone', 'x') ORDER BY seq`,
        );
        assert.deepEqual(
          rows.map((r) => [r.partition_key, JSON.parse(r.payload) as string, Number(r.is_head)]),
          [
            ['busy', 'b0', 1],
            ['x', 'known', 1],
            ['fresh', 'f1', 1],
            ['busy', 'b1', 0],
            ['fresh', 'f2', 0],
            ['fresh', 'f3', 0],
            ['alone', 'a1', 1],
          ],
        );
        await engine.stop();
      }));

    test('a group commit larger than one statement keeps one head per key and request order', () =>
      run(async (store) => {
        const engine = engineOn(store);
        const answers = await Promise.all(
          Array.from({ length: 600 }, (_, i) =>
            engine.accept(req({ partitionKey: `big-${i % 3}`, payload: i })),
          ),
        );
        assert.ok(answers.every((a) => a.outcome === 'accepted'));
        const rows = await store.query<{ partition_key: string; payload: string; is_head: number }>(
          "SELECT partition_key, payload, is_head FROM messages WHERE partition_key LIKE 'big-%' ORDER BY seq",
        );
        assert.deepEqual(
          rows.map((r) => Number(r.payload)),
          Array.from({ length: 600 }, (_, i) => i),
        );
        assert.deepEqual(
          rows.filter((r) => Number(r.is_head) === 1).map((r) => Number(r.payload)),
          [0, 1, 2],
        );
        await engine.stop();
      }));

    test('accepts arriving over several turns of the event loop share one group commit', () =>
      run(async (store) => {
        // Counts the transactions the engine opens (each accept batch is one).
        const commitsOf = (gatherMs: number) => {
          let transactions = 0;
          const counted = new Proxy(store, {
            get(target, prop) {
              if (prop === 'transaction') {
                return (...args: Parameters<Store['transaction']>) => {
                  transactions++;
                  return target.transaction(...args);
                };
              }
              const v = Reflect.get(target, prop) as unknown;
              return typeof v === 'function' ? (v as () => unknown).bind(target) : v;
            },
          });
          const engine = engineOn(counted, { acceptGatherMs: gatherMs });
          return {
            transactions: () => transactions,
            // Two accepts in this turn, one in the next turn, one in the turn after: as requests
            // read by successive polls of a busy server.
            accept: () =>
              new Promise<string[]>((resolve, reject) => {
                const all = [engine.accept(req()), engine.accept(req())];
                setImmediate(() => {
                  all.push(engine.accept(req()));
                  setImmediate(() => {
                    all.push(engine.accept(req()));
                    Promise.all(all).then((r) => resolve(r.map((a) => a.outcome)), reject);
                  });
                });
              }),
          };
        };
        const gathering = commitsOf(50);
        assert.deepEqual(await gathering.accept(), [
          'accepted',
          'accepted',
          'accepted',
          'accepted',
        ]);
        assert.equal(gathering.transactions(), 1);
        const eager = commitsOf(0);
        assert.deepEqual(await eager.accept(), ['accepted', 'accepted', 'accepted', 'accepted']);
        assert.ok(eager.transactions() >= 2, `${eager.transactions()} transactions`);
      }));

    test('stop commits accepts still gathering, before the store is closed', async () => {
      const database = await backend.create();
      const store = await database.open();
      let closed = false;
      try {
        const engine = engineOn(store, { acceptGatherMs: 50 });
        const answers = [engine.accept(req({ payload: 'late-1' })), engine.accept(req())];
        await engine.stop();
        // What stop left undone would now fail with the store closed.
        closed = true;
        await store.close();
        assert.deepEqual(
          (await Promise.all(answers)).map((a) => a.outcome),
          ['accepted', 'accepted'],
        );
        const reopened = await database.open();
        try {
          const rows = await reopened.query<{ n: number }>(
            'SELECT COUNT(*) AS n FROM messages WHERE payload = ?',
            [JSON.stringify('late-1')],
          );
          assert.equal(Number(rows[0]!.n), 1);
        } finally {
          await reopened.close();
        }
      } finally {
        if (!closed) await store.close();
        await database.drop();
      }
    });

    test('claims serve critical before standard before deferrable', () =>
      run(async (store) => {
        const engine = engineOn(store);
        await engine.accept(req({ priority: 'deferrable' }));
        await engine.accept(req({ priority: 'standard' }));
        await engine.accept(req({ priority: 'critical' }));
        const claimed = await claimMessages(store, { limit: 10, leaseMs: 10_000, now: Date.now() });
        assert.deepEqual(
          claimed.map((c) => c.row.priority),
          [0, 1, 2],
        );
      }));

    test('per-key FIFO: only the head of a key is claimable', () =>
      run(async (store) => {
        const engine = engineOn(store);
        const a = await engine.accept(req({ partitionKey: 'k1', payload: 'a' }));
        await engine.accept(req({ partitionKey: 'k1', payload: 'b', priority: 'critical' }));
        const c = await engine.accept(req({ partitionKey: 'k2', payload: 'c' }));
        let claimed = await claimMessages(store, { limit: 10, leaseMs: 10_000, now: Date.now() });
        assert.deepEqual(claimed.map((x) => x.row.payload).sort(), ['"a"', '"c"']);
        assert.ok(a.outcome === 'accepted' && c.outcome === 'accepted');
        // Nothing more while a is in flight.
        assert.equal(
          (await claimMessages(store, { limit: 10, leaseMs: 10_000, now: Date.now() })).length,
          0,
        );
        const ca = claimed.find((x) => x.row.id === a.messageId)!;
        await store.transaction((tx) => completeMessage(tx, ca, Date.now()));
        claimed = await claimMessages(store, { limit: 10, leaseMs: 10_000, now: Date.now() });
        assert.deepEqual(
          claimed.map((x) => x.row.payload),
          ['"b"'],
        );
      }));

    test('a lease that expires is claimed again; the old holder cannot complete', () =>
      run(async (store) => {
        const engine = engineOn(store);
        await engine.accept(req({ partitionKey: 'lease' }));
        const first = await claimMessages(store, { limit: 1, leaseMs: 150, now: Date.now() });
        assert.equal(first.length, 1);
        assert.equal(
          (await claimMessages(store, { limit: 1, leaseMs: 150, now: Date.now() })).length,
          0,
        );
        await sleep(200);
        const second = await claimMessages(store, { limit: 1, leaseMs: 10_000, now: Date.now() });
        assert.equal(second.length, 1);
        assert.equal(second[0]!.row.id, first[0]!.row.id);
        assert.equal(second[0]!.row.attempts, 2);
        await assert.rejects(
          store.transaction((tx) => completeMessage(tx, first[0]!, Date.now())),
          LeaseLostError,
        );
        await store.transaction((tx) => completeMessage(tx, second[0]!, Date.now()));
      }));

    test('available_at delays a message', () =>
      run(async (store) => {
        const engine = engineOn(store);
        await engine.accept(req({ availableAt: new Date(Date.now() + 300) }));
        assert.equal(
          (await claimMessages(store, { limit: 1, leaseMs: 1000, now: Date.now() })).length,
          0,
        );
        await sleep(350);
        assert.equal(
          (await claimMessages(store, { limit: 1, leaseMs: 1000, now: Date.now() })).length,
          1,
        );
      }));

    test('outbox: a handler that throws leaves no state, no emitted messages, no deliveries', () =>
      run(async (store) => {
        await store.migrate([
          {
            version: 2000,
            name: 'ledger',
            sql: 'CREATE TABLE ledger (id TEXT PRIMARY KEY, amount INTEGER NOT NULL)',
          },
        ]);
        const engine = engineOn(store, {
          handlerRetry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 10 },
        });
        let calls = 0;
        engine.registerHandler('thing.created', async (msg, tx) => {
          calls++;
          await tx.execute('INSERT INTO ledger (id, amount) VALUES (?, ?)', [msg.id, 5]);
          await tx.state.put('things', msg.partitionKey, { seen: calls });
          await tx.emit({ type: 'thing.followup', partitionKey: 'f', payload: { from: msg.id } });
          await tx.deliver({ destination: 'erp', payload: { id: msg.id } });
          if (calls < 3) throw new Error(`transient ${calls}`);
        });
        engine.registerHandler('thing.followup', async () => undefined);
        const first = await engine.accept(req({ partitionKey: 'atomic' }));
        assert.equal(first.outcome, 'accepted');
        engine.start();
        await waitFor('first failure recorded', async () => calls >= 1);
        await engine.stop();
        const count = async (sql: string) => Number((await store.query<{ n: number }>(sql))[0]?.n);
        if (calls === 1) {
          assert.equal(await count('SELECT COUNT(*) AS n FROM ledger'), 0);
          assert.equal(await count('SELECT COUNT(*) AS n FROM state'), 0);
          assert.equal(await count('SELECT COUNT(*) AS n FROM deliveries'), 0);
          assert.equal(await count('SELECT COUNT(*) AS n FROM messages'), 1);
        }
        engine.start();
        await waitFor('handler succeeded', async () => engine.counters.processed >= 2);
        await engine.stop();
        assert.equal(calls, 3);
        assert.equal(await count('SELECT COUNT(*) AS n FROM ledger'), 1);
        assert.equal(await count('SELECT COUNT(*) AS n FROM deliveries'), 1);
        assert.equal(
          await count("SELECT COUNT(*) AS n FROM messages WHERE type = 'thing.followup'"),
          1,
        );
        const d = await store.query<{ idempotency_key: string }>(
          'SELECT idempotency_key FROM deliveries',
        );
        assert.ok(first.outcome === 'accepted');
        assert.equal(d[0]?.idempotency_key, `${first.messageId}/erp/1`);
        const attempts = await store.query<{ error: string }>(
          'SELECT error FROM attempts WHERE subject_id = ? ORDER BY at',
          [first.messageId],
        );
        assert.deepEqual(
          attempts.map((a) => a.error),
          ['transient 1', 'transient 2'],
        );
      }));

    test('dead letters: failing messages are listed, filtered, paged, shown and replayed with the same key', () =>
      run(async (store) => {
        const engine = engineOn(store, {
          gate: passThroughGate({ retryMs: 5, maxAttempts: 3 }),
          handlerRetry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 5 },
        });
        let fixed = false;
        let handled = 0;
        engine.registerHandler('poison', async (msg, tx) => {
          if (!fixed) throw new Error('cannot parse poison');
          handled++;
          await tx.deliver({ destination: 'crm', payload: { id: msg.id } });
        });
        engine.registerHandler('perm', async () => {
          throw new PermanentError('invalid reference');
        });
        const sent: string[] = [];
        engine.registerSender('crm', async (d) => {
          sent.push(d.idempotencyKey);
          return { status: fixed ? 200 : 503 };
        });
        const poison = await engine.accept(req({ type: 'poison', partitionKey: 'pk' }));
        const perm = await engine.accept(req({ type: 'perm' }));
        engine.start();
        await waitFor(
          'two dead letters',
          async () => (await engine.deadLetters.list()).items.length >= 2,
        );
        const list = await engine.deadLetters.list({ kind: 'message', error: 'POISON' });
        assert.equal(list.items.length, 1);
        const dl = list.items[0]!;
        assert.ok(poison.outcome === 'accepted' && perm.outcome === 'accepted');
        assert.equal(dl.id, poison.messageId);
        assert.equal(dl.attempts, 2);
        assert.equal(dl.history.length, 2);
        assert.equal(dl.reason, 'handler attempts exhausted');
        const permDl = await engine.deadLetters.show(perm.messageId);
        assert.equal(permDl?.reason, 'permanent handler failure');
        assert.equal(permDl?.attempts, 1);
        // Pagination: one per page, newest first, then nothing.
        const p1 = await engine.deadLetters.list({}, { limit: 1 });
        assert.equal(p1.items.length, 1);
        const p2 = await engine.deadLetters.list({}, { limit: 1, cursor: p1.nextCursor! });
        assert.equal(p2.items.length, 1);
        assert.notEqual(p2.items[0]!.id, p1.items[0]!.id);
        assert.equal(p2.nextCursor, undefined);
        assert.equal(
          (await engine.deadLetters.list({ since: new Date(Date.now() + 60_000) })).items.length,
          0,
        );

        // Replay the message while the destination still fails: the delivery dies in turn.
        fixed = true;
        const replayed = await engine.deadLetters.replay(poison.messageId);
        assert.equal(replayed?.kind, 'message');
        assert.equal(replayed?.priority, 'standard');
        assert.equal(replayed?.destination, undefined);
        await waitFor('handled once and delivered', () => handled === 1 && sent.length === 1);
        await engine.stop();
        assert.equal(await engine.deadLetters.replay(poison.messageId), undefined);
        const replayedMsg = await store.query<{ idempotency_key: string; replay_count: number }>(
          'SELECT idempotency_key, replay_count FROM messages WHERE id = ?',
          [replayed!.newId],
        );
        assert.equal(replayedMsg[0]?.idempotency_key, dl.idempotencyKey);
        assert.equal(replayedMsg[0]?.replay_count, 1);
        assert.equal((await engine.deadLetters.show(poison.messageId))?.status, 'replayed');
        assert.equal((await engine.deadLetters.show(poison.messageId))?.replayCount, 1);
      }));

    test('a delivery dead-lettered after its attempts is replayed under the same idempotency key and applied once', () =>
      run(async (store) => {
        const engine = engineOn(store, { gate: passThroughGate({ retryMs: 5, maxAttempts: 3 }) });
        let healthy = false;
        const attempts: string[] = [];
        const applied = new Set<string>();
        engine.registerHandler('order', async (msg, tx) => {
          await tx.deliver({ destination: 'erp', payload: msg.payload, priority: 'critical' });
        });
        engine.registerSender('erp', async (d) => {
          attempts.push(d.idempotencyKey);
          if (!healthy) return { status: 500 };
          applied.add(d.idempotencyKey);
          return { status: 201 };
        });
        const r = await engine.accept(req({ type: 'order' }));
        engine.start();
        await waitFor(
          'delivery dead',
          async () => (await engine.deadLetters.list({ kind: 'delivery' })).items.length === 1,
        );
        const [dl] = (await engine.deadLetters.list({ destination: 'erp' })).items;
        assert.ok(dl && r.outcome === 'accepted');
        assert.equal(dl.attempts, 3);
        assert.equal(dl.history.length, 3);
        assert.equal(dl.history[0]?.status, 500);
        assert.equal(dl.idempotencyKey, `${r.messageId}/erp/1`);
        assert.equal(dl.lastError, 'status 500');
        healthy = true;
        const replayed = await engine.deadLetters.replayMatching({ destination: 'erp' });
        assert.equal(replayed.length, 1);
        // Queued again in its own class, for its own destination (back-pressure counts it there).
        assert.deepEqual(replayed[0], {
          id: dl.id,
          kind: 'delivery',
          newId: dl.id,
          priority: 'critical',
          destination: 'erp',
        });
        await waitFor('applied', () => applied.size === 1);
        await engine.stop();
        assert.deepEqual([...applied], [dl.idempotencyKey]);
        assert.equal(new Set(attempts).size, 1);
        assert.equal((await engine.deadLetters.list()).items.length, 0);
        assert.equal(
          (await engine.deadLetters.list({ status: 'replayed' })).items[0]?.replayCount,
          1,
        );
        assert.equal(engine.counters.replayed, 1);
      }));

    test('retention purges completed work and expired idempotency keys', () =>
      run(async (store) => {
        const engine = engineOn(store, {
          idempotencyWindowMs: 100,
          retention: { completedMs: 50, intervalMs: 0 },
        });
        engine.registerHandler('thing.created', async () => undefined);
        const r = req();
        await engine.accept(r);
        await engine.accept(req());
        engine.start();
        await waitFor('processed', () => engine.counters.processed === 2);
        await engine.stop();
        await sleep(150);
        const report = await engine.purge();
        assert.equal(report.messages, 2);
        assert.equal(report.idempotencyKeys, 2);
        assert.equal(
          Number((await store.query<{ n: number }>('SELECT COUNT(*) AS n FROM messages'))[0]?.n),
          0,
        );
        // SQLite's per-key tails go with their messages (the table does not grow either).
        const tails = async () =>
          (await store.query<{ k: string }>('SELECT partition_key AS k FROM partition_tails')).map(
            (t) => t.k,
          );
        if (store.dialect === 'sqlite') assert.deepEqual(await tails(), []);
        // The key expired: the same key is a new message now.
        assert.equal((await engine.accept(r)).outcome, 'accepted');
        // An unexpired key and a queued message survive a purge.
        const again = await engine.purge();
        assert.equal(again.messages, 0);
        if (store.dialect === 'sqlite') assert.deepEqual(await tails(), [r.partitionKey]);
        assert.equal((await engine.accept(r)).outcome, 'duplicate');
      }));

    test('an idempotency key outlives its purged message, then expires', () =>
      run(async (store) => {
        const windowMs = 2000;
        const engine = engineOn(store, {
          idempotencyWindowMs: windowMs,
          retention: { completedMs: 1, intervalMs: 0 },
        });
        engine.registerHandler('thing.created', async () => undefined);
        const r = req({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
        const first = await engine.accept(r);
        assert.ok(first.outcome === 'accepted');
        engine.start();
        await waitFor('processed', () => engine.counters.processed === 1);
        await engine.stop();
        await sleep(10);
        const report = await engine.purge();
        assert.equal(report.messages, 1);
        assert.equal(report.idempotencyKeys, 0);
        const count = async (sql: string) => Number((await store.query<{ n: number }>(sql))[0]?.n);
        assert.equal(await count('SELECT COUNT(*) AS n FROM messages'), 0);
        assert.equal(await count('SELECT COUNT(*) AS n FROM idempotency_keys'), 1);
        // The message is gone, its key still answers: the same message, time and trace.
        const duplicate = {
          outcome: 'duplicate',
          messageId: first.messageId,
          acceptedAt: first.acceptedAt,
          traceparent: r.traceparent,
        };
        assert.deepEqual(await engine.accept({ ...r }), duplicate);
        assert.deepEqual(await engine.accept({ ...r, requestHash: 'other' }), {
          outcome: 'conflict',
          messageId: first.messageId,
        });
        // In a group commit beside a new key too.
        const [again, other] = await Promise.all([engine.accept({ ...r }), engine.accept(req())]);
        assert.deepEqual(again, duplicate);
        assert.equal(other.outcome, 'accepted');
        // Past its window the key is forgotten: the same key is a new message.
        await sleep(Math.max(0, Date.parse(first.acceptedAt) + windowMs + 20 - Date.now()));
        const renewed = await engine.accept({ ...r });
        assert.ok(renewed.outcome === 'accepted');
        assert.notEqual(renewed.messageId, first.messageId);
        assert.equal(await count('SELECT COUNT(*) AS n FROM idempotency_keys'), 0);
        assert.equal((await engine.accept({ ...r })).outcome, 'duplicate');
      }));

    test('an expired key is accepted as new while its earlier message is still kept', () =>
      run(async (store) => {
        const engine = engineOn(store, { idempotencyWindowMs: 40 });
        const r = req({ partitionKey: 'expiring' });
        const first = await engine.accept(r);
        await sleep(60);
        // Expired: a different body is no conflict now, it is a new message.
        const second = await engine.accept({ ...r, requestHash: 'changed' });
        assert.ok(first.outcome === 'accepted' && second.outcome === 'accepted');
        assert.notEqual(second.messageId, first.messageId);
        assert.deepEqual(await engine.accept(r), {
          outcome: 'conflict',
          messageId: second.messageId,
        });
        await sleep(60);
        // Expired again, this time in a group commit beside a new key.
        const [third, other] = await Promise.all([
          engine.accept(r),
          engine.accept(req({ partitionKey: 'expiring' })),
        ]);
        assert.ok(third.outcome === 'accepted' && other.outcome === 'accepted');
        const rows = await store.query<{ id: string; is_head: number }>(
          "SELECT id, is_head FROM messages WHERE partition_key = 'expiring' ORDER BY seq",
        );
        // Every message is kept, and only the first is its key's head. (The last two were
        // accepted together: the reused key is written after the batch's new keys.)
        const got = rows.map((x) => [x.id, Number(x.is_head)]);
        assert.equal(got.length, 4);
        assert.deepEqual(got.slice(0, 2), [
          [first.messageId, 1],
          [second.messageId, 0],
        ]);
        assert.deepEqual(
          got.slice(2).sort(),
          [
            [third.messageId, 0],
            [other.messageId, 0],
          ].sort(),
        );
        await engine.stop();
      }));

    test('a duplicate in a group commit does not take the head mark from a new message of its key', () =>
      run(async (store) => {
        const engine = engineOn(store);
        const handled: string[] = [];
        engine.registerHandler('thing.created', async (msg) => {
          handled.push(msg.id);
        });
        const first = req({ partitionKey: 'order-7' });
        const done = await engine.accept(first);
        engine.start();
        await waitFor('processed', () => engine.counters.processed === 1);
        await engine.stop();
        // The key's queue is empty: the duplicate (first in the batch) would be its head, were it
        // written; the new message after it must be.
        const [dup, next] = await Promise.all([
          engine.accept({ ...first }),
          engine.accept(req({ partitionKey: 'order-7' })),
        ]);
        assert.equal(dup.outcome, 'duplicate');
        assert.ok(done.outcome === 'accepted' && next.outcome === 'accepted');
        const heads = await store.query<{ id: string; is_head: number }>(
          "SELECT id, is_head FROM messages WHERE partition_key = 'order-7' AND status = 'queued'",
        );
        assert.deepEqual(
          heads.map((h) => [h.id, Number(h.is_head)]),
          [[next.messageId, 1]],
        );
        engine.start();
        await waitFor('processed', () => engine.counters.processed === 1);
        await engine.stop();
        assert.deepEqual(handled, [done.messageId, next.messageId]);
      }));

    test('a duplicate amid new messages of its key in a group commit leaves them queued in order', () =>
      run(async (store) => {
        const engine = engineOn(store);
        const handled: string[] = [];
        engine.registerHandler('thing.created', async (msg) => {
          handled.push(msg.id);
        });
        const first = req({ partitionKey: 'order-8' });
        const held = await engine.accept(first);
        // One group commit: a new message, the duplicate of the queued one, another new one, all
        // of the same key. The last must queue behind the first new one, not behind the
        // duplicate that was never written.
        const [a, dup, b] = await Promise.all([
          engine.accept(req({ partitionKey: 'order-8' })),
          engine.accept({ ...first }),
          engine.accept(req({ partitionKey: 'order-8' })),
        ]);
        assert.equal(dup.outcome, 'duplicate');
        assert.ok(held.outcome === 'accepted' && a.outcome === 'accepted');
        assert.ok(b.outcome === 'accepted');
        const heads = await store.query<{ id: string }>(
          "SELECT id FROM messages WHERE partition_key = 'order-8' AND status = 'queued' AND is_head = 1",
        );
        assert.deepEqual(
          heads.map((h) => h.id),
          [held.messageId],
        );
        engine.start();
        await waitFor('processed', () => engine.counters.processed === 3);
        await engine.stop();
        assert.deepEqual(handled, [held.messageId, a.messageId, b.messageId]);
      }));

    // The depth counts are SQLite's (ADR 0007): PostgreSQL has no migration 5.
    if (backend.name !== 'postgres')
      test('migration 5 (SQLite) counts what a database holds queued already', () =>
        run(async (store, database) => {
          const engine = engineOn(store);
          for (const [key, priority] of [
            ['a', 'standard'],
            ['a', 'standard'],
            ['b', 'critical'],
          ] as const) {
            await engine.accept(req({ partitionKey: key, priority }));
          }
          await engine.stop();
          // Back to the tables before migration 5, holding those three and two deliveries.
          await executeAll(store, [
            'DROP TRIGGER messages_count_in',
            'DROP TRIGGER messages_count_change',
            'DROP TRIGGER messages_count_out',
            'DROP TRIGGER deliveries_count_in',
            'DROP TRIGGER deliveries_count_change',
            'DROP TRIGGER deliveries_count_out',
            'DROP TRIGGER dead_letters_count_in',
            'DROP TRIGGER dead_letters_count_change',
            'DROP TRIGGER dead_letters_count_out',
            'DROP TABLE queue_counts',
            'DELETE FROM schema_migrations WHERE version = 5',
          ]);
          const now = Date.now();
          for (const [id, status] of [
            ['d-1', 'queued'],
            ['d-2', 'delivered'],
            ['d-3', 'queued'],
          ] as const) {
            await store.execute(
              `INSERT INTO deliveries (id, message_id, destination, idempotency_key, priority,
                 payload, status, attempts, available_at, created_at)
               VALUES (?, NULL, 'erp', ?, 1, '{}', ?, 0, ?, ?)`,
              [id, `key-${id}`, status, now, now],
            );
          }
          for (const [id, status] of [
            ['dl-1', 'dead'],
            ['dl-2', 'replayed'],
          ] as const) {
            await store.execute(
              `INSERT INTO dead_letters (id, kind, idempotency_key, reason, attempts, history,
                 payload, dead_at, status)
               VALUES (?, 'delivery', ?, 'test', 1, '[]', '{}', ?, ?)`,
              [id, `key-${id}`, now, status],
            );
          }
          const reopened = await database.open();
          try {
            assert.ok((await reopened.migrations()).find((m) => m.version === 5)?.appliedAt);
            const d = await queueDepths(reopened);
            assert.deepEqual(d.messages.map((m) => `${m.priority}:${m.n}`).sort(), ['0:1', '1:2']);
            assert.deepEqual(
              d.deliveries.map((m) => `${m.destination}/${m.priority}:${m.n}`),
              ['erp/1:2'],
            );
            assert.equal(d.deadLetters, 1);
          } finally {
            await reopened.close();
          }
        }));

    // The per-key chain is SQLite's (ADR 0007): PostgreSQL has no migration 4.
    if (backend.name !== 'postgres')
      test('migration 4 (SQLite) chains the messages a database holds queued already', () =>
        run(async (store, database) => {
          // Back to the tables before migration 4 ...
          await executeAll(store, [
            'DROP TRIGGER messages_tail',
            'DROP TRIGGER messages_tail_gone',
            'DROP TABLE partition_tails',
            'DROP INDEX messages_next',
            'ALTER TABLE messages DROP COLUMN prev_seq',
            "CREATE INDEX messages_key_head ON messages (partition_key, seq) WHERE status = 'queued'",
            'DELETE FROM schema_migrations WHERE version = 4',
          ]);
          // ... holding queued messages the way they were accepted then: three of one key (the
          // first its head), one finished of another key, and one whose head mark was lost.
          const now = Date.now();
          const rows: [string, string, string, number][] = [
            ['m-1', 'p-chain', 'queued', 1],
            ['d-1', 'p-done', 'done', 0],
            ['m-2', 'p-chain', 'queued', 0],
            ['o-1', 'p-orphan', 'queued', 0],
            ['m-3', 'p-chain', 'queued', 0],
          ];
          for (const [id, key, status, head] of rows) {
            await store.execute(
              `INSERT INTO messages (id, source, idempotency_key, type, partition_key, priority,
               payload, traceparent, status, attempts, available_at, accepted_at, replay_count,
               is_head)
             VALUES (?, 'test', ?, 'thing.created', ?, 1, '{}', NULL, ?, 0, ?, ?, 0, ?)`,
              [id, `key-${id}`, key, status, now, now, head],
            );
          }
          const reopened = await database.open();
          try {
            const status = await reopened.migrations();
            assert.ok(status.find((m) => m.version === 4)?.appliedAt);
            const engine = engineOn(reopened);
            const handled: string[] = [];
            engine.registerHandler('thing.created', async (msg) => {
              handled.push(msg.id);
            });
            const next = await engine.accept(req({ partitionKey: 'p-chain' }));
            const other = await engine.accept(req({ partitionKey: 'p-done' }));
            assert.ok(next.outcome === 'accepted' && other.outcome === 'accepted');
            const heads = await reopened.query<{ id: string }>(
              "SELECT id FROM messages WHERE status = 'queued' AND is_head = 1 ORDER BY seq",
            );
            assert.deepEqual(
              heads.map((h) => h.id),
              ['m-1', 'o-1', other.messageId],
            );
            engine.start();
            await waitFor('processed', () => engine.counters.processed === 6);
            await engine.stop();
            assert.deepEqual(
              handled.filter((id) => id === next.messageId || id.startsWith('m-')),
              ['m-1', 'm-2', 'm-3', next.messageId],
            );
          } finally {
            await reopened.close();
          }
        }));

    test('keys kept in idempotency_keys (accepted before migration 3) still answer', () =>
      run(async (store) => {
        const engine = engineOn(store);
        const now = Date.now();
        const kept = req();
        const expired = req();
        const insert =
          'INSERT INTO idempotency_keys (source, idempotency_key, request_hash, message_id, accepted_at, traceparent, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)';
        await store.execute(insert, [
          kept.source,
          kept.idempotencyKey,
          kept.requestHash,
          'm-kept',
          now - 1000,
          null,
          now + 60_000,
        ]);
        await store.execute(insert, [
          expired.source,
          expired.idempotencyKey,
          expired.requestHash,
          'm-expired',
          now - 2000,
          null,
          now - 1000,
        ]);
        const answers = await Promise.all([
          engine.accept(kept),
          engine.accept({ ...kept, requestHash: 'other' }),
          engine.accept(expired),
        ]);
        assert.deepEqual(answers[0], {
          outcome: 'duplicate',
          messageId: 'm-kept',
          acceptedAt: new Date(now - 1000).toISOString(),
        });
        assert.deepEqual(answers[1], { outcome: 'conflict', messageId: 'm-kept' });
        assert.equal(answers[2]!.outcome, 'accepted');
        const left = await store.query<{ message_id: string }>(
          'SELECT message_id FROM idempotency_keys',
        );
        assert.deepEqual(
          left.map((x) => x.message_id),
          ['m-kept'],
        );
        assert.equal((await engine.accept(expired)).outcome, 'duplicate');
        await engine.stop();
      }));

    test('migration 3 keeps answering the keys of a database that holds messages already', () =>
      run(async (store, database) => {
        // Back to the tables before migration 3 ...
        await store.execute('DROP INDEX messages_idempotency');
        await store.execute('ALTER TABLE messages DROP COLUMN key_expires_at');
        await store.execute('ALTER TABLE messages DROP COLUMN request_hash');
        await store.execute('DELETE FROM schema_migrations WHERE version = 3');
        // ... holding a message queued the way it was accepted then: its key in idempotency_keys.
        const now = Date.now();
        await store.execute(
          'INSERT INTO idempotency_keys (source, idempotency_key, request_hash, message_id, accepted_at, traceparent, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          ['test', 'before', 'h-before', 'm-before', now, null, now + 60_000],
        );
        await store.execute(
          `INSERT INTO messages (id, source, idempotency_key, type, partition_key, priority, payload,
             traceparent, status, attempts, available_at, accepted_at, replay_count, is_head)
           VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 'queued', 0, ?, ?, 0, 1)`,
          ['m-before', 'test', 'before', 'thing.created', 'p-before', 1, '{"n":0}', now, now],
        );
        const reopened = await database.open();
        try {
          const status = await reopened.migrations();
          assert.ok(status.find((m) => m.version === 3)?.appliedAt);
          const engine = engineOn(reopened);
          const handled: string[] = [];
          engine.registerHandler('thing.created', async (msg) => {
            handled.push(msg.id);
          });
          const before = req({ idempotencyKey: 'before', requestHash: 'h-before' });
          assert.deepEqual(await engine.accept(before), {
            outcome: 'duplicate',
            messageId: 'm-before',
            acceptedAt: new Date(now).toISOString(),
          });
          assert.deepEqual(await engine.accept({ ...before, requestHash: 'other' }), {
            outcome: 'conflict',
            messageId: 'm-before',
          });
          const after = await engine.accept(req({ partitionKey: 'p-before' }));
          assert.equal(after.outcome, 'accepted');
          engine.start();
          await waitFor('processed', () => engine.counters.processed === 2);
          await engine.stop();
          assert.deepEqual(handled, ['m-before', (after as { messageId: string }).messageId]);
        } finally {
          await reopened.close();
        }
      }));

    test('retention purges dead letters after their own window, not before', () =>
      run(async (store) => {
        const engine = engineOn(store, {
          retention: { completedMs: 24 * 60 * 60 * 1000, deadLettersMs: 200, intervalMs: 0 },
        });
        engine.registerHandler('thing.created', async (msg) => {
          if ((msg.payload as { poison?: boolean }).poison) throw new PermanentError('POISON');
        });
        const poison = await engine.accept(req({ payload: { poison: true } }));
        assert.equal(poison.outcome, 'accepted');
        await engine.accept(req());
        engine.start();
        await waitFor('dead-lettered', () => engine.counters.deadLettered === 1);
        await waitFor('processed', () => engine.counters.processed === 1);
        await engine.stop();
        const id = (poison as { messageId: string }).messageId;
        // Inside its window the dead letter stays, whatever the completed-work window says.
        const early = await engine.purge();
        assert.equal(early.deadLetters, 0);
        assert.equal((await engine.deadLetters.list()).items.length, 1);
        // The default window (30 days) keeps it too.
        await sleep(250);
        assert.equal((await createEngine({ store }).purge()).deadLetters, 0);
        assert.ok(await engine.deadLetters.show(id));
        // Past its window it goes, with its dead message row; the done message stays (1 day).
        const late = await engine.purge();
        assert.equal(late.deadLetters, 1);
        assert.equal(late.messages, 0);
        assert.equal(await engine.deadLetters.show(id), undefined);
        assert.equal((await engine.deadLetters.list()).items.length, 0);
        const rows = await store.query<{ id: string; status: string }>(
          'SELECT id, status FROM messages',
        );
        assert.deepEqual(
          rows.map((r) => r.status),
          ['done'],
        );
      }));

    test('queue depths follow accepts, processing, dead letters, replays and purges', () =>
      run(async (store) => {
        // What the depths must be: counted from the rows themselves.
        const counted = async () => ({
          messages: (
            await store.query<{ priority: number; n: number }>(
              "SELECT priority, COUNT(*) AS n FROM messages WHERE status = 'queued' GROUP BY priority",
            )
          )
            .map((r) => `${r.priority}:${Number(r.n)}`)
            .sort(),
          deliveries: (
            await store.query<{ destination: string; priority: number; n: number }>(
              "SELECT destination, priority, COUNT(*) AS n FROM deliveries WHERE status = 'queued' GROUP BY destination, priority",
            )
          )
            .map((r) => `${r.destination}/${r.priority}:${Number(r.n)}`)
            .sort(),
          deadLetters: Number(
            (
              await store.query<{ n: number }>(
                "SELECT COUNT(*) AS n FROM dead_letters WHERE status = 'dead'",
              )
            )[0]?.n,
          ),
        });
        const reported = async () => {
          const d = await queueDepths(store);
          return {
            messages: d.messages.map((r) => `${r.priority}:${r.n}`).sort(),
            deliveries: d.deliveries.map((r) => `${r.destination}/${r.priority}:${r.n}`).sort(),
            deadLetters: d.deadLetters,
          };
        };
        const engine = engineOn(store, {
          gate: passThroughGate({ retryMs: 5, maxAttempts: 1 }),
          deliveryMaxAttempts: 1,
          handlerRetry: { maxAttempts: 1 },
          retention: { completedMs: 1, deadLettersMs: 1, intervalMs: 0 },
        });
        let wmsUp = false;
        engine.registerHandler('thing.created', async (msg, tx) => {
          if ((msg.payload as { poison?: boolean }).poison) throw new PermanentError('poison');
          await tx.deliver({ destination: 'erp', payload: msg.payload });
          await tx.deliver({ destination: 'wms', payload: msg.payload, priority: 'critical' });
        });
        engine.registerSender('erp', async () => ({ status: 201 }));
        engine.registerSender('wms', async () => ({ status: wmsUp ? 201 : 422 }));

        // Queued: two keys with a chain each, every class, one poison message.
        const accepted: string[] = [];
        for (const [key, priority, poison] of [
          ['a', 'standard', false],
          ['a', 'deferrable', false],
          ['b', 'critical', false],
          ['b', 'critical', true],
          ['c', 'deferrable', false],
        ] as const) {
          const r = await engine.accept(req({ partitionKey: key, priority, payload: { poison } }));
          assert.equal(r.outcome, 'accepted');
          if (r.outcome === 'accepted') accepted.push(r.messageId);
        }
        const queued = await reported();
        assert.deepEqual(queued, await counted());
        assert.deepEqual(queued.messages, ['0:2', '1:1', '2:2']);
        const oldest = (await queueDepths(store)).messages;
        assert.ok(oldest.every((m) => typeof m.oldest === 'number' && m.oldest <= Date.now()));

        // Processed: four done, the poison one dead; each done one's erp delivery delivered and
        // its wms delivery dead.
        engine.start();
        await waitFor('processed and settled', () => {
          const c = engine.counters;
          return c.processed === 4 && c.delivered === 4 && c.deadLettered === 5;
        });
        await engine.stop();
        assert.deepEqual(await reported(), await counted());
        assert.deepEqual((await reported()).messages, []);
        assert.equal((await reported()).deadLetters, 5);

        // Replayed: the dead deliveries and the dead message are queued again.
        wmsUp = true;
        const replays = await engine.deadLetters.replayMatching({ destination: 'wms' });
        assert.equal(replays.length, 4);
        await engine.deadLetters.replay(accepted[3]!);
        const again = await reported();
        assert.deepEqual(again, await counted());
        assert.deepEqual(again.deliveries, ['wms/0:4']);
        assert.deepEqual(again.messages, ['0:1']);
        assert.equal(again.deadLetters, 0);

        // Purged: nothing queued is touched; what finished goes.
        await sleep(5);
        await engine.purge();
        assert.deepEqual(await reported(), again);
        assert.deepEqual(await reported(), await counted());
      }));

    test('back-pressure refuses deferrable accepts above the backlog, never critical', () =>
      run(async (store) => {
        const engine = engineOn(store, {
          backpressure: { deferrableBacklogLimit: 2, refreshMs: 10, retryAfterSeconds: 7 },
        });
        const first = req({ priority: 'deferrable' });
        for (const r of [first, req({ priority: 'deferrable' }), req({ priority: 'deferrable' })]) {
          assert.equal((await engine.accept(r)).outcome, 'accepted');
        }
        // Workers are not started: the backlog stays queued. The engine counts what it accepts
        // itself at once, whenever the depths were last read: the next deferrable is refused.
        assert.deepEqual(await engine.accept(req({ priority: 'deferrable' })), {
          outcome: 'backpressure',
          retryAfterSeconds: 7,
        });
        // A retry of an accepted deferrable request still gets its original answer.
        assert.equal((await engine.accept(first)).outcome, 'duplicate');
        assert.equal((await engine.accept(req({ priority: 'critical' }))).outcome, 'accepted');
        const stats = await engine.stats();
        assert.equal(stats.messages.byClass.deferrable.depth, 3);
        assert.equal(stats.messages.byClass.critical.depth, 1);
        assert.equal(engine.counters.backpressured, 1);
        await engine.stop();
      }));
  });
}
