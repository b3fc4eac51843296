// The ingress module (not built yet).
import type { FeatureModule } from './module.js';

export const ingressModule: FeatureModule = {
  name: 'ingress',
  start: () => ({}),
};
