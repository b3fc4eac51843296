// The order process manager's tables (versions 4000–4099). The same DDL reads on SQLite and
// PostgreSQL: times are epoch milliseconds (BIGINT), JSON is TEXT. Never edit a released
// migration: add one.
export const ORDER_MIGRATIONS = [
  {
    version: 4000,
    name: 'orders: process state, transitions, per-system sync, exceptions, identifiers',
    sql: `
CREATE TABLE order_processes (
  order_id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  waiting_for TEXT,
  channel TEXT NOT NULL,
  region TEXT NOT NULL,
  country TEXT,
  currency TEXT NOT NULL,
  net_total_minor BIGINT NOT NULL,
  customer_id TEXT,
  customer_provisional INTEGER NOT NULL DEFAULT 0,
  loyalty_member_id TEXT,
  erp_system TEXT,
  erp_rule TEXT,
  erp_reason TEXT,
  erp_order_id TEXT,
  fulfilment_method TEXT NOT NULL,
  fulfilment_location TEXT,
  commerce_system TEXT,
  commerce_order_id TEXT,
  expected_date TEXT,
  order_json TEXT NOT NULL,
  tax_json TEXT,
  shipped_json TEXT,
  traceparent TEXT,
  accepted_at BIGINT NOT NULL,
  posted_at BIGINT,
  updated_at BIGINT NOT NULL,
  version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX order_processes_state ON order_processes (state, updated_at);
CREATE TABLE order_transitions (
  order_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  from_state TEXT,
  to_state TEXT NOT NULL,
  reason TEXT,
  at BIGINT NOT NULL,
  message_id TEXT,
  PRIMARY KEY (order_id, seq)
);
CREATE TABLE order_sync (
  order_id TEXT NOT NULL,
  step TEXT NOT NULL,
  system TEXT NOT NULL,
  action TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  status TEXT NOT NULL,
  requested_at BIGINT NOT NULL,
  acknowledged_at BIGINT,
  detail TEXT,
  PRIMARY KEY (order_id, step)
);
CREATE INDEX order_sync_key ON order_sync (idempotency_key);
CREATE TABLE order_exceptions (
  id TEXT PRIMARY KEY,
  order_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  resolved_at BIGINT,
  UNIQUE (order_id, kind)
);
CREATE INDEX order_exceptions_open ON order_exceptions (status, created_at);
CREATE TABLE order_identifiers (
  system TEXT NOT NULL,
  external_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  PRIMARY KEY (system, external_id)
);
CREATE INDEX order_identifiers_external ON order_identifiers (external_id);
CREATE INDEX order_identifiers_order ON order_identifiers (order_id);
CREATE TABLE order_shipments (
  order_id TEXT NOT NULL,
  shipment_id TEXT NOT NULL,
  lines_json TEXT NOT NULL,
  shipped_at BIGINT NOT NULL,
  PRIMARY KEY (order_id, shipment_id)
);
CREATE TABLE order_item_xref (
  erp_system TEXT NOT NULL,
  sku TEXT NOT NULL,
  erp_item_id TEXT,
  status TEXT NOT NULL,
  checked_at BIGINT NOT NULL,
  PRIMARY KEY (erp_system, sku)
);
CREATE TABLE order_item_lookups (
  erp_system TEXT NOT NULL,
  sku TEXT NOT NULL,
  requested_at BIGINT NOT NULL,
  PRIMARY KEY (erp_system, sku)
);
CREATE TABLE order_fallback_stock (
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  on_hand INTEGER NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (sku, location)
);
CREATE TABLE order_fallback_reservations (
  order_id TEXT NOT NULL,
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  status TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (order_id, sku, location)
)`,
  },
  {
    version: 4001,
    name: 'orders: amendments (line cancellations) and what the ERP was asked to keep',
    sql: `
CREATE TABLE order_amendments (
  order_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  lines_json TEXT NOT NULL,
  reason TEXT,
  status TEXT NOT NULL,
  message_id TEXT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (order_id, seq)
)`,
  },
] as const;
