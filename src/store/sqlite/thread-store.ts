// SQLite with the writer on a worker thread (`writer: 'thread'`, opt-in; ADR 0007 "Writer
// thread"). The read-write connection lives on a worker thread (writer-thread.ts), so a COMMIT
// and its fsync (synchronous=FULL, as in the default mode) no longer stall the event loop: the
// HTTP server keeps parsing requests and the engine keeps gathering the next group commit while
// the previous one reaches the disk. Durability is unchanged: `transaction()` resolves only after
// the writer thread answered its COMMIT, i.e. after SQLite's fsync of the WAL returned. On the
// engine's benchmark it is not faster than the default (each statement is a round trip; ADR 0007).
//
// Reads outside a transaction (a `query` whose statement is read-only) run on a read-only
// connection of the main thread, without a thread round trip. That is correct for the engine's
// read-your-writes needs: the writer answers a COMMIT only once it is complete in the WAL and its
// index, and every read on the main connection is a fresh read transaction (statements run to
// completion, none is held open), so a read started after an awaited `transaction()`, `execute()`
// or write `query()` sees that write. A read racing a transaction still in flight sees the last
// committed state, never an uncommitted one (as a second connection on PostgreSQL would).
// Everything inside a transaction runs on the writer, so a transaction sees its own writes.
//
// Round trips. BEGIN travels with the transaction's first statement, so a claim (one statement)
// costs two round trips (statement, COMMIT) and an accept batch four; savepoint statements are
// pipelined (no answer awaited), so a handler in a batch costs its own statements only. The writer thread sleeps in
// Atomics.wait between requests and is woken by Atomics.notify; the main thread never waits, it
// only receives the answers on its MessagePort.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { MIGRATIONS, migrationStatus, orderedMigrations } from '../migrations.js';
import { WalFile } from './wal-file.js';
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
import {
  WRITER_SOURCE,
  type WriterData,
  type WriterReply,
  type WriterRequest,
} from './writer-thread.js';
import { NEW_DATABASE_PAGE_SIZE } from './sqlite-store.js';

type Statement = Database.Statement<unknown[], unknown>;

/**
 * Savepoint bookkeeping inside a transaction is pipelined: sent without waiting for an answer
 * (it changes no rows and answers nothing the caller needs). Should one fail, the transaction's
 * next statement or its commit fails with that error, so the transaction can never commit past it.
 */
const SAVEPOINT = /^\s*(?:SAVEPOINT|RELEASE|ROLLBACK\s+TO)\b/i;
const NO_CHANGES: WriterReply = Object.freeze({ id: -1, changes: 0 });
/** A request before it is given its id. */
type Request = WriterRequest extends infer R
  ? R extends { id: number }
    ? Omit<R, 'id'>
    : never
  : never;

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

interface Pending {
  resolve(reply: WriterReply): void;
  reject(err: Error): void;
}

/** An Error carrying the writer's message, name and SQLite code (e.g. SQLITE_CONSTRAINT_UNIQUE). */
function writerError(e: NonNullable<WriterReply['error']>): Error {
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  if (e.code) err.code = e.code;
  return err;
}

/** BLOB columns cross the thread boundary as Uint8Array; hand them out as Buffers again. */
function restoreBlobs(rows: Record<string, unknown>[]): void {
  for (const row of rows) {
    for (const k of Object.keys(row)) {
      const v = row[k];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) {
        row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      }
    }
  }
}

export class SqliteThreadStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly description: string;
  private readonly mutex = new Mutex();
  private readonly statements = new Map<string, Statement>();
  private readonly pending = new Map<number, Pending>();
  private readonly signal = new Int32Array(new SharedArrayBuffer(4));
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private reader: Database.Database | null = null;
  private nextId = 1;
  private closed = false;
  /** Set when the writer thread died: every later call fails with it. */
  private failure: Error | null = null;
  /** Resolves when the writer thread has exited. */
  private readonly exited: Promise<void>;
  /** The WAL, synced by `durable()` after relaxed commits. */
  private readonly wal: WalFile;

  /** Opens the writer thread, then the main thread's read connection. */
  static async open(path: string, opts: OpenStoreOptions = {}): Promise<SqliteThreadStore> {
    const store = new SqliteThreadStore(path, opts);
    try {
      await store.ready(path, opts);
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    return store;
  }

  private constructor(path: string, opts: OpenStoreOptions) {
    if (path === ':memory:') throw new Error('the SQLite writer thread needs a database file');
    const file = resolve(path);
    mkdirSync(dirname(file), { recursive: true });
    this.description = `sqlite:${file}`;
    this.wal = new WalFile(`${file}-wal`);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    const data: WriterData = {
      path: file,
      driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      busyTimeoutMs: Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000)),
      pageSize: NEW_DATABASE_PAGE_SIZE,
      signal: this.signal.buffer as SharedArrayBuffer,
      port: port2,
    };
    this.worker = new Worker(WRITER_SOURCE, {
      eval: true,
      workerData: data,
      transferList: [port2],
    });
    this.worker.on('error', (err) => this.fail(err));
    let exited!: () => void;
    this.exited = new Promise<void>((r) => (exited = r));
    this.worker.on('exit', (code) => {
      exited();
      if (!this.closed || this.pending.size > 0) {
        this.fail(new Error(`SQLite writer thread exited (code ${code})`));
      }
    });
    this.port.on('message', (reply: WriterReply) => this.answered(reply));
    // The open request (id 0) is answered first.
    this.pending.set(0, { resolve: () => undefined, reject: () => undefined });
  }

  private ready(path: string, opts: OpenStoreOptions): Promise<void> {
    return new Promise<void>((res, rej) => {
      this.pending.set(0, {
        resolve: (reply) => {
          if (reply.error) return rej(writerError(reply.error));
          try {
            // The writer created the file and switched it to WAL: readers never block it.
            const reader = new Database(resolve(path), { fileMustExist: true });
            reader.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
            reader.pragma('query_only = ON');
            this.reader = reader;
            this.idle();
            res();
          } catch (err) {
            rej(err as Error);
          }
        },
        reject: rej,
      });
    });
  }

  private answered(reply: WriterReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.error) p.reject(writerError(reply.error));
    else p.resolve(reply);
    this.idle();
  }

  /** While no answer is awaited, the writer thread does not keep the process alive. */
  private idle(): void {
    if (this.pending.size === 0 && !this.closed) {
      this.port.unref();
      this.worker.unref();
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** Sends one request to the writer thread; resolves with its answer. */
  private send(req: Request): Promise<WriterReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const answer = new Promise<WriterReply>((resolve, reject) =>
      this.pending.set(id, { resolve, reject }),
    );
    if (this.pending.size === 1) {
      this.port.ref();
      this.worker.ref();
    }
    this.post({ ...req, id });
    return answer;
  }

  /** Posts a request and wakes the writer thread (which sleeps in Atomics.wait when idle). */
  private post(req: Request | WriterRequest): void {
    this.port.postMessage('id' in req ? req : { ...req, id: -1 });
    Atomics.add(this.signal, 0, 1);
    Atomics.notify(this.signal, 0);
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('store is closed');
    const release = await this.mutex.lock();
    try {
      if (this.closed) throw new Error('store is closed');
      return await fn();
    } finally {
      release();
    }
  }

  /** A statement prepared on the read connection (cached like the writer's, up to 2,000). */
  private prepareRead(sql: string): Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.reader!.prepare(sql);
      if (this.statements.size > 2000) this.statements.clear();
      this.statements.set(sql, st);
    }
    return st;
  }

  /**
   * Outside a transaction: a read-only SELECT on the read connection, anything else on the
   * writer in an implicit transaction of its own (durable when it resolves).
   */
  private autocommit(
    mode: 'query' | 'execute',
    sql: string,
    params: readonly SqlValue[],
  ): Promise<WriterReply> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    let st: Statement | null = null;
    try {
      st = this.prepareRead(sql);
    } catch {
      // Let the writer report it (it may know a table this connection has not seen yet).
    }
    if (st && st.reader && st.readonly) {
      try {
        const rows = st.all(...(params as unknown[])) as Record<string, unknown>[];
        return Promise.resolve(mode === 'query' ? { id: 0, rows } : { id: 0, changes: 0 });
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return this.exclusive(() => this.send({ op: 'autocommit', mode, sql, params }));
  }

  async query<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    const reply = await this.autocommit('query', sql, params);
    const rows = reply.rows ?? [];
    if (reply.blobs) restoreBlobs(rows);
    return rows as T[];
  }

  async execute(sql: string, params: readonly SqlValue[] = []): Promise<ExecuteResult> {
    const reply = await this.autocommit('execute', sql, params);
    return { changes: reply.changes ?? 0 };
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    if (this.closed) throw new Error('store is closed');
    const release = await this.mutex.lock();
    let locked = true;
    const unlock = () => {
      if (locked) release();
      locked = false;
    };
    try {
      if (this.closed) throw new Error('store is closed');
      // A relaxed commit is written to the WAL without an fsync (synchronous=NORMAL for that
      // transaction); the next durable commit's fsync covers it.
      const begin = opts.relaxed === true ? 2 : 1;
      let begun = false;
      let open = true;
      const run = (mode: 'query' | 'execute', sql: string, params: readonly SqlValue[]) => {
        if (!open) return Promise.reject(new Error('transaction is finished'));
        const first = !begun;
        begun = true;
        const req = { op: 'run', mode, sql, params, begin: first ? begin : 0 } as const;
        if (mode === 'execute' && params.length === 0 && SAVEPOINT.test(sql)) {
          this.post({ ...req, quiet: true });
          return Promise.resolve(NO_CHANGES);
        }
        return this.send(req);
      };
      /** Statements queued to run just before the COMMIT. */
      const last: [string, readonly SqlValue[]][] = [];
      const tx: StoreTx = {
        dialect: 'sqlite',
        atCommit: (sql: string, params: readonly SqlValue[] = []) => {
          if (!open) throw new Error('transaction is finished');
          last.push([sql, params]);
        },
        query: async <R extends Row = Row>(sql: string, params: readonly SqlValue[] = []) => {
          const reply = await run('query', sql, params);
          const rows = reply.rows ?? [];
          if (reply.blobs) restoreBlobs(rows);
          return rows as R[];
        },
        execute: async (sql: string, params: readonly SqlValue[] = []) => {
          const reply = await run('execute', sql, params);
          return { changes: reply.changes ?? 0 };
        },
      };
      let result: T;
      try {
        result = await fn(tx);
        for (const [sql, params] of last) await run('execute', sql, params);
      } catch (err) {
        open = false;
        if (begun) await this.send({ op: 'rollback' }).catch(() => undefined);
        throw err;
      }
      open = false;
      if (!begun) return result;
      // The writer handles requests in order, so the next transaction may queue its statements
      // behind this COMMIT at once: the connection goes from this commit's fsync straight to the
      // next transaction without waiting for the main thread. A COMMIT that fails is rolled back
      // by the writer before it reads the next request. This transaction still resolves only
      // once its COMMIT has answered (after the fsync).
      const committed = this.send({ op: 'commit' });
      unlock();
      await committed;
      // The writer answers in order: a durable COMMIT's fsync covers every commit before it.
      this.wal.committed(opts.relaxed !== true);
      return result;
    } finally {
      unlock();
    }
  }

  async migrate(extra: readonly Migration[] = []): Promise<number[]> {
    const migrations = orderedMigrations([...MIGRATIONS.sqlite, ...extra]).map((m) => ({
      version: m.version,
      name: m.name,
      statements: splitStatements(m.sql),
    }));
    const reply = await this.exclusive(() => this.send({ op: 'migrate', migrations }));
    return reply.versions ?? [];
  }

  async migrations(): Promise<MigrationStatus[]> {
    if (this.closed) throw new Error('store is closed');
    const exists = this.reader!.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    ).get();
    const rows = exists
      ? (this.reader!.prepare('SELECT version, name, applied_at FROM schema_migrations').all() as {
          version: number;
          name: string;
          applied_at: number;
        }[])
      : [];
    return migrationStatus(MIGRATIONS.sqlite, rows);
  }

  async ping(): Promise<void> {
    await this.exclusive(() => this.send({ op: 'ping' }));
  }

  /** Every commit answered so far on disk: after a relaxed one, an fdatasync of the WAL. */
  async durable(): Promise<void> {
    if (this.closed) throw new Error('store is closed');
    await this.wal.durable();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const release = await this.mutex.lock();
    try {
      if (this.closed) return;
      this.closed = true;
      this.statements.clear();
      this.reader?.close();
      this.reader = null;
      // Keep the process alive until the thread has closed its connection and exited.
      this.worker.ref();
      if (!this.failure) await this.send({ op: 'close' }).catch(() => undefined);
      if (this.failure) await this.worker.terminate();
      await this.exited;
      this.port.close();
      await this.wal.close();
    } finally {
      release();
    }
  }
}
