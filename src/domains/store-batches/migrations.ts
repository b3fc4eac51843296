// The store batch ledger's tables (versions 4500+, the ingress module's range). Shared DDL: SQLite
// and PostgreSQL both read it. Times are epoch milliseconds. A migration is never edited once
// released: add a new one.

export interface StoreBatchMigration {
  version: number;
  name: string;
  sql: string;
}

const ledger = `
CREATE TABLE store_transactions (
  store_id TEXT NOT NULL,
  session TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  transaction_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  event_type TEXT NOT NULL,
  message_id TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  batch_id TEXT,
  accepted_at BIGINT NOT NULL,
  PRIMARY KEY (store_id, session, sequence)
);
CREATE TABLE store_batch_answers (
  store_id TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  answer TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (store_id, idempotency_key)
);
`;

/** The ledger of store transactions taken per store, session and sequence number. */
export function storeBatchMigrations(_dialect: 'sqlite' | 'postgres'): StoreBatchMigration[] {
  return [{ version: 4500, name: 'store batch ledger', sql: ledger }];
}
