// The estate configuration: its schema and its loader.
export * from './schema.js';
export * from './load.js';
export { packageRoot, packageVersion } from './package-root.js';
