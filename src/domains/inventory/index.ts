// The inventory domain: availability ledger, reservations, available-to-promise per location
// and channel, the coalescing plan for pushing availability to channels, and reconciliation.
export * from './availability.js';
export * from './handlers.js';
export * from './ledger.js';
export * from './ledger-rules.js';
export * from './migrations.js';
export * from './propagation.js';
export * from './reconciliation.js';
export * from './reservations.js';
export type { InventorySql, InventoryStore } from './sql.js';
export * from './stock-port.js';
export * from './pusher.js';
export * from './reconcile-run.js';
export * from './batcher.js';
