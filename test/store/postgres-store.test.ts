// The PostgreSQL store's connections: statements with parameters run as named prepared statements
// (each pooled connection parses one once), planned for their parameters on every execution, and
// a URL's own `options` are kept beside the store's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PG_SKIP, PG_URL, postgresDatabase } from './backends.js';
import { openStore } from '../../src/store/index.js';

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
