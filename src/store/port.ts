// The Store port: the one seam between the durable engine (and the domains it hosts) and a
// database. SQL is written once with `?` placeholders; each implementation adapts it to its
// driver. Integers that hold times are epoch milliseconds; JSON is stored as TEXT.

export type Dialect = 'sqlite' | 'postgres';

export type SqlValue = string | number | bigint | null | Buffer;

export type Row = Record<string, unknown>;

/** What a statement changed. */
export interface ExecuteResult {
  changes: number;
}

/** Statements run through this object belong to one transaction (or to none, on the Store). */
export interface SqlRunner {
  readonly dialect: Dialect;
  /** Rows of a SELECT (or of a statement with RETURNING). Placeholders are `?`. */
  query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement that returns no rows; reports how many rows it changed. */
  execute(sql: string, params?: readonly SqlValue[]): Promise<ExecuteResult>;
}

/** Statements run through this object belong to one transaction. */
export interface StoreTx extends SqlRunner {
  /**
   * Queues a statement to run at the end of the transaction, after everything else in it and just
   * before its COMMIT, in the order queued. Where the store can, it travels with the COMMIT in one
   * round trip (PostgreSQL: one simple query, its parameters inlined as literals; each statement
   * there still takes its own snapshot once the ones before it have run). Its result is not
   * returned; should it fail, nothing commits and `transaction()` rejects with its error. For
   * the bookkeeping a transaction ends with, whose outcome nothing in it waits for.
   */
  atCommit(sql: string, params?: readonly SqlValue[]): void;
}

export interface Migration {
  version: number;
  name: string;
  /** One or more statements separated by `;` at line ends. */
  sql: string;
}

export interface MigrationStatus {
  version: number;
  name: string;
  appliedAt: number | null;
}

export interface TransactionOptions {
  /**
   * The commit need not reach the disk before it returns: it survives a crash of the process
   * (and of PostgreSQL's server process) but may be lost with the machine (power loss, kernel
   * crash); the next durable commit, or `durable()`, flushes it. For what the queue can redo:
   * lease bookkeeping (claims and lease renewals), whose loss hands the work back; delivery
   * outcomes, whose loss repeats an attempt under the delivery's stored idempotency key; and on
   * SQLite a batch of handlers' effects, provided nothing it wrote leaves the process before
   * `durable()` has resolved (the engine awaits it before sending a delivery; ADR 0004). Never
   * for accepts or an operator's action: those are answered to someone.
   */
  relaxed?: boolean;
}

export interface Store extends SqlRunner {
  /** A human description without credentials, e.g. `sqlite:/data/mm.db`. */
  readonly description: string;
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * On SQLite transactions are serialised; on PostgreSQL each holds a pooled connection.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /** Applies pending migrations (the store's own, then `extra`); returns versions applied. */
  migrate(extra?: readonly Migration[]): Promise<number[]>;
  /** Every known migration with the time it was applied (null when pending). */
  migrations(): Promise<MigrationStatus[]>;
  /**
   * Resolves once every commit made so far, relaxed ones included, is on disk (a durable
   * commit's flush covers every commit before it). Cheap when nothing relaxed is pending.
   */
  durable(): Promise<void>;
  /** Resolves when the database answers; for readiness probes. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** Apply pending migrations at open (default true). */
  migrate?: boolean;
  /** PostgreSQL: schema to use (created when missing) through search_path. */
  schema?: string;
  /** PostgreSQL: pool size (default 10). */
  poolSize?: number;
  /** SQLite: milliseconds to wait for a lock held by another process (default 5000). */
  busyTimeoutMs?: number;
  /**
   * SQLite: how a commit is made durable before `transaction()` resolves. `full` (the
   * default): SQLite's own `synchronous=FULL`, an fsync inside COMMIT on the event loop.
   * `background` (a file in WAL mode only): the commit is written to the WAL, then the WAL is
   * fdatasync'ed on a libuv thread, one fdatasync covering every commit written before it
   * started; the event loop and the connection stay free meanwhile. Both resolve only after the
   * commit is on disk. A URL selects it with `sqlite:<path>?sync=background`.
   */
  sqliteSync?: 'background' | 'full';
  /**
   * SQLite: where the read-write connection lives. `main` (the default): on the event loop.
   * `thread` (a database file only; `sqlite:<path>?writer=thread` in a URL): on a worker
   * thread, so statements, COMMIT and its fsync (synchronous=FULL) run off the event loop;
   * reads outside transactions stay on a main-thread connection. Commits are as durable as in
   * the default mode; `sqliteSync` does not apply. `sqlite::memory:` keeps the default.
   */
  sqliteWriter?: 'main' | 'thread';
}

/** Splits a migration's SQL into statements (separated by `;` at the end of a line). */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\r?\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
