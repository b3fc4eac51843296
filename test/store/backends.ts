// The stores every conformance test runs against: SQLite on a temporary file (with the writer
// connection on the event loop, again on a worker thread: `?writer=thread`, and again with its
// commits made durable by an fdatasync off the event loop: `?sync=background`), and PostgreSQL
// in a schema of its own when MIDDLEMART_TEST_PG_URL is set. MIDDLEMART_TEST_SQLITE_WRITERS
// (comma list of main, thread, background; default all three) narrows the SQLite modes.
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
  name: 'sqlite' | 'sqlite-thread' | 'sqlite-background' | 'postgres';
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
  (process.env.MIDDLEMART_TEST_SQLITE_WRITERS ?? 'main,thread,background')
    .split(',')
    .map((s) => s.trim()),
);

const SQLITE_MODE_QUERY = { main: '', thread: '?writer=thread', background: '?sync=background' };

/**
 * A fresh SQLite file; `thread` puts its writer connection on a worker thread, `background`
 * makes its commits durable by an fdatasync of the WAL off the event loop.
 */
export function sqliteDatabase(mode: 'main' | 'thread' | 'background' = 'main'): TestDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'mm-store-'));
  const url = `sqlite:${join(dir, 'nested', 'engine.db')}${SQLITE_MODE_QUERY[mode]}`;
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
  ...(SQLITE_WRITERS.has('background')
    ? [
        {
          name: 'sqlite-background' as const,
          skip: false as const,
          create: async () => sqliteDatabase('background'),
        },
      ]
    : []),
  { name: 'postgres', skip: PG_SKIP, create: async () => postgresDatabase() },
];
