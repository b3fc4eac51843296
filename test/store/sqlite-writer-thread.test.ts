// What the SQLite writer-thread mode adds beyond the conformance suite (which runs in it too):
// how it is selected, reads on the main thread seeing every awaited write, pipelined savepoint
// statements failing their transaction, errors and BLOBs crossing the thread boundary.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, SqliteStore, SqliteThreadStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/port.js';

async function withThreadStore(fn: (store: Store, url: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-writer-'));
  const url = `sqlite:${join(dir, 'w.db')}?writer=thread`;
  const store = await openStore(url);
  try {
    await store.execute('CREATE TABLE w (id TEXT PRIMARY KEY, n INTEGER NOT NULL, b BLOB)');
    await fn(store, url);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('sqlite writer thread', () => {
  test('is chosen by the URL or the option; memory databases keep the default', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mm-writer-'));
    try {
      const a = await openStore(`sqlite:${join(dir, 'a.db')}?writer=thread`);
      assert.ok(a instanceof SqliteThreadStore);
      assert.equal(a.description, `sqlite:${join(dir, 'a.db')}`);
      await a.close();
      const b = await openStore(`sqlite:${join(dir, 'b.db')}`, { sqliteWriter: 'thread' });
      assert.ok(b instanceof SqliteThreadStore);
      await b.close();
      const c = await openStore(`sqlite:${join(dir, 'c.db')}?writer=main`);
      assert.ok(c instanceof SqliteStore);
      await c.close();
      const m = await openStore('sqlite::memory:?writer=thread');
      assert.ok(m instanceof SqliteStore);
      await m.close();
      await assert.rejects(openStore(`sqlite:${join(dir, 'd.db')}?cache=shared`), /unsupported/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('reads on the main thread see every awaited write, never an uncommitted one', () =>
    withThreadStore(async (store) => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let written!: () => void;
      const wrote = new Promise<void>((r) => (written = r));
      const tx = store.transaction(async (t) => {
        await t.execute('INSERT INTO w (id, n) VALUES (?, ?)', ['a', 1]);
        // The transaction sees its own write.
        assert.equal((await t.query('SELECT n FROM w WHERE id = ?', ['a'])).length, 1);
        written();
        await gate;
      });
      await wrote;
      // Outside the transaction it is not there yet.
      assert.deepEqual(await store.query('SELECT n FROM w'), []);
      release();
      await tx;
      assert.deepEqual(await store.query('SELECT n FROM w'), [{ n: 1 }]);
      for (let i = 0; i < 50; i++) {
        await store.execute('UPDATE w SET n = ? WHERE id = ?', [i, 'a']);
        assert.deepEqual(await store.query('SELECT n FROM w'), [{ n: i }]);
      }
      // A write statement with RETURNING through query() goes to the writer.
      assert.deepEqual(await store.query('UPDATE w SET n = n + 1 RETURNING n'), [{ n: 50 }]);
    }));

  test('a failing pipelined savepoint statement fails the transaction', () =>
    withThreadStore(async (store) => {
      await assert.rejects(
        store.transaction(async (t) => {
          await t.execute('INSERT INTO w (id, n) VALUES (?, ?)', ['a', 1]);
          await t.execute('RELEASE SAVEPOINT nowhere');
          await t.execute('INSERT INTO w (id, n) VALUES (?, ?)', ['b', 2]);
        }),
        /no such savepoint/,
      );
      assert.deepEqual(await store.query('SELECT id FROM w'), []);
      // Savepoints that work behave as on the main thread.
      await store.transaction(async (t) => {
        await t.execute('SAVEPOINT s');
        await t.execute('INSERT INTO w (id, n) VALUES (?, ?)', ['a', 1]);
        await t.execute('ROLLBACK TO SAVEPOINT s');
        await t.execute('RELEASE SAVEPOINT s');
        await t.execute('INSERT INTO w (id, n) VALUES (?, ?)', ['b', 2]);
      });
      assert.deepEqual(await store.query('SELECT id FROM w'), [{ id: 'b' }]);
    }));

  test('errors keep their SQLite code; BLOBs come back as Buffers', () =>
    withThreadStore(async (store) => {
      await store.execute('INSERT INTO w (id, n, b) VALUES (?, ?, ?)', [
        'a',
        1,
        Buffer.from([1, 2, 3]),
      ]);
      await assert.rejects(
        store.transaction((t) => t.execute('INSERT INTO w (id, n) VALUES (?, ?)', ['a', 2])),
        (err: Error & { code?: string }) => err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY',
      );
      const [inTx] = await store.transaction((t) => t.query<{ b: Buffer }>('SELECT b FROM w'));
      assert.ok(Buffer.isBuffer(inTx!.b));
      assert.deepEqual([...inTx!.b], [1, 2, 3]);
      const [outside] = await store.query<{ b: Buffer }>('SELECT b FROM w');
      assert.ok(Buffer.isBuffer(outside!.b));
      // The store still works after the failed transaction, and fails cleanly once closed.
      assert.equal((await store.execute('UPDATE w SET n = 5')).changes, 1);
    }));
});
