// The inventory domain's tables, one numbered list per dialect (versions 2000+). The composition
// root passes `inventoryMigrations(store.dialect)` to `store.migrate(extra)`. A migration is never
// edited once released: add a new one. Times are epoch milliseconds; quantities are integers.

/** A numbered schema change, in the shape the Store port's `migrate(extra)` takes. */
export interface InventoryMigration {
  version: number;
  name: string;
  sql: string;
}

export type InventoryDialect = 'sqlite' | 'postgres';

// Shared by both dialects: plain types and `?`-free DDL that SQLite and PostgreSQL both read.
const positionsAndReservations = `
CREATE TABLE inventory_positions (
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  on_hand INTEGER NOT NULL DEFAULT 0,
  reserved INTEGER NOT NULL DEFAULT 0,
  safety_stock INTEGER NOT NULL DEFAULT 0,
  version BIGINT NOT NULL DEFAULT 0,
  count_epoch INTEGER NOT NULL DEFAULT 0,
  count_source TEXT,
  count_sequence BIGINT,
  count_timestamp BIGINT,
  source_timestamp BIGINT,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (sku, location),
  CHECK (reserved >= 0)
);
CREATE TABLE inventory_reservations (
  id TEXT PRIMARY KEY,
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  quantity INTEGER NOT NULL,
  order_id TEXT NOT NULL,
  line_id TEXT,
  channel TEXT NOT NULL,
  status TEXT NOT NULL,
  available_at_decision INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  closed_at BIGINT
);
CREATE INDEX inventory_reservations_expiry ON inventory_reservations (expires_at) WHERE status = 'active';
CREATE INDEX inventory_reservations_order ON inventory_reservations (order_id);
CREATE TABLE inventory_channel_sync (
  channel TEXT NOT NULL,
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  latest_version BIGINT NOT NULL,
  latest_available INTEGER NOT NULL,
  pending_source_time BIGINT,
  pending_since BIGINT,
  sending_version BIGINT,
  sending_available INTEGER,
  sending_source_time BIGINT,
  sending_until BIGINT,
  acked_version BIGINT NOT NULL DEFAULT 0,
  acked_available INTEGER,
  acked_at BIGINT,
  last_lag_ms BIGINT,
  PRIMARY KEY (channel, sku, location)
);
CREATE INDEX inventory_channel_sync_pending ON inventory_channel_sync (channel, pending_since);
CREATE TABLE inventory_channel_lag (
  channel TEXT NOT NULL,
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  version BIGINT NOT NULL,
  lag_ms BIGINT NOT NULL,
  acked_at BIGINT NOT NULL
);
CREATE INDEX inventory_channel_lag_channel ON inventory_channel_lag (channel, acked_at)`;

const adjustmentLogColumns = `
  message_id TEXT,
  sku TEXT NOT NULL,
  location TEXT NOT NULL,
  source_system TEXT NOT NULL,
  source_sequence BIGINT NOT NULL,
  source_timestamp BIGINT NOT NULL,
  reason TEXT NOT NULL,
  delta INTEGER,
  count INTEGER,
  outcome TEXT NOT NULL,
  count_epoch INTEGER NOT NULL,
  on_hand_before INTEGER NOT NULL,
  on_hand_after INTEGER NOT NULL,
  superseded_by BIGINT,
  recorded_at BIGINT NOT NULL`;

const adjustmentIndexes = `
CREATE UNIQUE INDEX inventory_adjustments_source ON inventory_adjustments (sku, location, source_system, source_sequence) WHERE outcome <> 'duplicate';
CREATE INDEX inventory_adjustments_epoch ON inventory_adjustments (sku, location, count_epoch, outcome)`;

/** Both dialects: keys a channel refused are parked with the error; live claims indexed. */
const PARKED_KEYS: InventoryMigration = {
  version: 2001,
  name: 'inventory: channel keys parked after a refusal; index of live claims',
  sql: `ALTER TABLE inventory_channel_sync ADD COLUMN failed_version BIGINT;
ALTER TABLE inventory_channel_sync ADD COLUMN failed_at BIGINT;
ALTER TABLE inventory_channel_sync ADD COLUMN last_error TEXT;
CREATE INDEX inventory_channel_sync_claims ON inventory_channel_sync (channel, sending_until)
  WHERE sending_version IS NOT NULL`,
};

const sqlite: InventoryMigration[] = [
  {
    version: 2000,
    name: 'inventory: positions, adjustment log, reservations, channel sync',
    sql: `${positionsAndReservations};
CREATE TABLE inventory_adjustments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,${adjustmentLogColumns}
);${adjustmentIndexes}`,
  },
  PARKED_KEYS,
];

const postgres: InventoryMigration[] = [
  {
    version: 2000,
    name: 'inventory: positions, adjustment log, reservations, channel sync',
    sql: `${positionsAndReservations};
CREATE TABLE inventory_adjustments (
  id BIGSERIAL PRIMARY KEY,${adjustmentLogColumns}
);${adjustmentIndexes}`,
  },
  PARKED_KEYS,
];

export const INVENTORY_MIGRATIONS: Readonly<
  Record<InventoryDialect, readonly InventoryMigration[]>
> = { sqlite, postgres };

/** The inventory migrations for a store's dialect, for `store.migrate(extra)`. */
export function inventoryMigrations(dialect: InventoryDialect): readonly InventoryMigration[] {
  return INVENTORY_MIGRATIONS[dialect];
}
