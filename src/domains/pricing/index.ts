// The pricing domain: approved, effective-dated prices distributed to every channel that sells
// the item (docs/pricing.md).
export * from './model.js';
export * from './input.js';
export * from './calendar.js';
export * from './distribution.js';
export { pricingMigrations } from './migrations.js';
