// The PostgreSQL store's connections: statements with parameters run as named prepared statements
// (each pooled connection parses one once), planned for their parameters on every execution, and
// a URL's own `options` are kept beside the store's. The engine's claims walk the queue in claim
// order however stale the statistics (engine migration 6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PG_SKIP, PG_URL, postgresDatabase } from './backends.js';
import { openStore } from '../../src/store/index.js';
import { inlineParams, toPositional } from '../../src/store/postgres/postgres-store.js';
import type { Store } from '../../src/store/port.js';

test('placeholders outside quotes become $n, or literals for a simple query', () => {
  assert.equal(
    toPositional(`SELECT ? AS a, '?' AS b, "?" AS c, ?`),
    `SELECT $1 AS a, '?' AS b, "?" AS c, $2`,
  );
  assert.equal(
    inlineParams(`SELECT ?, '?', ?, ?, ?, ?`, ["it's", null, 12.5, 7n, Buffer.from([1, 255])]),
    `SELECT 'it''s', '?', NULL, '12.5', '7', E'\\\\x01ff'`,
  );
  assert.throws(() => inlineParams('SELECT ?, ?', [1]), /more placeholders than parameters/);
  assert.throws(() => inlineParams('SELECT ?', [1, 2]), /fewer placeholders than parameters/);
  assert.throws(() => inlineParams('SELECT ?', [Number.NaN]), /cannot inline NaN/);
});

test(
  'pooled connections plan per execution and keep the URL options',
  { skip: PG_SKIP },
  async () => {
    const database = postgresDatabase();
    const url = `${PG_URL!}${PG_URL!.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c statement_timeout=4321')}`;
    const store = await openStore(url, { schema: database.schema!, poolSize: 4 });
    try {
      const setting = async (name: string) =>
        (await store.query<{ v: string }>('SELECT current_setting(?) AS v', [name]))[0]!.v;
      assert.equal(await setting('plan_cache_mode'), 'force_custom_plan');
      assert.equal(await setting('statement_timeout'), '4321ms');
      assert.match(await setting('search_path'), new RegExp(database.schema!));
      // One text, run concurrently and repeatedly on every pooled connection (prepared once each).
      const runs = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          store.transaction(async (tx) => tx.query<{ n: number }>('SELECT ?::int + 1 AS n', [i])),
        ),
      );
      assert.deepEqual(
        runs.map((r) => r[0]!.n),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      // More distinct texts than are named: the rest run unnamed, alike.
      for (let i = 0; i < 600; i++) {
        const [row] = await store.query<{ n: number }>(`SELECT ?::int + ${i} AS n`, [1]);
        assert.equal(row!.n, i + 1);
      }
    } finally {
      await store.close();
      await database.drop();
    }
  },
);

/** Shared buffers a statement touched (hit or read), from its EXPLAIN (ANALYZE, BUFFERS). */
async function buffersOf(store: Store, sql: string): Promise<number> {
  return store.transaction(async (tx) => {
    const [row] = await tx.query<{ 'QUERY PLAN': [{ Plan: Record<string, number> }] }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${sql}`,
    );
    const plan = row!['QUERY PLAN'][0].Plan;
    return plan['Shared Hit Blocks']! + plan['Shared Read Blocks']!;
  });
}

test(
  'claims walk the queue in claim order, whatever the statistics say',
  { skip: PG_SKIP },
  async () => {
    const database = postgresDatabase();
    const store = await openStore(PG_URL!, { schema: database.schema!, poolSize: 2 });
    try {
      // No statistics for messages (a table never analysed), and those of deliveries taken while
      // it was empty; kept so.
      await store.execute('ANALYZE deliveries');
      for (const table of ['messages', 'deliveries']) {
        await store.execute(`ALTER TABLE ${table} SET (autovacuum_enabled = false)`);
      }
      const now = Date.now();
      const pad = 'x'.repeat(1000);
      // 50,000 messages of 5,000 keys (5,000 heads); 20,000 deliveries to erp and 50 to crm, all
      // queued.
      await store.execute(
        `INSERT INTO messages (id, source, idempotency_key, type, partition_key, priority, payload,
           status, attempts, available_at, accepted_at, replay_count, is_head)
         SELECT 'm-' || g, 'test', 'k-' || g, 't', 'p-' || (g % 5000), 1, ?, 'queued', 0, ?, ?, 0,
           CASE WHEN g <= 5000 THEN 1 ELSE 0 END
         FROM generate_series(1, 50000) AS g`,
        [pad.slice(0, 200), now, now],
      );
      await store.execute(
        `INSERT INTO deliveries (id, destination, idempotency_key, priority, payload, status,
           attempts, available_at, created_at)
         SELECT 'd-' || g, CASE WHEN g % 400 = 0 THEN 'crm' ELSE 'erp' END, 'k-' || g, 1, ?,
           'queued', 0, ?, ?
         FROM generate_series(1, 20000) AS g`,
        [pad, now, now],
      );
      const due = `available_at <= ${now} AND (lease_until IS NULL OR lease_until < ${now})`;
      // What the planner makes on its own of the first 16 queued deliveries of erp and crm, from
      // statistics of an empty table: every queued delivery of theirs read and sorted. (For
      // messages it depends on the sizes: with 10,000 heads among 100,000 messages, never
      // analysed, it read all 10,000; with these it walks the index.)
      const alone = await buffersOf(
        store,
        `SELECT seq FROM deliveries WHERE status = 'queued' AND ${due}
           AND destination IN ('erp', 'crm') ORDER BY priority, seq LIMIT 16`,
      );
      // The claims' functions (the first call of each plans its body: not counted).
      const claimMessages = `SELECT claimable_messages(${now}, 16)`;
      const erpAndCrm = JSON.stringify([
        { destination: 'erp', room: 16, below: 3 },
        { destination: 'crm', room: 16, below: 3 },
      ]);
      const crmOnly = JSON.stringify([{ destination: 'crm', room: 16, below: 3 }]);
      const claimDeliveries = (ranges: string) =>
        `SELECT claimable_deliveries(${now}, '${ranges}'::jsonb, 16)`;
      await buffersOf(store, claimMessages);
      await buffersOf(store, claimDeliveries(erpAndCrm));
      const claimed = {
        messages: await buffersOf(store, claimMessages),
        erpAndCrm: await buffersOf(store, claimDeliveries(erpAndCrm)),
        crmOnly: await buffersOf(store, claimDeliveries(crmOnly)),
      };
      assert.ok(alone > 2000, `the planner alone read every delivery (${alone} buffers)`);
      // The claims read a few index and heap pages whatever the backlog.
      for (const [what, n] of Object.entries(claimed)) {
        assert.ok(n < 150, `${what}: ${n} buffers`);
      }
    } finally {
      await store.close();
      await database.drop();
    }
  },
);
