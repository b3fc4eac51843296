// The POS simulator: stores that sell, return, go offline and upload their buffers.
export * from './pos.js';
export * from './transactions.js';
