// How the SQLite store sets up its connection: the settings durability and speed rest on, and
// checkpoints taken off the writer once a file store is busy (ADR 0007, fourth pass).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { openStore, SqliteStore } from '../../src/store/index.js';
import { NEW_DATABASE_PAGE_SIZE } from '../../src/store/sqlite/sqlite-store.js';

function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-sqlite-conn-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

describe('sqlite connection', () => {
  for (const writer of ['main', 'thread'] as const) {
    test(`${writer} writer: WAL, fsync at every commit, statement journals in memory`, () =>
      withDir(async (dir) => {
        const store = await openStore(`sqlite:${join(dir, 'a.db')}?writer=${writer}`);
        try {
          // Inside a transaction, so the thread store asks its writer connection.
          const pragmas = await store.transaction(async (tx) => ({
            journal: await tx.query<{ journal_mode: string }>('PRAGMA journal_mode'),
            sync: await tx.query<{ synchronous: number }>('PRAGMA synchronous'),
            temp: await tx.query<{ temp_store: number }>('PRAGMA temp_store'),
          }));
          assert.equal(pragmas.journal[0]?.journal_mode, 'wal');
          assert.equal(pragmas.sync[0]?.synchronous, 2, 'synchronous=FULL');
          assert.equal(pragmas.temp[0]?.temp_store, 2, 'temp_store=MEMORY');
        } finally {
          await store.close();
        }
      }));
  }

  for (const writer of ['main', 'thread'] as const) {
    test(`${writer} writer: a new database gets 8 KiB pages, an existing one keeps its own`, () =>
      withDir(async (dir) => {
        const pageSize = async (file: string): Promise<number> => {
          const store = await openStore(`sqlite:${join(dir, file)}?writer=${writer}`);
          try {
            const rows = await store.query<{ page_size: number }>('PRAGMA page_size');
            return Number(rows[0]?.page_size);
          } finally {
            await store.close();
          }
        };
        assert.equal(await pageSize('new.db'), NEW_DATABASE_PAGE_SIZE);
        assert.equal(NEW_DATABASE_PAGE_SIZE, 8192);
        // A database created with SQLite's default 4 KiB pages, with a table in it.
        const old = new Database(join(dir, 'old.db'));
        old.pragma('journal_mode = WAL');
        old.exec('CREATE TABLE t (x INTEGER)');
        assert.equal(old.pragma('page_size', { simple: true }), 4096);
        old.close();
        assert.equal(await pageSize('old.db'), 4096);
      }));
  }

  test('sync=background in the URL selects the background mode: commits written with synchronous=NORMAL', () =>
    withDir(async (dir) => {
      const store = await openStore(`sqlite:${join(dir, 'bg.db')}?sync=background`);
      try {
        const sync = await store.query<{ synchronous: number }>('PRAGMA synchronous');
        assert.equal(sync[0]?.synchronous, 1, 'synchronous=NORMAL (the fdatasync follows)');
        await store.execute('CREATE TABLE t (n INTEGER NOT NULL)');
        await store.transaction((tx) => tx.execute('INSERT INTO t (n) VALUES (1)'));
        assert.deepEqual(await store.query('SELECT n FROM t'), [{ n: 1 }]);
      } finally {
        await store.close();
      }
    }));

  test('an unknown sqlite URL option, or background sync with the writer thread, is refused', async () => {
    await assert.rejects(
      openStore('sqlite::memory:?sync=sometimes'),
      /unsupported sqlite URL option sync=sometimes/,
    );
    await withDir(async (dir) => {
      await assert.rejects(
        openStore(`sqlite:${join(dir, 'c.db')}?writer=thread&sync=background`),
        /sync=background applies to writer=main only/,
      );
    });
  });

  test('a busy file store checkpoints on its own thread, not on the writer', () =>
    withDir(async (dir) => {
      const path = join(dir, 'b.db');
      const store = new SqliteStore(path);
      try {
        await store.execute('CREATE TABLE t (n INTEGER NOT NULL)');
        const before = statSync(path).size;
        // 600 small commits: about one WAL frame each, below SQLite's own automatic checkpoint
        // (1,000 pages), so only the checkpointing thread (started after 500 commits) copies
        // them into the database file.
        for (let i = 0; i < 600; i++) {
          await store.transaction((tx) => tx.execute('INSERT INTO t (n) VALUES (?)', [i]));
        }
        const deadline = Date.now() + 5000;
        while (statSync(path).size <= before && Date.now() < deadline) await sleep(20);
        assert.ok(
          statSync(path).size > before,
          `database file still ${String(statSync(path).size)} bytes`,
        );
        const rows = await store.query<{ c: number }>('SELECT count(*) AS c FROM t');
        assert.equal(rows[0]?.c, 600);
      } finally {
        await store.close();
      }
    }));
});
