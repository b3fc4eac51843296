// The pricing module (not built yet).
import type { FeatureModule } from './module.js';

export const pricingModule: FeatureModule = {
  name: 'pricing',
  start: () => ({}),
};
