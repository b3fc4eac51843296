// The inventory module: the availability ledger's tables and the handler of
// `inventory.adjusted`.
import { inventoryMigrations, registerInventoryHandlers } from '../domains/inventory/index.js';
import type { FeatureModule } from './module.js';

export const inventoryModule: FeatureModule = {
  name: 'inventory',
  migrations: (dialect) => inventoryMigrations(dialect),
  start(ctx) {
    registerInventoryHandlers(ctx.engine);
    return {};
  },
};
