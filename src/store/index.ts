// Opens a Store from a URL: `sqlite:<path>` (optionally `?writer=thread` or `?sync=background`),
// `sqlite::memory:` or `postgres://…`.
import { PostgresStore } from './postgres/postgres-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { SqliteThreadStore } from './sqlite/thread-store.js';
import type { OpenStoreOptions, Store } from './port.js';
import { THREAD_WITH_BACKGROUND, sqlitePath, sqliteUrlOptions } from './url.js';

export type * from './port.js';
export { splitStatements } from './port.js';
export { MIGRATIONS } from './migrations.js';
export { SqliteStore } from './sqlite/sqlite-store.js';
export { SqliteThreadStore } from './sqlite/thread-store.js';
export { PostgresStore } from './postgres/postgres-store.js';
export { sqlitePath } from './url.js';

export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  let store: Store;
  if (url.startsWith('sqlite:')) {
    const path = sqlitePath(url);
    const fromUrl = sqliteUrlOptions(url);
    const writer = opts.sqliteWriter ?? fromUrl.writer ?? 'main';
    const sqliteSync = opts.sqliteSync ?? fromUrl.sync;
    // The thread's commits are fsynced by SQLite on the thread; nothing would apply it.
    if (writer === 'thread' && sqliteSync === 'background') throw new Error(THREAD_WITH_BACKGROUND);
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
