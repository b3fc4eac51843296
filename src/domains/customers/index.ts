// The customer domain: golden records over every system's customer records (cross-reference,
// matching, survivorship by system ownership), consent, stewardship, the 360 view and PII sealing.
// The matching engine itself lives in ./matching (usable alone).
export * from './customer360.js';
export * from './directory.js';
export * from './migrations.js';
export * from './pii.js';
export * from './stewardship.js';
export * from './survivorship.js';
