// Opens a Store from a URL: `sqlite:<path>`, `sqlite::memory:` or `postgres://…`.
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import type { OpenStoreOptions, Store } from './port.js';

export type * from './port.js';
export { splitStatements } from './port.js';
export { MIGRATIONS } from './migrations.js';
export { SqliteStore } from './sqlite/sqlite-store.js';
export { PostgresStore } from './postgres/postgres-store.js';

/** The SQLite path of a `sqlite:` URL (`sqlite:./x.db`, `sqlite:///abs/x.db`, `sqlite::memory:`). */
export function sqlitePath(url: string): string {
  let rest = url.slice('sqlite:'.length);
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '') throw new Error('sqlite URL needs a path, e.g. sqlite:./.middlemart/data.db');
  return rest;
}

export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  let store: Store;
  if (url.startsWith('sqlite:')) {
    store = new SqliteStore(sqlitePath(url), opts);
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
