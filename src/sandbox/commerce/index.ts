// The Shopify-compatible commerce simulator and its wire helpers.
export * from './commerce.js';
export * from './leaky-bucket.js';
export * from './payloads.js';
export * from './shop.js';
export * from './wire.js';
