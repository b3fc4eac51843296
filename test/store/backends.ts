// The stores every conformance test runs against: SQLite on a temporary file (with the writer
// connection on the event loop, and again on a worker thread: `?writer=thread`), and PostgreSQL
// in a schema of its own when MIDDLEMART_TEST_PG_URL is set. MIDDLEMART_TEST_SQLITE_WRITERS
// (comma list of main, thread; default both) narrows the SQLite modes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore } from '../../src/store/index.js';
import type { Store } from '../../src/store/port.js';

export const PG_URL = process.env.MIDDLEMART_TEST_PG_URL;
export const PG_SKIP = PG_URL ? false : 'MIDDLEMART_TEST_PG_URL not set';
if (!PG_URL) console.log('# PostgreSQL suites skipped: MIDDLEMART_TEST_PG_URL not set');

export interface Backend {
  name: 'sqlite' | 'sqlite-thread' | 'postgres';
  skip: false | string;
  /** A fresh, migrated database; `url` and `schema` reopen it (e.g. from a child process). */
  create(): Promise<TestDatabase>;
}

export interface TestDatabase {
  url: string;
  schema?: string;
  open(opts?: { poolSize?: number }): Promise<Store>;
  drop(): Promise<void>;
}

const SQLITE_WRITERS = new Set(
  (process.env.MIDDLEMART_TEST_SQLITE_WRITERS ?? 'main,thread').split(',').map((s) => s.trim()),
);

/** A fresh SQLite file; `writer: 'thread'` puts its writer connection on a worker thread. */
export function sqliteDatabase(writer: 'main' | 'thread' = 'main'): TestDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'mm-store-'));
  const url = `sqlite:${join(dir, 'nested', 'engine.db')}${writer === 'thread' ? '?writer=thread' : ''}`;
  return {
    url,
    open: () => openStore(url),
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function postgresDatabase(): TestDatabase {
  if (!PG_URL) throw new Error('MIDDLEMART_TEST_PG_URL not set');
  const url = PG_URL;
  const schema = `mm_test_${randomBytes(6).toString('hex')}`;
  return {
    url,
    schema,
    open: (opts) =>
      openStore(url, { schema, ...(opts?.poolSize ? { poolSize: opts.poolSize } : {}) }),
    drop: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

export const BACKENDS: Backend[] = [
  ...(SQLITE_WRITERS.has('main')
    ? [{ name: 'sqlite' as const, skip: false as const, create: async () => sqliteDatabase() }]
    : []),
  ...(SQLITE_WRITERS.has('thread')
    ? [
        {
          name: 'sqlite-thread' as const,
          skip: false as const,
          create: async () => sqliteDatabase('thread'),
        },
      ]
    : []),
  { name: 'postgres', skip: PG_SKIP, create: async () => postgresDatabase() },
];
