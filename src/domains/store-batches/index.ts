// Store batch uploads: POS sales and returns numbered per store and till session, their canonical
// events, and the ledger of sequence numbers taken (duplicates, replays and gaps).
export * from './batch.js';
export * from './ledger.js';
export { storeBatchMigrations, type StoreBatchMigration } from './migrations.js';
