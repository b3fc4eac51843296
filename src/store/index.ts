// Opens a Store from a URL: `sqlite:<path>` (optionally `?writer=thread` or `?sync=background`),
// `sqlite::memory:` or `postgres://…`.
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { SqliteThreadStore } from './sqlite/thread-store.js';
import type { OpenStoreOptions, Store } from './port.js';

export type * from './port.js';
export { splitStatements } from './port.js';
export { MIGRATIONS } from './migrations.js';
export { SqliteStore } from './sqlite/sqlite-store.js';
export { SqliteThreadStore } from './sqlite/thread-store.js';
export { PostgresStore } from './postgres/postgres-store.js';

/** Options a `sqlite:` URL may carry after `?` (`sqlite:./x.db?writer=thread`, `?sync=background`). */
function sqliteUrlOptions(url: string): {
  rest: string;
  writer?: 'main' | 'thread';
  sync?: 'full' | 'background';
} {
  const q = url.indexOf('?');
  if (q < 0) return { rest: url };
  let writer: 'main' | 'thread' | undefined;
  let sync: 'full' | 'background' | undefined;
  for (const [key, value] of new URLSearchParams(url.slice(q + 1))) {
    if (key === 'writer' && (value === 'main' || value === 'thread')) writer = value;
    else if (key === 'sync' && (value === 'full' || value === 'background')) sync = value;
    else
      throw new Error(
        `unsupported sqlite URL option ${key}=${value} (expected writer=main|thread or sync=full|background)`,
      );
  }
  return { rest: url.slice(0, q), ...(writer ? { writer } : {}), ...(sync ? { sync } : {}) };
}

/** The SQLite path of a `sqlite:` URL (`sqlite:./x.db`, `sqlite:///abs/x.db`, `sqlite::memory:`). */
export function sqlitePath(url: string): string {
  let rest = sqliteUrlOptions(url).rest.slice('sqlite:'.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '') throw new Error('sqlite URL needs a path, e.g. sqlite:./.middlemart/data.db');
  return rest;
}

export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  let store: Store;
  if (url.startsWith('sqlite:')) {
    const path = sqlitePath(url);
    const fromUrl = sqliteUrlOptions(url);
    const writer = opts.sqliteWriter ?? fromUrl.writer ?? 'main';
    const sqliteSync = opts.sqliteSync ?? fromUrl.sync;
    if (writer === 'thread' && sqliteSync === 'background') {
      // The thread's commits are fsynced by SQLite on the thread; nothing would apply it.
      throw new Error('sqlite sync=background applies to writer=main only, not writer=thread');
    }
    const sqliteOpts = sqliteSync ? { ...opts, sqliteSync } : opts;
    store =
      writer === 'thread' && path !== ':memory:'
        ? await SqliteThreadStore.open(path, sqliteOpts)
        : new SqliteStore(path, sqliteOpts);
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    const pgStore = new PostgresStore(url, opts);
    try {
      await pgStore.ensureSchema();
    } catch (err) {
      await pgStore.close().catch(() => undefined);
      throw err;
    }
    store = pgStore;
  } else {
    throw new Error(
      `unsupported database URL (expected sqlite:… or postgres://…): ${url.split('@').pop()}`,
    );
  }
  if (opts.migrate !== false) {
    try {
      await store.migrate();
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
  }
  return store;
}
