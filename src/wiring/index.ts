// The feature modules the application runs, in start order: modules that offer services
// (connectors, routing, inventory, customers) before the processes that use them.
import { customersModule } from './customers.js';
import { ingressModule } from './ingress.js';
import { inventoryModule } from './inventory.js';
import type { FeatureModule } from './module.js';
import { ordersModule } from './orders.js';
import { pricingModule } from './pricing.js';
import { routingModule } from './routing.js';
import { systemsModule } from './systems.js';
import { webhooksModule } from './webhooks.js';

export type * from './module.js';
export { AcknowledgementRouter, ActionRegistry, actionSender, failureResponse } from './actions.js';

export const MODULES: readonly FeatureModule[] = [
  systemsModule,
  routingModule,
  inventoryModule,
  customersModule,
  ordersModule,
  pricingModule,
  ingressModule,
  webhooksModule,
];
