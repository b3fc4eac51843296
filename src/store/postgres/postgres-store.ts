// PostgreSQL implementation of the Store port (pg Pool). `?` placeholders become `$n`; BIGINT
// columns come back as numbers (epoch milliseconds and sequences stay below 2^53). An optional
// schema is created at open and selected through search_path on every pooled connection.
import pg from 'pg';
import { MIGRATIONS, migrationStatus, orderedMigrations } from '../migrations.js';
import {
  splitStatements,
  type ExecuteResult,
  type Migration,
  type MigrationStatus,
  type OpenStoreOptions,
  type Row,
  type SqlRunner,
  type SqlValue,
  type Store,
  type StoreTx,
  type TransactionOptions,
} from '../port.js';

const INT8_OID = 20;

const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format);
  },
} as unknown as pg.CustomTypesConfig;

/**
 * `sql` with each `?` placeholder (outside quotes) replaced by `placeholder(n)`, n counting from
 * 0; returns the text and how many there were.
 */
function replacePlaceholders(
  sql: string,
  placeholder: (n: number) => string,
): { text: string; count: number } {
  let text = '';
  let count = 0;
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (quote) {
      if (c === quote) quote = null;
      text += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      text += c;
    } else if (c === '?') {
      text += placeholder(count++);
    } else {
      text += c;
    }
  }
  return { text, count };
}

/** Rewrites `?` placeholders (outside quotes) to `$1..$n`. */
export function toPositional(sql: string): string {
  return replacePlaceholders(sql, (n) => `$${n + 1}`).text;
}

/** A value as a PostgreSQL literal, untyped as a parameter is (its type comes from where it stands). */
function literal(v: SqlValue): string {
  if (v === null) return 'NULL';
  // pg.escapeLiteral writes E'…' (with a space before) when the text holds a backslash.
  if (typeof v === 'string') return pg.escapeLiteral(v).trimStart();
  if (typeof v === 'bigint') return `'${v.toString()}'`;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot inline ${String(v)} as a literal`);
    return `'${String(v)}'`;
  }
  return pg.escapeLiteral(`\\x${v.toString('hex')}`).trimStart();
}

/**
 * `sql` with each `?` placeholder (outside quotes) replaced by its parameter as a literal, for a
 * statement sent in a simple query (which carries no parameters).
 */
export function inlineParams(sql: string, params: readonly SqlValue[]): string {
  const { text, count } = replacePlaceholders(sql, (n) => {
    if (n >= params.length) throw new Error(`more placeholders than parameters in: ${sql}`);
    return literal(params[n]!);
  });
  if (count !== params.length) throw new Error(`fewer placeholders than parameters in: ${sql}`);
  return text;
}

const positionalCache = new Map<string, string>();
function positional(sql: string): string {
  let p = positionalCache.get(sql);
  if (p === undefined) {
    p = toPositional(sql);
    if (positionalCache.size > 1000) positionalCache.clear();
    positionalCache.set(sql, p);
  }
  return p;
}

/**
 * The URL without its `options` parameter: pg lets the connection string's values override the
 * explicit configuration, so the store passes the URL's options itself, joined with its own.
 */
function withoutOptions(u: URL): string {
  if (!u.searchParams.has('options')) return u.href;
  const copy = new URL(u.href);
  copy.searchParams.delete('options');
  return copy.href;
}

function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid schema name: ${name}`);
  return `"${name}"`;
}

interface Queryable {
  query(config: pg.QueryConfig): Promise<pg.QueryResult>;
}

/**
 * Statements with parameters are named, so each pooled connection parses one once (pg prepares a
 * named statement on a connection the first time it runs there) and then binds and executes it;
 * every connection plans them for their parameters on each execution (`plan_cache_mode =
 * force_custom_plan`), as unnamed statements are. The engine's accept without HTTP went from
 * 8,700–12,000 to 11,200–13,000 a second (ADR 0007, tenth pass). The first MAX_NAMED_STATEMENTS
 * texts are named, which the engine's and the domains' fixed SQL stays well under; texts after
 * that run unnamed. A statement without parameters keeps the simple protocol (it may hold
 * several statements).
 */
const MAX_NAMED_STATEMENTS = 500;
const statementNames = new Map<string, string>();

function queryConfig(sql: string, params: readonly SqlValue[]): pg.QueryConfig {
  const text = positional(sql);
  const values = params as unknown[];
  if (values.length === 0) return { text, values };
  let name = statementNames.get(text);
  if (name === undefined && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `mm_${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return name === undefined ? { text, values } : { name, text, values };
}

function runner(client: Queryable): SqlRunner {
  return {
    dialect: 'postgres',
    async query<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []) {
      const r = await client.query(queryConfig(sql, params));
      return r.rows as T[];
    },
    async execute(sql: string, params: readonly SqlValue[] = []): Promise<ExecuteResult> {
      const r = await client.query(queryConfig(sql, params));
      return { changes: r.rowCount ?? 0 };
    },
  };
}

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly description: string;
  private readonly pool: pg.Pool;
  private readonly direct: SqlRunner;
  readonly schema: string | undefined;

  constructor(url: string, opts: OpenStoreOptions = {}) {
    const u = new URL(url);
    this.description = `postgres://${u.host}${u.pathname}${opts.schema ? ` (schema ${opts.schema})` : ''}`;
    this.schema = opts.schema;
    this.pool = new pg.Pool({
      connectionString: withoutOptions(u),
      max: opts.poolSize ?? 10,
      types: typeParsers,
      options: [
        u.searchParams.get('options'),
        opts.schema ? `-c search_path=${quoteIdent(opts.schema)}` : null,
        // Named statements are planned for their parameters on every execution, as unnamed ones
        // are: with PostgreSQL's generic plans the engine's accept fell to 0.09 of the
        // benchmark's ceiling from 0.23 (ADR 0007, tenth pass).
        '-c plan_cache_mode=force_custom_plan',
      ]
        .filter((o) => o)
        .join(' '),
    });
    // An idle client's error (e.g. the server restarting) must not crash the process.
    this.pool.on('error', () => undefined);
    this.direct = runner(this.pool);
  }

  /** Creates the configured schema when missing. Called by openStore before migrating. */
  async ensureSchema(): Promise<void> {
    if (!this.schema) return;
    const client = new pg.Client({ connectionString: this.pool.options.connectionString });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.schema)}`);
    } catch (err) {
      // Two openers racing on CREATE SCHEMA IF NOT EXISTS may collide on the catalog.
      if ((err as { code?: string }).code !== '23505') throw err;
    } finally {
      await client.end();
    }
  }

  query<T extends Row = Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.direct.query<T>(sql, params);
  }

  execute(sql: string, params: readonly SqlValue[] = []): Promise<ExecuteResult> {
    return this.direct.execute(sql, params);
  }

  async transaction<T>(fn: (tx: StoreTx) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      // A relaxed commit does not wait for the WAL flush; the next synchronous commit covers it.
      await client.query(opts.relaxed ? 'BEGIN; SET LOCAL synchronous_commit = off' : 'BEGIN');
      /** Statements queued to run with the COMMIT, their parameters inlined. */
      const last: string[] = [];
      let open = true;
      const tx: StoreTx = {
        ...runner(client),
        atCommit(sql: string, params: readonly SqlValue[] = []) {
          if (!open) throw new Error('transaction is finished');
          last.push(inlineParams(sql, params));
        },
      };
      const result = await fn(tx);
      open = false;
      // One round trip: the queued statements, each with its own snapshot, then the COMMIT (a
      // failing statement skips the rest, COMMIT included, and the transaction rolls back).
      await client.query(last.length > 0 ? `${last.join(';\n')};\nCOMMIT` : 'COMMIT');
      return result;
    } catch (err) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Every commit so far on disk: a statement that takes a transaction id commits synchronously,
   * and its flush of the WAL covers every commit record before it, relaxed ones included.
   */
  async durable(): Promise<void> {
    await this.direct.query('SELECT txid_current() AS xid');
  }

  async migrate(extra: readonly Migration[] = []): Promise<number[]> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // One migrator at a time across processes.
      await client.query('SELECT pg_advisory_xact_lock(7366504)');
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
      );
      const applied = new Set(
        (await client.query('SELECT version FROM schema_migrations')).rows.map(
          (r: { version: number }) => r.version,
        ),
      );
      const done: number[] = [];
      for (const m of orderedMigrations([...MIGRATIONS.postgres, ...extra])) {
        if (applied.has(m.version)) continue;
        try {
          for (const stmt of splitStatements(m.sql)) await client.query(stmt);
        } catch (err) {
          throw new Error(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, {
            cause: err,
          });
        }
        await client.query(
          'INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)',
          [m.version, m.name, Date.now()],
        );
        done.push(m.version);
      }
      await client.query('COMMIT');
      return done;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async migrations(): Promise<MigrationStatus[]> {
    const exists = await this.pool.query("SELECT to_regclass('schema_migrations') AS t");
    const rows: { version: number; name: string; applied_at: number }[] = exists.rows[0]?.t
      ? (await this.pool.query('SELECT version, name, applied_at FROM schema_migrations')).rows
      : [];
    return migrationStatus(MIGRATIONS.postgres, rows);
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
