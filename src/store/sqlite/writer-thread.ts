// The writer thread of the SQLite store's `writer: 'thread'` mode: it owns the one read-write
// connection (WAL, synchronous=FULL), so every write statement, COMMIT and its fsync, and the
// automatic WAL checkpoints run here instead of on the event loop. The source is plain
// JavaScript evaluated by `new Worker(…, { eval: true })`, so it runs the same from the sources
// (tsx) and from the build.
//
// Protocol. Requests arrive on a MessagePort; after posting one, the main thread increments
// `signal[0]` and notifies it. This thread never runs its own event loop: it drains the port
// with `receiveMessageOnPort` and, when the port is empty, sleeps in `Atomics.wait` on the
// signal (only this thread ever blocks; the main thread just notifies). Requests are handled
// strictly in arrival order, and every request is answered on the port with `{ id, … }`.
//
// Requests: `run` (one statement inside the open transaction; `begin` opens it first: 1 durable,
// 2 relaxed; `quiet`: pipelined, answered by nothing, its error failing the transaction's next
// request), `commit` (rolls back when it fails, so the transaction is over either way),
// `rollback`, `autocommit` (one statement in its own implicit, durable transaction), `migrate`,
// `ping`, `close`.

/** The request a main thread sends (see the protocol above). */
export type WriterRequest =
  | {
      id: number;
      op: 'run' | 'autocommit';
      mode: 'query' | 'execute';
      sql: string;
      params: readonly unknown[];
      /** `run` only: 0 inside the open transaction, 1 BEGIN first, 2 BEGIN a relaxed one. */
      begin?: 0 | 1 | 2;
      /**
       * `run` only: pipelined, not answered (savepoint bookkeeping). Its error, if any, fails the
       * transaction's next request instead (and so its commit).
       */
      quiet?: boolean;
    }
  | { id: number; op: 'commit' | 'rollback' | 'ping' | 'close' }
  | {
      id: number;
      op: 'migrate';
      migrations: { version: number; name: string; statements: string[] }[];
    };

/** The answer: rows (query), changes (execute), versions (migrate), or an error. */
export interface WriterReply {
  id: number;
  rows?: Record<string, unknown>[];
  changes?: number;
  versions?: number[];
  /** Rows hold BLOBs (cloned as Uint8Array; the main thread makes them Buffers again). */
  blobs?: boolean;
  error?: { message: string; name: string; code?: string };
}

export interface WriterData {
  path: string;
  driver: string;
  busyTimeoutMs: number;
  /** The page size should the database be new (NEW_DATABASE_PAGE_SIZE). */
  pageSize: number;
  signal: SharedArrayBuffer;
  port: unknown;
}

export const WRITER_SOURCE = `
'use strict';
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const port = workerData.port;
const signal = new Int32Array(workerData.signal);

let db = null;
let relaxed = false;
/** The error of a pipelined statement of the open transaction, reported by its next request. */
let poisoned = null;
const statements = new Map();

function prepare(sql) {
  let st = statements.get(sql);
  if (!st) {
    st = db.prepare(sql);
    if (statements.size > 2000) statements.clear();
    statements.set(sql, st);
  }
  return st;
}

function hasBlobs(rows) {
  for (const row of rows) for (const k in row) if (Buffer.isBuffer(row[k])) return true;
  return false;
}

function runStatement(m) {
  const st = prepare(m.sql);
  if (m.mode === 'query') {
    if (!st.reader) {
      st.run(...m.params);
      return { rows: [] };
    }
    const rows = st.all(...m.params);
    return hasBlobs(rows) ? { rows, blobs: true } : { rows };
  }
  if (st.reader) {
    st.all(...m.params);
    return { changes: 0 };
  }
  return { changes: st.run(...m.params).changes };
}

function finish(sql) {
  poisoned = null;
  try {
    if (db.inTransaction) db.exec(sql);
  } finally {
    if (relaxed) {
      relaxed = false;
      db.exec('PRAGMA synchronous = FULL');
    }
  }
}

function migrate(list) {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const applied = new Set(db.prepare('SELECT version FROM schema_migrations').all().map((r) => r.version));
  const done = [];
  for (const m of list) {
    if (applied.has(m.version)) continue;
    db.exec('BEGIN IMMEDIATE');
    try {
      for (const s of m.statements) db.exec(s);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      db.exec('COMMIT');
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      const e = new Error('migration ' + m.version + ' (' + m.name + ') failed: ' + err.message);
      if (err && err.code) e.code = err.code;
      throw e;
    }
    done.push(m.version);
  }
  return { versions: done };
}

function handle(m) {
  switch (m.op) {
    case 'run':
      if (poisoned) throw poisoned;
      if (m.begin) {
        if (m.begin === 2) {
          relaxed = true;
          db.exec('PRAGMA synchronous = NORMAL');
        }
        db.exec('BEGIN IMMEDIATE');
      }
      return runStatement(m);
    case 'autocommit':
      return runStatement(m);
    case 'commit': {
      // Whatever happens, the transaction is over when this answers: the next request may
      // already be the next transaction's BEGIN.
      const failed = poisoned;
      if (failed || !db.inTransaction) {
        finish('ROLLBACK');
        throw failed || new Error('cannot commit - no transaction is active');
      }
      try {
        finish('COMMIT');
      } catch (err) {
        finish('ROLLBACK');
        throw err;
      }
      return {};
    }
    case 'rollback':
      finish('ROLLBACK');
      return {};
    case 'migrate':
      return migrate(m.migrations);
    case 'ping':
      db.prepare('SELECT 1').get();
      return {};
    default:
      throw new Error('unknown request ' + m.op);
  }
}

function answer(id, fn) {
  let reply;
  try {
    reply = fn();
    reply.id = id;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    reply = { id, error: { message: e.message, name: e.name, code: typeof e.code === 'string' ? e.code : undefined } };
  }
  port.postMessage(reply);
}

let ok = true;
answer(0, () => {
  db = new Database(workerData.path);
  db.pragma('page_size = ' + workerData.pageSize);
  const mode = String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase();
  if (mode !== 'wal') {
    db.close();
    ok = false;
    throw new Error('the writer thread needs a database in WAL mode (journal_mode is ' + mode + ')');
  }
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = ' + workerData.busyTimeoutMs);
  db.pragma('foreign_keys = ON');
  // Statement journals in memory, as on the main-thread store (no temporary file per commit).
  db.pragma('temp_store = MEMORY');
  return {};
});

while (ok) {
  const seen = Atomics.load(signal, 0);
  const got = receiveMessageOnPort(port);
  if (got === undefined) {
    Atomics.wait(signal, 0, seen);
    continue;
  }
  const m = got.message;
  if (m.op === 'close') {
    answer(m.id, () => {
      statements.clear();
      if (db.inTransaction) db.exec('ROLLBACK');
      db.close();
      return {};
    });
    break;
  }
  if (m.quiet) {
    try {
      handle(m);
    } catch (err) {
      poisoned ??= err instanceof Error ? err : new Error(String(err));
    }
  } else {
    answer(m.id, () => handle(m));
  }
}
port.close();
`;
