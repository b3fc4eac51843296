// The routing module (not built yet).
import type { FeatureModule } from './module.js';

export const routingModule: FeatureModule = {
  name: 'routing',
  start: () => ({}),
};
