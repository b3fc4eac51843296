// The orders module (not built yet).
import type { FeatureModule } from './module.js';

export const ordersModule: FeatureModule = {
  name: 'orders',
  start: () => ({}),
};
