// The webhooks module (not built yet).
import type { FeatureModule } from './module.js';

export const webhooksModule: FeatureModule = {
  name: 'webhooks',
  start: () => ({}),
};
