// The pricing domain's tables (versions 5000+). Times are epoch ms; money in minor units. A
// migration is never edited once released: add a new one.

export interface PricingMigration {
  version: number;
  name: string;
  sql: string;
}

const tables = `
CREATE TABLE pricing_changes (
  id TEXT PRIMARY KEY,
  sku TEXT NOT NULL,
  channel TEXT,
  store_group TEXT,
  currency TEXT NOT NULL,
  list_minor BIGINT NOT NULL,
  sale_minor BIGINT,
  includes_tax INTEGER NOT NULL,
  effective_from BIGINT NOT NULL,
  effective_until BIGINT,
  promotion_id TEXT,
  status TEXT NOT NULL,
  reasons TEXT,
  source TEXT NOT NULL,
  submission TEXT NOT NULL,
  ingested_at BIGINT NOT NULL,
  ingest_index INTEGER NOT NULL,
  decided_by TEXT,
  decided_at BIGINT,
  decision_reason TEXT,
  superseded_at BIGINT
);
CREATE INDEX pricing_changes_sku ON pricing_changes (sku, status, superseded_at);
CREATE INDEX pricing_changes_status ON pricing_changes (status, ingested_at);
CREATE INDEX pricing_changes_submission ON pricing_changes (submission);
CREATE TABLE pricing_sync (
  target TEXT NOT NULL,
  scope TEXT NOT NULL,
  sku TEXT NOT NULL,
  due_at BIGINT,
  latest_version BIGINT NOT NULL DEFAULT 0,
  latest_currency TEXT,
  latest_list BIGINT,
  latest_sale BIGINT,
  pending_since BIGINT,
  sending_version BIGINT,
  sending_currency TEXT,
  sending_list BIGINT,
  sending_sale BIGINT,
  sending_until BIGINT,
  acked_version BIGINT NOT NULL DEFAULT 0,
  acked_currency TEXT,
  acked_list BIGINT,
  acked_sale BIGINT,
  acked_at BIGINT,
  listed INTEGER,
  verified_version BIGINT NOT NULL DEFAULT 0,
  verified_at BIGINT,
  verify_outcome TEXT,
  observed_list BIGINT,
  observed_sale BIGINT,
  PRIMARY KEY (target, scope, sku)
);
CREATE INDEX pricing_sync_due ON pricing_sync (due_at);
CREATE INDEX pricing_sync_pending ON pricing_sync (target, pending_since);
CREATE INDEX pricing_sync_sending ON pricing_sync (target, sending_until);
CREATE TABLE pricing_files (
  name TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  changes INTEGER NOT NULL,
  errors TEXT,
  at BIGINT NOT NULL
);
`;

export function pricingMigrations(_dialect: 'sqlite' | 'postgres'): PricingMigration[] {
  return [{ version: 5000, name: 'pricing calendar, channel sync and verification', sql: tables }];
}
