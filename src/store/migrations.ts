// The engine's tables, one numbered list per dialect. A migration is never edited once released:
// add a new one. Times are epoch milliseconds (BIGINT); payloads are JSON text.
import type { Dialect, Migration, MigrationStatus } from './port.js';

const sqlite: Migration[] = [
  {
    version: 1,
    name: 'engine core: inbox, queue, deliveries, dead letters, state',
    sql: `
CREATE TABLE idempotency_keys (
  source TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  message_id TEXT NOT NULL,
  accepted_at INTEGER NOT NULL,
  traceparent TEXT,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (source, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  type TEXT NOT NULL,
  partition_key TEXT NOT NULL,
  priority INTEGER NOT NULL,
  payload TEXT NOT NULL,
  traceparent TEXT,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at INTEGER NOT NULL,
  lease_until INTEGER,
  lease_token TEXT,
  accepted_at INTEGER NOT NULL,
  completed_at INTEGER,
  last_error TEXT,
  replay_count INTEGER NOT NULL DEFAULT 0,
  is_head INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_claim ON messages (priority, seq) WHERE status = 'queued' AND is_head = 1;
CREATE INDEX messages_key_head ON messages (partition_key, seq) WHERE status = 'queued';
CREATE INDEX messages_done ON messages (completed_at) WHERE status = 'done';
CREATE TABLE deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  message_id TEXT,
  destination TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  priority INTEGER NOT NULL,
  payload TEXT NOT NULL,
  headers TEXT,
  traceparent TEXT,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at INTEGER NOT NULL,
  lease_until INTEGER,
  lease_token TEXT,
  created_at INTEGER NOT NULL,
  origin_at INTEGER,
  completed_at INTEGER,
  last_error TEXT,
  last_status INTEGER,
  replay_count INTEGER NOT NULL DEFAULT 0,
  UNIQUE (destination, idempotency_key)
);
CREATE INDEX deliveries_claim ON deliveries (priority, seq) WHERE status = 'queued';
CREATE INDEX deliveries_destination ON deliveries (destination, priority) WHERE status = 'queued';
CREATE INDEX deliveries_done ON deliveries (completed_at) WHERE status = 'delivered';
CREATE TABLE attempts (
  subject_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  status INTEGER,
  error TEXT,
  latency_ms INTEGER
);
CREATE INDEX attempts_subject ON attempts (subject_id, at);
CREATE INDEX attempts_time ON attempts (at);
CREATE TABLE dead_letters (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  type TEXT,
  destination TEXT,
  partition_key TEXT,
  idempotency_key TEXT NOT NULL,
  reason TEXT NOT NULL,
  last_error TEXT,
  attempts INTEGER NOT NULL,
  history TEXT NOT NULL,
  traceparent TEXT,
  payload TEXT NOT NULL,
  dead_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  replay_count INTEGER NOT NULL DEFAULT 0,
  replayed_at INTEGER
);
CREATE INDEX dead_letters_time ON dead_letters (dead_at, id);
CREATE TABLE state (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (namespace, key)
)`,
  },
  {
    version: 2,
    name: 'retention of dead letters: indexes on dead messages and deliveries',
    sql: `
CREATE INDEX messages_dead ON messages (completed_at) WHERE status = 'dead';
CREATE INDEX deliveries_dead ON deliveries (completed_at) WHERE status = 'dead'`,
  },
  {
    version: 3,
    name: 'idempotency keys held by their messages; idempotency_keys keeps those outliving theirs',
    sql: `
ALTER TABLE messages ADD COLUMN request_hash TEXT;
ALTER TABLE messages ADD COLUMN key_expires_at INTEGER;
CREATE UNIQUE INDEX messages_idempotency ON messages (source, idempotency_key)
  WHERE key_expires_at IS NOT NULL`,
  },
  {
    // SQLite only (ADR 0007): each queued message names the one queued before it in its key
    // (prev_seq, indexed), and partition_tails the last one of each key, so accepting and
    // promoting write near the end of indexes in sequence order instead of one random leaf of a
    // (partition_key, seq) index per message. Triggers keep the tails with every insert and
    // delete of a message.
    version: 4,
    name: 'per-key chain: prev_seq and partition_tails instead of the (partition_key, seq) index',
    sql: `
ALTER TABLE messages ADD COLUMN prev_seq INTEGER;
UPDATE messages SET prev_seq = (
  SELECT MAX(p.seq) FROM messages p
  WHERE p.partition_key = messages.partition_key AND p.status = 'queued' AND p.seq < messages.seq)
WHERE status = 'queued' AND is_head = 0;
UPDATE messages SET is_head = 1 WHERE status = 'queued' AND is_head = 0 AND prev_seq IS NULL;
CREATE TABLE partition_tails (
  partition_key TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO partition_tails (partition_key, last_seq)
  SELECT partition_key, MAX(seq) FROM messages WHERE status = 'queued' GROUP BY partition_key;
CREATE INDEX messages_next ON messages (prev_seq) WHERE status = 'queued' AND prev_seq IS NOT NULL;
DROP INDEX messages_key_head;
CREATE TRIGGER messages_tail AFTER INSERT ON messages BEGIN INSERT INTO partition_tails (partition_key, last_seq) VALUES (NEW.partition_key, NEW.seq) ON CONFLICT (partition_key) DO UPDATE SET last_seq = excluded.last_seq; END;
CREATE TRIGGER messages_tail_gone AFTER DELETE ON messages BEGIN DELETE FROM partition_tails WHERE partition_key = OLD.partition_key AND last_seq = OLD.seq; END`,
  },
  {
    // SQLite only (ADR 0007, ninth pass): the queue's depths kept as counts by triggers on every
    // insert, status or class change and delete of a message, delivery or dead letter, so reading
    // them (the back-pressure refresh every second, the metrics) costs a few rows instead of a
    // scan of every row kept, which blocked the one event loop for 0.2 s at 200,000 queued.
    version: 5,
    name: 'queue depths counted by triggers (queue_counts)',
    sql: `
CREATE TABLE queue_counts (
  queue TEXT NOT NULL,
  destination TEXT NOT NULL,
  priority INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (queue, destination, priority)
) WITHOUT ROWID;
INSERT INTO queue_counts (queue, destination, priority, n)
  SELECT 'messages', '', priority, COUNT(*) FROM messages WHERE status = 'queued' GROUP BY priority;
INSERT INTO queue_counts (queue, destination, priority, n)
  SELECT 'deliveries', destination, priority, COUNT(*) FROM deliveries WHERE status = 'queued'
  GROUP BY destination, priority;
CREATE TRIGGER messages_count_in AFTER INSERT ON messages WHEN NEW.status = 'queued' BEGIN INSERT INTO queue_counts (queue, destination, priority, n) VALUES ('messages', '', NEW.priority, 1) ON CONFLICT (queue, destination, priority) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER messages_count_change AFTER UPDATE OF status, priority ON messages WHEN (OLD.status = 'queued') <> (NEW.status = 'queued') OR (OLD.status = 'queued' AND OLD.priority <> NEW.priority) BEGIN UPDATE queue_counts SET n = n - 1 WHERE OLD.status = 'queued' AND queue = 'messages' AND destination = '' AND priority = OLD.priority; INSERT INTO queue_counts (queue, destination, priority, n) SELECT 'messages', '', NEW.priority, 1 WHERE NEW.status = 'queued' ON CONFLICT (queue, destination, priority) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER messages_count_out AFTER DELETE ON messages WHEN OLD.status = 'queued' BEGIN UPDATE queue_counts SET n = n - 1 WHERE queue = 'messages' AND destination = '' AND priority = OLD.priority; END;
CREATE TRIGGER deliveries_count_in AFTER INSERT ON deliveries WHEN NEW.status = 'queued' BEGIN INSERT INTO queue_counts (queue, destination, priority, n) VALUES ('deliveries', NEW.destination, NEW.priority, 1) ON CONFLICT (queue, destination, priority) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER deliveries_count_change AFTER UPDATE OF status, priority, destination ON deliveries WHEN (OLD.status = 'queued') <> (NEW.status = 'queued') OR (OLD.status = 'queued' AND (OLD.priority <> NEW.priority OR OLD.destination <> NEW.destination)) BEGIN UPDATE queue_counts SET n = n - 1 WHERE OLD.status = 'queued' AND queue = 'deliveries' AND destination = OLD.destination AND priority = OLD.priority; INSERT INTO queue_counts (queue, destination, priority, n) SELECT 'deliveries', NEW.destination, NEW.priority, 1 WHERE NEW.status = 'queued' ON CONFLICT (queue, destination, priority) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER deliveries_count_out AFTER DELETE ON deliveries WHEN OLD.status = 'queued' BEGIN UPDATE queue_counts SET n = n - 1 WHERE queue = 'deliveries' AND destination = OLD.destination AND priority = OLD.priority; END;
INSERT INTO queue_counts (queue, destination, priority, n)
  SELECT 'dead_letters', '', 0, COUNT(*) FROM dead_letters WHERE status = 'dead';
CREATE TRIGGER dead_letters_count_in AFTER INSERT ON dead_letters WHEN NEW.status = 'dead' BEGIN INSERT INTO queue_counts (queue, destination, priority, n) VALUES ('dead_letters', '', 0, 1) ON CONFLICT (queue, destination, priority) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER dead_letters_count_change AFTER UPDATE OF status ON dead_letters WHEN (OLD.status = 'dead') <> (NEW.status = 'dead') BEGIN INSERT INTO queue_counts (queue, destination, priority, n) VALUES ('dead_letters', '', 0, CASE WHEN NEW.status = 'dead' THEN 1 ELSE -1 END) ON CONFLICT (queue, destination, priority) DO UPDATE SET n = n + excluded.n; END;
CREATE TRIGGER dead_letters_count_out AFTER DELETE ON dead_letters WHEN OLD.status = 'dead' BEGIN UPDATE queue_counts SET n = n - 1 WHERE queue = 'dead_letters' AND destination = '' AND priority = 0; END`,
  },
];

const postgres: Migration[] = [
  {
    version: 1,
    name: 'engine core: inbox, queue, deliveries, dead letters, state',
    sql: `
CREATE TABLE idempotency_keys (
  source TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  message_id TEXT NOT NULL,
  accepted_at BIGINT NOT NULL,
  traceparent TEXT,
  expires_at BIGINT NOT NULL,
  PRIMARY KEY (source, idempotency_key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
CREATE TABLE messages (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  type TEXT NOT NULL,
  partition_key TEXT NOT NULL,
  priority SMALLINT NOT NULL,
  payload TEXT NOT NULL,
  traceparent TEXT,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at BIGINT NOT NULL,
  lease_until BIGINT,
  lease_token TEXT,
  accepted_at BIGINT NOT NULL,
  completed_at BIGINT,
  last_error TEXT,
  replay_count INTEGER NOT NULL DEFAULT 0,
  is_head INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_claim ON messages (priority, seq) WHERE status = 'queued' AND is_head = 1;
CREATE INDEX messages_key_head ON messages (partition_key, seq) WHERE status = 'queued';
CREATE INDEX messages_done ON messages (completed_at) WHERE status = 'done';
CREATE TABLE deliveries (
  seq BIGSERIAL PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  message_id TEXT,
  destination TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  priority SMALLINT NOT NULL,
  payload TEXT NOT NULL,
  headers TEXT,
  traceparent TEXT,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  available_at BIGINT NOT NULL,
  lease_until BIGINT,
  lease_token TEXT,
  created_at BIGINT NOT NULL,
  origin_at BIGINT,
  completed_at BIGINT,
  last_error TEXT,
  last_status INTEGER,
  replay_count INTEGER NOT NULL DEFAULT 0,
  UNIQUE (destination, idempotency_key)
);
CREATE INDEX deliveries_claim ON deliveries (priority, seq) WHERE status = 'queued';
CREATE INDEX deliveries_destination ON deliveries (destination, priority) WHERE status = 'queued';
CREATE INDEX deliveries_done ON deliveries (completed_at) WHERE status = 'delivered';
CREATE TABLE attempts (
  subject_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  at BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  status INTEGER,
  error TEXT,
  latency_ms INTEGER
);
CREATE INDEX attempts_subject ON attempts (subject_id, at);
CREATE INDEX attempts_time ON attempts (at);
CREATE TABLE dead_letters (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  type TEXT,
  destination TEXT,
  partition_key TEXT,
  idempotency_key TEXT NOT NULL,
  reason TEXT NOT NULL,
  last_error TEXT,
  attempts INTEGER NOT NULL,
  history TEXT NOT NULL,
  traceparent TEXT,
  payload TEXT NOT NULL,
  dead_at BIGINT NOT NULL,
  status TEXT NOT NULL,
  replay_count INTEGER NOT NULL DEFAULT 0,
  replayed_at BIGINT
);
CREATE INDEX dead_letters_time ON dead_letters (dead_at, id);
CREATE TABLE state (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (namespace, key)
)`,
  },
  {
    version: 2,
    name: 'retention of dead letters: indexes on dead messages and deliveries',
    sql: `
CREATE INDEX messages_dead ON messages (completed_at) WHERE status = 'dead';
CREATE INDEX deliveries_dead ON deliveries (completed_at) WHERE status = 'dead'`,
  },
  {
    version: 3,
    name: 'idempotency keys held by their messages; idempotency_keys keeps those outliving theirs',
    sql: `
ALTER TABLE messages ADD COLUMN request_hash TEXT;
ALTER TABLE messages ADD COLUMN key_expires_at BIGINT;
CREATE UNIQUE INDEX messages_idempotency ON messages (source, idempotency_key)
  WHERE key_expires_at IS NOT NULL`,
  },
  {
    // PostgreSQL only (ADR 0007, thirteenth pass; numbered after SQLite's 4 and 5 so that a
    // version means one thing): claims pick their candidates in functions planned without
    // bitmap scans, so they walk an index in claim order and stop at the limit whatever the
    // statistics say. Planned from a table never analysed (or analysed while the queue was
    // empty), a claim read every queued head (10,000 of them: 16 ms) or every queued delivery of
    // its destinations (100,000: 160 ms) and sorted them. Deliveries are picked per destination,
    // each from its own range of deliveries_queue (destination, priority, seq), so a large
    // backlog for one destination never slows the claims of another.
    version: 6,
    name: 'claims by index order: claimable_messages, claimable_deliveries',
    sql: `
CREATE INDEX deliveries_queue ON deliveries (destination, priority, seq) WHERE status = 'queued';
DROP INDEX deliveries_destination;
CREATE FUNCTION claimable_messages(p_now BIGINT, p_limit INTEGER) RETURNS SETOF BIGINT
LANGUAGE sql VOLATILE ROWS 64 SET enable_bitmapscan = off
AS $$
  SELECT m.seq FROM messages m
  WHERE m.status = 'queued' AND m.is_head = 1 AND m.available_at <= p_now
    AND (m.lease_until IS NULL OR m.lease_until < p_now)
  ORDER BY m.priority, m.seq
  LIMIT p_limit
  FOR UPDATE SKIP LOCKED
$$;
CREATE FUNCTION claimable_deliveries(p_now BIGINT, p_destinations JSONB, p_limit INTEGER)
RETURNS SETOF BIGINT
LANGUAGE sql VOLATILE ROWS 64 SET enable_bitmapscan = off
AS $$
  SELECT c.seq
  FROM jsonb_to_recordset(p_destinations) AS t(destination TEXT, room INTEGER, below INTEGER)
  CROSS JOIN LATERAL (
    SELECT d.seq, d.priority FROM deliveries d
    WHERE d.destination = t.destination AND d.status = 'queued' AND d.priority < t.below
      AND d.available_at <= p_now AND (d.lease_until IS NULL OR d.lease_until < p_now)
    ORDER BY d.priority, d.seq
    LIMIT t.room
    FOR UPDATE SKIP LOCKED
  ) AS c
  ORDER BY c.priority, c.seq
  LIMIT p_limit
$$`,
  },
];

export const MIGRATIONS: Record<Dialect, readonly Migration[]> = { sqlite, postgres };

/** Checks a migration list is strictly increasing and returns it sorted. */
export function orderedMigrations(list: readonly Migration[]): Migration[] {
  const sorted = [...list].sort((a, b) => a.version - b.version);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.version === sorted[i - 1]!.version) {
      throw new Error(`duplicate migration version ${sorted[i]!.version}`);
    }
  }
  return sorted;
}

/**
 * The status of every migration: the engine's own, applied or not, then any other applied
 * version recorded in `schema_migrations` (the layers' extra migrations), in version order.
 */
export function migrationStatus(
  known: readonly Migration[],
  applied: ReadonlyArray<{ version: number; name: string; applied_at: number }>,
): MigrationStatus[] {
  const byVersion = new Map(applied.map((r) => [r.version, r]));
  const out: MigrationStatus[] = known.map((m) => ({
    version: m.version,
    name: m.name,
    appliedAt: byVersion.get(m.version)?.applied_at ?? null,
  }));
  for (const r of applied) {
    if (!out.some((m) => m.version === r.version)) {
      out.push({ version: r.version, name: r.name, appliedAt: r.applied_at });
    }
  }
  return out.sort((a, b) => a.version - b.version);
}
