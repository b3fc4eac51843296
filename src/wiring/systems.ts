// The systems module: for every configured system (by kind; Tryton ERPs are the routing module's)
// it builds the connector's client, declares the system actions it performs, offers ERP ports to
// the other modules (`services.erps`), polls ERP status changes in the background, and serves the
// signed WMS shipment webhooks. Migrations 7000–7499 are this module's.
//
//   kind       actions performed                                             also
//   rest-erp   erp.post-sales-order, erp.post-credit, customer.sync          ErpPort, status poller
//   soap-erp   erp.post-sales-order                                          ErpPort
//   crm        crm.timeline-entry, customer.sync
//   loyalty    loyalty.accrue, loyalty.reverse, customer.sync
//   wms        wms.fulfilment-request                                        POST /v1/webhooks/wms/{id}
//   shopify    commerce.order-status
//   tax        tax.quote
//   notification notify.customer
//   pos        store.pickup-task
import { makeEvent } from '../canonical/index.js';
import { builtinSystems, type SystemConfig } from '../config/schema.js';
import { wmsWebhookRoutes, type WmsWebhookReceiver } from '../api/v1/wms-webhooks.js';
import { CloudErpClient } from '../connectors/cloud-erp/client.js';
import {
  cloudErpCustomerSyncPerformer,
  postCreditPerformer,
  postSalesOrderPerformer,
} from '../connectors/cloud-erp/performers.js';
import { ERP_STATUS_MIGRATIONS, ErpStatusPoller } from '../connectors/cloud-erp/status-poller.js';
import { commerceOrderStatusPerformer } from '../connectors/commerce/performers.js';
import {
  CrmClient,
  crmCustomerSyncPerformer,
  crmTimelinePerformer,
} from '../connectors/crm/performers.js';
import { LegacyErpClient } from '../connectors/legacy-erp/client.js';
import {
  LoyaltyClient,
  loyaltyAccruePerformer,
  loyaltyCustomerSyncPerformer,
  loyaltyReversePerformer,
} from '../connectors/loyalty/performers.js';
import { notifyCustomerPerformer } from '../connectors/notifications/performers.js';
import { pickupTaskPerformer } from '../connectors/pos/pickup.js';
import { taxQuotePerformer } from '../connectors/tax/performers.js';
import { wmsFulfilmentPerformer } from '../connectors/wms/performers.js';
import { receiveWmsWebhook } from '../connectors/wms/webhooks.js';
import { ActionError, type SystemActionName } from '../ports/system-actions.js';
import type { FeatureModule, ModuleContext, ModuleInstance } from './module.js';

/** Default interval of the ERP status poll (`settings.statusPollIntervalMs` overrides it). */
export const DEFAULT_STATUS_POLL_INTERVAL_MS = 30_000;

function credential(system: SystemConfig, key: string): string | undefined {
  const value = system.credentials[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The actions each kind performs (a system missing credentials refuses them all). */
const ACTIONS_BY_KIND: Partial<Record<SystemConfig['kind'], readonly SystemActionName[]>> = {
  'rest-erp': ['erp.post-sales-order', 'erp.post-credit', 'customer.sync'],
  'soap-erp': ['erp.post-sales-order'],
  crm: ['crm.timeline-entry', 'customer.sync'],
  loyalty: ['loyalty.accrue', 'loyalty.reverse', 'customer.sync'],
  shopify: ['commerce.order-status'],
};

/** The credentials each kind cannot work without. */
const REQUIRED_CREDENTIALS: Partial<Record<SystemConfig['kind'], readonly string[]>> = {
  'rest-erp': ['clientId', 'clientSecret'],
  'soap-erp': ['username', 'password'],
  crm: ['apiKey'],
  loyalty: ['apiKey'],
  shopify: ['accessToken'],
};

function setting(system: SystemConfig, key: string): string | number | boolean | undefined {
  return system.settings[key];
}

/** The WMS webhook receiver of one system: verify, map, and build the canonical event. */
export function wmsWebhookReceiver(
  system: SystemConfig,
  now: () => number = Date.now,
): WmsWebhookReceiver {
  const secret = credential(system, 'webhookSecret') ?? '';
  return {
    receive(input) {
      const outcome = receiveWmsWebhook(
        secret,
        input.headers,
        input.rawBody,
        input.body,
        Math.floor(now() / 1000),
      );
      if (!outcome.ok) return outcome;
      const event = makeEvent('shipment.confirmed', outcome.shipment, {
        source: `/middlemart/connectors/${system.id}`,
        id: `${system.id}:${outcome.shipment.id}`,
        time: outcome.shipment.shippedAt,
        idempotencyKey: outcome.idempotencyKey,
      });
      return {
        ok: true,
        event: event as unknown as { type: string; id: string } & Record<string, unknown>,
        type: event.type,
        partitionKey: outcome.shipment.orderId,
        idempotencyKey: outcome.idempotencyKey,
      };
    },
  };
}

/** Builds every configured system's connector and registers what it performs. */
export function startSystems(ctx: ModuleContext): ModuleInstance {
  const pollers: ErpStatusPoller[] = [];
  const receivers = new Map<string, WmsWebhookReceiver>();
  for (const system of builtinSystems(ctx.config)) {
    const base = { system: system.id, baseUrl: system.baseUrl };
    const missing = (REQUIRED_CREDENTIALS[system.kind] ?? []).filter(
      (key) => credential(system, key) === undefined,
    );
    if (missing.length > 0) {
      // Refused permanently (dead letters that name the fix), never silently dropped.
      const reason = `system ${system.id} (${system.kind}) is not usable: credentials.${missing.join(', credentials.')} missing in the estate config`;
      ctx.logger.error({ system: system.id, missing }, reason);
      for (const action of ACTIONS_BY_KIND[system.kind] ?? []) {
        ctx.registerAction(system.id, action, () =>
          Promise.reject(new ActionError(reason, 'permanent', { code: 'NOT_CONFIGURED' })),
        );
      }
      continue;
    }
    const secret = (key: string): string => credential(system, key) as string;
    switch (system.kind) {
      case 'rest-erp': {
        const client = new CloudErpClient({
          ...base,
          clientId: secret('clientId'),
          clientSecret: secret('clientSecret'),
        });
        ctx.services.erps.set(system.id, client);
        ctx.registerAction(
          system.id,
          'erp.post-sales-order',
          postSalesOrderPerformer(client, { lookUpOnRetry: true }),
        );
        ctx.registerAction(system.id, 'erp.post-credit', postCreditPerformer(client));
        const currency = setting(system, 'defaultCurrency');
        ctx.registerAction(
          system.id,
          'customer.sync',
          cloudErpCustomerSyncPerformer(client, typeof currency === 'string' ? { currency } : {}),
        );
        const interval = setting(system, 'statusPollIntervalMs');
        if (interval !== 0 && interval !== false) {
          pollers.push(
            new ErpStatusPoller({
              port: client,
              sql: ctx.store,
              accept: (req) => ctx.engine.accept(req),
              gate: ctx.gate,
              intervalMs:
                typeof interval === 'number' && interval > 0
                  ? interval
                  : DEFAULT_STATUS_POLL_INTERVAL_MS,
              logger: ctx.logger,
              now: () => ctx.now(),
            }),
          );
        }
        break;
      }
      case 'soap-erp': {
        const dropDir = setting(system, 'dropDir');
        const soapPath = setting(system, 'soapPath');
        const client = new LegacyErpClient({
          ...base,
          username: secret('username'),
          password: secret('password'),
          ...(typeof dropDir === 'string' ? { dropDir } : {}),
          ...(typeof soapPath === 'string' ? { soapPath } : {}),
        });
        ctx.services.erps.set(system.id, client);
        // The ERP deduplicates by ExternalReference itself and cannot be asked for a booking.
        ctx.registerAction(
          system.id,
          'erp.post-sales-order',
          postSalesOrderPerformer(client, { lookUpOnRetry: false }),
        );
        break;
      }
      case 'crm': {
        const client = new CrmClient({ ...base, apiKey: secret('apiKey') });
        ctx.registerAction(system.id, 'crm.timeline-entry', crmTimelinePerformer(client));
        ctx.registerAction(system.id, 'customer.sync', crmCustomerSyncPerformer(client));
        break;
      }
      case 'loyalty': {
        const client = new LoyaltyClient({ ...base, apiKey: secret('apiKey') });
        ctx.registerAction(system.id, 'loyalty.accrue', loyaltyAccruePerformer(client));
        ctx.registerAction(system.id, 'loyalty.reverse', loyaltyReversePerformer(client));
        ctx.registerAction(system.id, 'customer.sync', loyaltyCustomerSyncPerformer(client));
        break;
      }
      case 'wms': {
        const apiKey = credential(system, 'apiKey');
        ctx.registerAction(
          system.id,
          'wms.fulfilment-request',
          wmsFulfilmentPerformer({ ...base, ...(apiKey ? { apiKey } : {}) }),
        );
        if (!credential(system, 'webhookSecret')) {
          ctx.logger.warn(
            { system: system.id },
            'no credentials.webhookSecret: shipment webhooks from this WMS are refused (401)',
          );
        }
        receivers.set(
          system.id,
          wmsWebhookReceiver(system, () => ctx.now()),
        );
        break;
      }
      case 'shopify': {
        const apiVersion = setting(system, 'apiVersion');
        ctx.registerAction(
          system.id,
          'commerce.order-status',
          commerceOrderStatusPerformer({
            ...base,
            accessToken: secret('accessToken'),
            ...(typeof apiVersion === 'string' ? { apiVersion } : {}),
          }),
        );
        break;
      }
      case 'tax': {
        const apiKey = credential(system, 'apiKey');
        ctx.registerAction(
          system.id,
          'tax.quote',
          taxQuotePerformer({ ...base, ...(apiKey ? { apiKey } : {}) }),
        );
        break;
      }
      case 'notification': {
        const apiKey = credential(system, 'apiKey');
        const shopName = setting(system, 'shopName');
        ctx.registerAction(
          system.id,
          'notify.customer',
          notifyCustomerPerformer({
            ...base,
            ...(apiKey ? { apiKey } : {}),
            ...(typeof shopName === 'string' ? { shopName } : {}),
          }),
        );
        break;
      }
      case 'pos': {
        // Click-and-collect orders become pickup tasks for the store's staff.
        ctx.registerAction(system.id, 'store.pickup-task', pickupTaskPerformer(base));
        break;
      }
      default:
        // tryton (routing module) and marketplace: nothing performed by this module.
        break;
    }
  }
  return {
    ...(receivers.size > 0
      ? { routes: [wmsWebhookRoutes({ receivers, accept: (req) => ctx.engine.accept(req) })] }
      : {}),
    startBackground() {
      for (const poller of pollers) poller.start();
    },
    async stop() {
      await Promise.all(pollers.map((p) => p.stop()));
    },
  };
}

export const systemsModule: FeatureModule = {
  name: 'systems',
  migrations: () => ERP_STATUS_MIGRATIONS.map((m) => ({ ...m })),
  start: (ctx) => startSystems(ctx),
};
