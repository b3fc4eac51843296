// The canonical language of Middlemart: models, event catalogue, CloudEvents envelope and the
// published contracts. Everything else imports from here.
export * from './primitives.js';
export * from './product.js';
export * from './inventory.js';
export * from './price.js';
export * from './order.js';
export * from './customer.js';
export * from './returns.js';
export * from './shipment.js';
export * from './loyalty.js';
export * from './models.js';
export * from './events.js';
export * from './envelope.js';
export * from './issues.js';
export * from './compat.js';
export * from './contracts.js';
export { ISO_3166_ALPHA2 } from './data/iso3166.js';
export { ISO_4217_CODES, ISO_4217_MINOR_UNITS } from './data/iso4217.js';
