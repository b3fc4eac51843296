// SQLite implementation of the Store port (better-sqlite3, embedded default). One connection in
// WAL mode with synchronous=FULL: a commit returns only after the WAL is fsynced. better-sqlite3
// is synchronous, so every statement and transaction passes through one async mutex; a
// transaction holds it from BEGIN IMMEDIATE to COMMIT.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { MIGRATIONS, orderedMigrations } from '../migrations.js';
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
} from '../port.js';

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

  constructor(path: string, opts: OpenStoreOptions = {}) {
    const memory = path === ':memory:';
    if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true });
    this.db = new Database(path);
    this.description = `sqlite:${memory ? ':memory:' : resolve(path)}`;
    if (!memory) this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    this.db.pragma('foreign_keys = ON');
  }

  private prepare(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      if (this.statements.size > 500) this.statements.clear();
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

  query<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.exclusive(() => this.queryNow<T>(sql, params));
  }

  execute(sql: string, params: readonly SqlValue[] = []): Promise<ExecuteResult> {
    return this.exclusive(() => this.executeNow(sql, params));
  }

  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      let open = true;
      const tx: StoreTx = {
        dialect: 'sqlite',
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
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(tx);
        open = false;
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        open = false;
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
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
      }
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
      const byVersion = new Map(rows.map((r) => [r.version, r]));
      const out: MigrationStatus[] = MIGRATIONS.sqlite.map((m) => ({
        version: m.version,
        name: m.name,
        appliedAt: byVersion.get(m.version)?.applied_at ?? null,
      }));
      for (const r of rows) {
        if (!out.some((m) => m.version === r.version)) {
          out.push({ version: r.version, name: r.name, appliedAt: r.applied_at });
        }
      }
      return out.sort((a, b) => a.version - b.version);
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
      this.db.close();
    } finally {
      release();
    }
  }
}
