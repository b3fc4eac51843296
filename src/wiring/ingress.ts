// The ingress module: how channels hand work to Middlemart in their own form. Shopify-compatible
// webhooks (signed per shop), canonical orders and returns from apps and other channels, and
// store uploads of POS sales and returns with per-store sequence numbers. Every route turns what
// it receives into canonical events accepted durably into the engine; the order and return
// processes take them from there. Tables: the store batch ledger (migrations 4500+).
import { eventByName, type EventName } from '../canonical/index.js';
import type { EstateConfig, SystemConfig } from '../config/schema.js';
import { interpretShopifyWebhook, verifyShopifySignature } from '../connectors/shopify/index.js';
import { storeBatchMigrations } from '../domains/store-batches/index.js';
import { ordersIntakeRoutes, type IngressDeps } from '../api/v1/orders-intake.js';
import { returnsIntakeRoutes } from '../api/v1/returns-intake.js';
import { shopifyWebhookRoutes, type ShopifyWebhookShop } from '../api/v1/shopify-webhooks.js';
import { storeBatchRoutes } from '../api/v1/store-batches.js';
import type { PriorityClass } from '../runtime/index.js';
import type { FeatureModule } from './module.js';

/** The region of a system's transactions when the system names none. */
export const DEFAULT_REGION = 'eu';
/** Where goods refunded through a shop come back to when its settings name no `returnLocation`. */
export const DEFAULT_RETURN_LOCATION = 'DC-EU-1';

function setting(system: SystemConfig, name: string): string | undefined {
  const value = system.settings[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The estate's Shopify-compatible shops, as the webhook route needs them. */
export function shopsOf(config: EstateConfig): Map<string, ShopifyWebhookShop> {
  const shops = new Map<string, ShopifyWebhookShop>();
  for (const system of config.systems) {
    if (system.kind !== 'shopify') continue;
    const secret = system.credentials.webhookSecret;
    const shopDomain = setting(system, 'shopDomain');
    shops.set(system.id, {
      context: {
        systemId: system.id,
        region: system.region ?? DEFAULT_REGION,
        returnLocation: setting(system, 'returnLocation') ?? DEFAULT_RETURN_LOCATION,
      },
      webhookSecret: typeof secret === 'string' && secret !== '' ? secret : undefined,
      ...(shopDomain ? { shopDomain } : {}),
    });
  }
  return shops;
}

/** The priority class of each event: the estate's override, else the catalogue's. */
export function priorityResolver(config: EstateConfig): (event: EventName) => PriorityClass {
  const overrides = config.priorities as Readonly<Record<string, PriorityClass>>;
  return (event) => overrides[event] ?? eventByName(event).priority;
}

export const ingressModule: FeatureModule = {
  name: 'ingress',
  migrations: (dialect) => storeBatchMigrations(dialect),
  start(ctx) {
    const { config } = ctx;
    const ingress: IngressDeps = {
      accept: (req) => ctx.engine.accept(req),
      priorityOf: priorityResolver(config),
    };
    const pos = config.systems.find((s) => s.kind === 'pos');
    return {
      routes: [
        ordersIntakeRoutes(ingress),
        returnsIntakeRoutes(ingress),
        shopifyWebhookRoutes({
          ...ingress,
          shops: shopsOf(config),
          verify: verifyShopifySignature,
          interpret: interpretShopifyWebhook,
        }),
        storeBatchRoutes({
          ...ingress,
          sql: ctx.store,
          stores: {
            posSystem: pos?.id ?? 'pos',
            region: pos?.region ?? DEFAULT_REGION,
          },
          now: ctx.now,
        }),
      ],
    };
  },
};
