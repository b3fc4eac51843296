// The systems module (not built yet).
import type { FeatureModule } from './module.js';

export const systemsModule: FeatureModule = {
  name: 'systems',
  start: () => ({}),
};
