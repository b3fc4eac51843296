// The customers module (not built yet).
import type { FeatureModule } from './module.js';

export const customersModule: FeatureModule = {
  name: 'customers',
  start: () => ({}),
};
