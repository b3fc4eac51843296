// SQLite implementation of the Store port (better-sqlite3, embedded default). One connection in
// WAL mode; a transaction resolves only after its commit is on disk. By default SQLite's own
// synchronous=FULL fsyncs inside COMMIT; with `sqliteSync: 'background'` the commit is written to
// the WAL (synchronous=NORMAL) and the WAL is then fdatasync'ed off the event loop, one
// fdatasync for every commit written before it started (group commit at the file). In both modes
// a file store that has become busy checkpoints on a worker thread of its own. better-sqlite3
// is synchronous, so every statement and transaction passes through one async mutex; a
// transaction holds it from BEGIN IMMEDIATE to COMMIT (not during the fdatasync).
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { MIGRATIONS, migrationStatus, orderedMigrations } from '../migrations.js';
import {
  splitStatements,
  type ExecuteResult,
  type Migration,
  type MigrationStatus,
  type OpenStoreOptions,
  type Row,
  type SqlValue,
  type Store,
  type StoreTx,
  type TransactionOptions,
} from '../port.js';
import { WalFile } from './wal-file.js';

class Mutex {
  private tail: Promise<void> = Promise.resolve();

  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const ready = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return ready;
  }
}

type Statement = Database.Statement<unknown[], unknown>;

/**
 * Checkpoints (copying the WAL into the database file, with their fsyncs) run on a worker
 * thread with a connection of its own, so they do not stall the event loop. PASSIVE never
 * blocks the writer; the writer keeps an automatic checkpoint far above as a safety net.
 */
const CHECKPOINTER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 0');
const run = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch { /* busy: next time */ } };
const timer = setInterval(run, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m === 'checkpoint') run();
  if (m === 'close') { clearInterval(timer); db.close(); parentPort.close(); }
});
`;
const SAFETY_AUTOCHECKPOINT_PAGES = 50_000;
const CHECKPOINTER_AFTER_COMMITS = 500;
/**
 * The page size of a database this store creates (SQLite's default is 4 KiB). A group commit
 * writes every page it changed to the WAL as one frame (two `pwrite`s): with 8 KiB pages an accept
 * batch of 63 messages wrote 34 frames instead of 58 (the messages' rows and each index's right
 * edge span fewer pages), for 17 % more bytes (ADR 0007, sixth pass). Setting it has no effect
 * on a database that already exists.
 */
export const NEW_DATABASE_PAGE_SIZE = 8192;

function bindable(params: readonly SqlValue[]): unknown[] {
  return params as unknown[];
}

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly description: string;
  private readonly db: Database.Database;
  private readonly mutex = new Mutex();
  private readonly statements = new Map<string, Statement>();
  private closed = false;
  /** Background durability: commits wait for our fdatasync of the WAL, not SQLite's (FULL). */
  private readonly background: boolean;
  /** The WAL in either mode (`durable()` syncs it after relaxed commits), or null. */
  private readonly walFile: WalFile | null;
  /** The database file, when it is one in WAL mode (the checkpointer's connection opens it). */
  private readonly walDatabase: string | null;
  private checkpointer: Worker | null = null;

  constructor(path: string, opts: OpenStoreOptions = {}) {
    const memory = path === ':memory:';
    if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
    this.db = new Database(path);
    // A new database gets NEW_DATABASE_PAGE_SIZE pages; an existing one keeps its own.
    this.db.pragma(`page_size = ${NEW_DATABASE_PAGE_SIZE}`);
    this.description = `sqlite:${memory ? ':memory:' : resolve(path)}`;
    const wal =
      !memory &&
      String(this.db.pragma('journal_mode = WAL', { simple: true })).toLowerCase() === 'wal';
    this.background = wal && (opts.sqliteSync ?? 'full') === 'background';
    this.walDatabase = wal ? resolve(path) : null;
    this.walFile = wal ? new WalFile(`${resolve(path)}-wal`) : null;
    // In background mode the commit writes the WAL and the fdatasync follows (WalFile.durable).
    this.db.pragma(this.background ? 'synchronous = NORMAL' : 'synchronous = FULL');
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    this.db.pragma('foreign_keys = ON');
    // Statement journals (a multi-row statement or a savepoint inside a transaction) stay in
    // memory: on disk SQLite creates, writes and deletes a temporary file for them in most
    // group commits. They only serve to undo a statement; durability is the WAL's.
    this.db.pragma('temp_store = MEMORY');
  }

  /** Starts the checkpointing thread once the store is busy (small stores never need it). */
  private startCheckpointer(path: string): void {
    this.db.pragma(`wal_autocheckpoint = ${SAFETY_AUTOCHECKPOINT_PAGES}`);
    this.checkpointer = new Worker(CHECKPOINTER, {
      eval: true,
      workerData: {
        path,
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        everyMs: 50,
      },
    });
    this.checkpointer.unref();
    this.checkpointer.on('error', () => undefined);
  }

  private prepare(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      if (this.statements.size > 2000) this.statements.clear();
      this.statements.set(sql, st);
    }
    return st;
  }

  private queryNow<T extends Row>(sql: string, params: readonly SqlValue[]): T[] {
    const st = this.prepare(sql);
    if (!st.reader) {
      st.run(...bindable(params));
      return [];
    }
    return st.all(...bindable(params)) as T[];
  }

  private executeNow(sql: string, params: readonly SqlValue[]): ExecuteResult {
    const st = this.prepare(sql);
    if (st.reader) {
      st.all(...bindable(params));
      return { changes: 0 };
    }
    return { changes: st.run(...bindable(params)).changes };
  }

  private async exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.closed) throw new Error('store is closed');
    const release = await this.mutex.lock();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /**
   * Counts a commit just written to the WAL (the store counts as busy, and starts its
   * checkpointer, after CHECKPOINTER_AFTER_COMMITS); returns its number (0 without a WAL).
   * `synced`: SQLite's own fsync (synchronous=FULL) has put it on disk.
   */
  private committed(synced: boolean): number {
    const n = this.walFile?.committed(synced) ?? 0;
    if (n === CHECKPOINTER_AFTER_COMMITS && this.walDatabase) {
      this.startCheckpointer(this.walDatabase);
    }
    return n;
  }

  /**
   * Every commit so far on disk: nothing to do when none is relaxed since the last fsync;
   * otherwise one fdatasync of the WAL off the event loop (shared by concurrent callers).
   */
  async durable(): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    // An in-memory database has no disk; a file not in WAL mode never commits relaxed.
    await this.walFile?.durable();
  }

  query<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.autocommit(() => this.queryNow<T>(sql, params), sql);
  }

  execute(sql: string, params: readonly SqlValue[] = []): Promise<ExecuteResult> {
    return this.autocommit(() => this.executeNow(sql, params), sql);
  }

  /** A statement outside a transaction; a write resolves once it is on disk. */
  private async autocommit<T>(fn: () => T, sql: string): Promise<T> {
    let n = 0;
    const result = await this.exclusive(() => {
      const r = fn();
      if (!this.prepare(sql).readonly) {
        const c = this.committed(!this.background);
        if (this.background) n = c;
      }
      return r;
    });
    if (n > 0) await this.walFile!.durable(n);
    return result;
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    let n = 0;
    const result = await this.exclusive(async () => {
      // A relaxed commit is written to the WAL without an fsync (synchronous=NORMAL); the next
      // durable commit's fsync covers it.
      const relaxed = opts.relaxed === true;
      const toggle = relaxed && !this.background;
      let open = true;
      /** Statements queued to run just before the COMMIT. */
      const last: [string, readonly SqlValue[]][] = [];
      const tx: StoreTx = {
        dialect: 'sqlite',
        atCommit: (sql: string, params: readonly SqlValue[] = []) => {
          if (!open) throw new Error('transaction is finished');
          last.push([sql, params]);
        },
        query: <R extends Row = Row>(sql: string, params: readonly SqlValue[] = []) => {
          if (!open) return Promise.reject(new Error('transaction is finished'));
          try {
            return Promise.resolve(this.queryNow<R>(sql, params));
          } catch (err) {
            return Promise.reject(err as Error);
          }
        },
        execute: (sql: string, params: readonly SqlValue[] = []) => {
          if (!open) return Promise.reject(new Error('transaction is finished'));
          try {
            return Promise.resolve(this.executeNow(sql, params));
          } catch (err) {
            return Promise.reject(err as Error);
          }
        },
      };
      if (toggle) this.db.exec('PRAGMA synchronous = NORMAL');
      try {
        this.db.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(tx);
          open = false;
          for (const [sql, params] of last) this.executeNow(sql, params);
          this.db.exec('COMMIT');
          const c = this.committed(!relaxed && !this.background);
          if (this.background && !relaxed) n = c;
          return result;
        } catch (err) {
          open = false;
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw err;
        }
      } finally {
        if (toggle) this.db.exec('PRAGMA synchronous = FULL');
      }
    });
    if (n > 0) await this.walFile!.durable(n);
    return result;
  }

  async migrate(extra: readonly Migration[] = []): Promise<number[]> {
    return this.exclusive(() => {
      this.db.exec(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
      );
      const applied = new Set(
        (
          this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]
        ).map((r) => r.version),
      );
      const done: number[] = [];
      for (const m of orderedMigrations([...MIGRATIONS.sqlite, ...extra])) {
        if (applied.has(m.version)) continue;
        this.db.exec('BEGIN IMMEDIATE');
        try {
          for (const stmt of splitStatements(m.sql)) this.db.exec(stmt);
          this.db
            .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(m.version, m.name, Date.now());
          this.db.exec('COMMIT');
        } catch (err) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw new Error(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, {
            cause: err,
          });
        }
        done.push(m.version);
        this.committed(!this.background);
      }
      return done;
    }).then(async (done) => {
      if (this.background && done.length > 0) await this.walFile!.durable();
      return done;
    });
  }

  async migrations(): Promise<MigrationStatus[]> {
    return this.exclusive(() => {
      const exists = this.db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
        )
        .get();
      const rows = exists
        ? (this.db.prepare('SELECT version, name, applied_at FROM schema_migrations').all() as {
            version: number;
            name: string;
            applied_at: number;
          }[])
        : [];
      return migrationStatus(MIGRATIONS.sqlite, rows);
    });
  }

  async ping(): Promise<void> {
    await this.exclusive(() => this.db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const release = await this.mutex.lock();
    try {
      this.closed = true;
      this.statements.clear();
      if (this.checkpointer) {
        const done = new Promise<void>((r) => this.checkpointer!.once('exit', () => r()));
        // Keep the process alive until the worker has closed its connection.
        this.checkpointer.ref();
        this.checkpointer.postMessage('close');
        await done;
        this.checkpointer = null;
      }
      this.db.close();
      await this.walFile?.close();
    } finally {
      release();
    }
  }
}
