// API keys: `mm_<prefix>_<secret>`. The prefix (12 hex characters) is stored and shown, so a key
// can be listed and revoked by it; the secret (32 random bytes, base64url) is shown once at
// creation and stored only as its SHA-256 digest, compared in constant time (ADR 0008).
//
// The experience layer does not import the store: key storage goes through `KeySql`, which the
// Store (and a transaction) already satisfies, and its table is created by `API_KEY_MIGRATIONS`,
// which the composition root hands to `store.migrate`.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isRole, type Principal, type Role } from './roles.js';

/** What key storage needs of a database: the Store port's `query` and `execute` (`?` params). */
export interface KeySql {
  query<T extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params?: readonly (string | number | null)[],
  ): Promise<T[]>;
  execute(sql: string, params?: readonly (string | number | null)[]): Promise<{ changes: number }>;
}

/**
 * Key storage with transactions: the Store port itself. Writes (keys, audit entries) go through
 * `transaction`, which resolves only once the change is durable.
 */
export interface KeyStore extends KeySql {
  transaction<T>(fn: (tx: KeySql) => Promise<T>): Promise<T>;
}

/** A numbered migration, shaped like the Store port's `Migration`. */
export interface KeyMigration {
  version: number;
  name: string;
  sql: string;
}

/**
 * The tables of the experience layer. Versions 1000–1099 belong to `src/api` (the engine's own
 * migrations count up from 1), so the two lists never collide. Portable SQL: the same text runs on
 * SQLite and PostgreSQL.
 */
export const API_KEY_MIGRATIONS: readonly KeyMigration[] = [
  {
    version: 1000,
    name: 'api: keys',
    sql: `
CREATE TABLE api_keys (
  prefix TEXT PRIMARY KEY,
  secret_sha256 TEXT NOT NULL,
  name TEXT NOT NULL,
  roles TEXT NOT NULL,
  tier TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
)`,
  },
  {
    version: 1001,
    name: 'api: audit log (hash-chained)',
    sql: `
CREATE TABLE api_audit_log (
  seq BIGINT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT,
  detail TEXT NOT NULL,
  remote TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TABLE api_audit_head (
  id INTEGER PRIMARY KEY,
  seq BIGINT NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO api_audit_head (id, seq, hash) VALUES (1, 0, '${'0'.repeat(64)}')`,
  },
];

export const KEY_PATTERN = /^mm_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
export const PREFIX_PATTERN = /^[0-9a-f]{12}$/;
export const DEFAULT_TIER = 'standard';

export interface ApiKeyRecord {
  prefix: string;
  name: string;
  roles: Role[];
  tier: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface CreatedApiKey {
  /** The whole key, `mm_<prefix>_<secret>`: shown once, never stored. */
  key: string;
  record: ApiKeyRecord;
}

export interface NewApiKey {
  name: string;
  roles: readonly Role[];
  tier?: string;
  /** A key from `generateApiKey()` to store (when it must be known before the store is open). */
  key?: string;
}

/** A fresh key, not yet stored: `mm_<12 hex>_<32 random bytes, base64url>`. */
export function generateApiKey(): string {
  return `mm_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;
}

interface KeyRow {
  [k: string]: unknown;
  prefix: string;
  secret_sha256: string;
  name: string;
  roles: string;
  tier: string;
  created_at: number | string;
  revoked_at: number | string | null;
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function toRecord(r: KeyRow): ApiKeyRecord {
  return {
    prefix: r.prefix,
    name: r.name,
    roles: r.roles.split(',').filter(isRole),
    tier: r.tier,
    createdAt: new Date(Number(r.created_at)).toISOString(),
    revokedAt: r.revoked_at === null ? null : new Date(Number(r.revoked_at)).toISOString(),
  };
}

/** Splits a presented key into prefix and secret; undefined when it is not a key's shape. */
export function parseApiKey(key: string): { prefix: string; secret: string } | undefined {
  const m = KEY_PATTERN.exec(key);
  return m?.[1] && m[2] ? { prefix: m[1], secret: m[2] } : undefined;
}

/** Creates a key; the returned `key` is the only time its secret is visible. */
export async function createApiKey(
  db: KeyStore,
  init: NewApiKey,
  now: number = Date.now(),
): Promise<CreatedApiKey> {
  const name = init.name.trim();
  if (name === '' || name.length > 200) throw new RangeError('a key name is 1-200 characters');
  if (init.roles.length === 0) throw new RangeError('a key needs at least one role');
  for (const role of init.roles) {
    if (!isRole(role)) throw new RangeError(`unknown role: ${String(role)}`);
  }
  const roles = [...new Set(init.roles)];
  const tier = init.tier ?? DEFAULT_TIER;
  const parts = parseApiKey(init.key ?? generateApiKey());
  if (!parts) throw new RangeError('not an API key: expected mm_<prefix>_<secret>');
  const { prefix, secret } = parts;
  await db.transaction((tx) =>
    tx.execute(
      'INSERT INTO api_keys (prefix, secret_sha256, name, roles, tier, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)',
      [prefix, digest(secret).toString('hex'), name, roles.join(','), tier, now],
    ),
  );
  return {
    key: `mm_${prefix}_${secret}`,
    record: {
      prefix,
      name,
      roles,
      tier,
      createdAt: new Date(now).toISOString(),
      revokedAt: null,
    },
  };
}

/** Every key (never a secret), newest first; revoked ones only when asked. */
export async function listApiKeys(
  db: KeySql,
  opts: { includeRevoked?: boolean } = {},
): Promise<ApiKeyRecord[]> {
  const rows = await db.query<KeyRow>(
    `SELECT * FROM api_keys${opts.includeRevoked ? '' : ' WHERE revoked_at IS NULL'} ORDER BY created_at DESC, prefix`,
  );
  return rows.map(toRecord);
}

/** Revokes a key by its prefix: true when an active key was revoked. */
export async function revokeApiKey(
  db: KeyStore,
  prefix: string,
  now: number = Date.now(),
): Promise<boolean> {
  const r = await db.transaction((tx) =>
    tx.execute('UPDATE api_keys SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL', [
      now,
      prefix,
    ]),
  );
  return r.changes === 1;
}

/** The principal a presented key stands for; undefined when unknown, revoked or wrong. */
export async function verifyApiKey(db: KeySql, presented: string): Promise<Principal | undefined> {
  const parsed = parseApiKey(presented);
  if (!parsed) return undefined;
  const rows = await db.query<KeyRow>(
    'SELECT * FROM api_keys WHERE prefix = ? AND revoked_at IS NULL',
    [parsed.prefix],
  );
  const row = rows[0];
  if (!row) return undefined;
  const expected = Buffer.from(row.secret_sha256, 'hex');
  const actual = digest(parsed.secret);
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
  const record = toRecord(row);
  return { keyPrefix: record.prefix, name: record.name, roles: record.roles, tier: record.tier };
}

/** A verifier over key storage, for `ApiDeps.authenticate`. */
export function apiKeyAuthenticator(
  db: KeySql,
): (token: string | undefined) => Promise<Principal | undefined> {
  return async (token) => (token === undefined ? undefined : verifyApiKey(db, token));
}
