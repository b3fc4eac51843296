// The customer domain's tables (versions 3000+). Personal data lives only in `*_sealed` columns
// (AES-256-GCM, key id beside it); lookups go through keyed blind-index digests. Times are epoch
// milliseconds; JSON is TEXT. A migration is never edited once released: add a new one.

export interface CustomerMigration {
  version: number;
  name: string;
  sql: string;
}

const tables = `
CREATE TABLE customer_golden (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  merged_into TEXT,
  provisional INTEGER NOT NULL DEFAULT 0,
  profile_sealed TEXT,
  key_id TEXT,
  profile_digest TEXT,
  version INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE customer_source_records (
  system TEXT NOT NULL,
  source_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  record_sealed TEXT NOT NULL,
  key_id TEXT NOT NULL,
  observed_at BIGINT NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (system, source_id)
);
CREATE INDEX customer_source_records_customer ON customer_source_records (customer_id);
CREATE TABLE customer_blind_keys (
  digest TEXT NOT NULL,
  kind TEXT NOT NULL,
  system TEXT NOT NULL,
  source_id TEXT NOT NULL,
  PRIMARY KEY (digest, system, source_id)
);
CREATE INDEX customer_blind_keys_record ON customer_blind_keys (system, source_id);
CREATE TABLE customer_match_decisions (
  id TEXT PRIMARY KEY,
  system TEXT NOT NULL,
  source_id TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  candidate_id TEXT,
  decision TEXT NOT NULL,
  rule TEXT,
  score DOUBLE PRECISION,
  probability DOUBLE PRECISION,
  explanation TEXT NOT NULL,
  decided_at BIGINT NOT NULL
);
CREATE INDEX customer_match_decisions_record ON customer_match_decisions (system, source_id);
CREATE INDEX customer_match_decisions_customer ON customer_match_decisions (customer_id);
CREATE TABLE customer_stewardship_tasks (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  customer_a TEXT NOT NULL,
  customer_b TEXT NOT NULL,
  record_a_system TEXT NOT NULL,
  record_a_id TEXT NOT NULL,
  record_b_system TEXT NOT NULL,
  record_b_id TEXT NOT NULL,
  score DOUBLE PRECISION NOT NULL,
  probability DOUBLE PRECISION NOT NULL,
  explanation TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  decision TEXT,
  reason TEXT,
  decided_by TEXT,
  decided_at BIGINT,
  merge_id TEXT
);
CREATE INDEX customer_stewardship_tasks_status ON customer_stewardship_tasks (status, created_at);
CREATE TABLE customer_keep_apart (
  customer_a TEXT NOT NULL,
  customer_b TEXT NOT NULL,
  reason TEXT NOT NULL,
  decided_by TEXT NOT NULL,
  decided_at BIGINT NOT NULL,
  PRIMARY KEY (customer_a, customer_b)
);
CREATE TABLE customer_consents (
  customer_id TEXT NOT NULL,
  purpose TEXT NOT NULL,
  channel TEXT NOT NULL,
  status TEXT NOT NULL,
  changed_at BIGINT NOT NULL,
  source TEXT NOT NULL,
  recorded_at BIGINT NOT NULL,
  PRIMARY KEY (customer_id, purpose, channel)
);
CREATE TABLE customer_merges (
  id TEXT PRIMARY KEY,
  survivor_id TEXT NOT NULL,
  merged_id TEXT NOT NULL,
  records TEXT NOT NULL,
  consents TEXT NOT NULL,
  reason TEXT NOT NULL,
  merged_by TEXT NOT NULL,
  merged_at BIGINT NOT NULL,
  undone_by TEXT,
  undone_at BIGINT
);
CREATE INDEX customer_merges_survivor ON customer_merges (survivor_id);
CREATE TABLE customer_sync_state (
  customer_id TEXT NOT NULL,
  system TEXT NOT NULL,
  digest TEXT NOT NULL,
  sent_at BIGINT NOT NULL,
  PRIMARY KEY (customer_id, system)
)`;

const history = {
  sqlite: `
CREATE TABLE customer_history (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  customer_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX customer_history_customer ON customer_history (customer_id, seq)`,
  postgres: `
CREATE TABLE customer_history (
  seq BIGSERIAL PRIMARY KEY,
  customer_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  detail TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX customer_history_customer ON customer_history (customer_id, seq)`,
} as const;

/** The customer domain's migrations for a dialect. */
export function customerMigrations(dialect: 'sqlite' | 'postgres'): CustomerMigration[] {
  return [
    { version: 3000, name: 'customer golden records, cross-reference, stewardship', sql: tables },
    { version: 3001, name: 'customer history', sql: history[dialect] },
    {
      version: 3002,
      name: 'customer identity lock',
      sql: `CREATE TABLE customer_identity_lock (
  id INTEGER PRIMARY KEY,
  placements BIGINT NOT NULL DEFAULT 0
);
INSERT INTO customer_identity_lock (id, placements) VALUES (1, 0)`,
    },
  ];
}
