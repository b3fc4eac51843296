// The order process manager: state machine, item cross-reference, fallback reservations and
// the read model behind GET /v1/orders.
export * from './amendments.js';
export * from './fallback-stock.js';
export * from './item-xref.js';
export * from './migrations.js';
export * from './process.js';
export * from './read.js';
export * from './record.js';
export * from './states.js';
