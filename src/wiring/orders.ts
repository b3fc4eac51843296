// The orders module: the order process manager, returns and loyalty. It registers the handlers
// of the order's events and of the acknowledgements of its actions, the read routes
// (`/v1/orders/…`, `/v1/returns/{id}`, `/v1/transactions/{traceId}`), the order metrics, and
// three background rounds that keep network calls out of handler transactions: the item
// cross-reference lookups (ERP `findItems`), the allocation retry of backordered orders, and,
// while no inventory service is offered, the fallback stock table's refresh from the ERPs.
// Migrations 4000–4499 are this module's (orders 4000, returns 4100, loyalty 4200).
import { Counter, Gauge, Histogram } from 'prom-client';
import type { EstateConfig, SystemKind } from '../config/schema.js';
import { orderRoutes } from '../api/v1/orders.js';
import { transactionRoutes } from '../api/v1/transactions.js';
import { orderV2Routes } from '../api/v2/orders.js';
import { LOYALTY_MIGRATIONS } from '../domains/loyalty/index.js';
import {
  ALLOCATION_RETRY_TYPE,
  ITEMS_CHECKED_TYPE,
  ORDER_MIGRATIONS,
  ORDER_STATES,
  OrderProcess,
  backorderedOrders,
  lookupQueuedItems,
  ordersAwaitingItems,
  ordersByState,
  queueStaleMappings,
  setFallbackStock,
  type OrderSettings,
  type OrderSystems,
  type TransactionalSql,
} from '../domains/orders/index.js';
import { RETURN_MIGRATIONS, ReturnProcess } from '../domains/returns/index.js';
import { cancelSalesOrderPerformer } from '../connectors/cloud-erp/performers.js';
import type { Engine } from '../runtime/index.js';
import type { FeatureModule, ModuleContext } from './module.js';

const ERP_KINDS: readonly SystemKind[] = ['rest-erp', 'soap-erp', 'tryton'];
/** How long an order may wait for items before it is looked at again without new answers. */
const STALE_WAIT_MS = 30_000;

/** A configured fan-out system: the named one, `none` = off, absent = the first of its kind. */
function systemFor(
  config: EstateConfig,
  chosen: string | undefined,
  kinds: readonly SystemKind[],
): string | undefined {
  if (chosen === 'none') return undefined;
  if (chosen) return chosen;
  return config.systems.find((s) => kinds.includes(s.kind))?.id;
}

/** The order process settings from the estate config. */
export function orderSettings(config: EstateConfig): OrderSettings {
  const c = config.orders;
  const systems: OrderSystems = {};
  const set = (key: keyof OrderSystems, value: string | undefined) => {
    if (value) systems[key] = value;
  };
  set('tax', systemFor(config, c.taxSystem, ['tax']));
  set('crm', systemFor(config, c.fanOut.crm, ['crm']));
  set('loyalty', systemFor(config, c.fanOut.loyalty, ['loyalty']));
  set('wms', systemFor(config, c.fanOut.wms, ['wms']));
  set('commerce', systemFor(config, c.fanOut.commerce, ['shopify']));
  set('stores', systemFor(config, c.fanOut.stores, ['pos']));
  set('notifications', systemFor(config, c.fanOut.notifications, ['notification']));
  const defaultErp = config.systems.find((s) => ERP_KINDS.includes(s.kind))?.id;
  return {
    systems,
    ...(defaultErp ? { defaultErp } : {}),
    taxQuote: c.taxQuote,
    shipFrom: c.shipFrom,
    backorderExpectedDays: c.backorderExpectedDays,
    loyalty: { pointsPerCurrencyUnit: c.loyalty.pointsPerCurrencyUnit },
    ...(c.businessUnits
      ? {
          businessUnits: {
            byStore: c.businessUnits.byStore,
            bySystem: c.businessUnits.bySystem,
            byChannel: c.businessUnits.byChannel,
            ...(c.businessUnits.default ? { default: c.businessUnits.default } : {}),
          },
        }
      : {}),
  };
}

/** Accepts one allocation retry of a backordered order (the background round does this). */
export async function requestAllocationRetry(
  engine: Pick<Engine, 'accept'>,
  order: { orderId: string; traceparent: string | null },
  round: string,
): Promise<void> {
  const key = `allocation-retry/${order.orderId}/${round}`;
  await engine.accept({
    source: 'middlemart',
    idempotencyKey: key,
    requestHash: key,
    type: ALLOCATION_RETRY_TYPE,
    partitionKey: order.orderId,
    priority: 'critical',
    payload: { orderId: order.orderId },
    ...(order.traceparent ? { traceparent: order.traceparent } : {}),
  });
}

async function nudgeItemsChecked(
  engine: Pick<Engine, 'accept'>,
  orders: ReadonlyArray<{ orderId: string; traceparent: string | null }>,
  round: string,
): Promise<void> {
  for (const o of orders) {
    const key = `items-checked/${o.orderId}/${round}`;
    await engine.accept({
      source: 'middlemart',
      idempotencyKey: key,
      requestHash: key,
      type: ITEMS_CHECKED_TYPE,
      partitionKey: o.orderId,
      priority: 'critical',
      payload: { orderId: o.orderId },
      ...(o.traceparent ? { traceparent: o.traceparent } : {}),
    });
  }
}

/** Runs `round` every `intervalMs` until stopped; a failing round is logged and retried. */
function every(
  ctx: ModuleContext,
  name: string,
  intervalMs: number,
  round: () => Promise<void>,
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    if (stopped) return;
    running = round()
      .catch((err: unknown) => ctx.logger.warn({ err, round: name }, 'orders: round failed'))
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(tick, intervalMs);
          timer.unref();
        }
      });
  };
  timer = setTimeout(tick, 0);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

function registerOrderMetrics(ctx: ModuleContext) {
  const registry = ctx.metrics.registry;
  const posting = new Histogram({
    name: 'middlemart_order_posting_seconds',
    help: 'Time from accepting an order to the ERP acknowledging its booking',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900],
    registers: [registry],
  });
  const exceptions = new Counter({
    name: 'middlemart_order_exceptions_total',
    help: 'Orders put on the exception list, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  const fanOutLag = new Histogram({
    name: 'middlemart_order_fanout_lag_seconds',
    help: 'Time from asking a downstream system to its acknowledgement, by system and action',
    labelNames: ['system', 'action'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const store = ctx.store;
  new Gauge({
    name: 'middlemart_orders_by_state',
    help: 'Orders in each state of the order process',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const rows = await ordersByState(store).catch(() => undefined);
      if (!rows) return;
      const counts = new Map(rows.map((r) => [r.state, r.count]));
      for (const state of ORDER_STATES) this.set({ state }, counts.get(state) ?? 0);
    },
  });
  return {
    posted: (ms: number) => posting.observe(ms / 1000),
    exception: (kind: string) => exceptions.inc({ kind }),
    fanOutAcknowledged: (system: string, action: string, ms: number) =>
      fanOutLag.observe({ system, action }, ms / 1000),
  };
}

export const ordersModule: FeatureModule = {
  name: 'orders',
  migrations: () =>
    [...ORDER_MIGRATIONS, ...RETURN_MIGRATIONS, ...LOYALTY_MIGRATIONS].map((m) => ({ ...m })),
  start(ctx) {
    const c = ctx.config.orders;
    const settings = orderSettings(ctx.config);
    const orders = new OrderProcess({
      settings,
      services: ctx.services,
      observer: registerOrderMetrics(ctx),
      now: () => ctx.now(),
    });
    const returns = new ReturnProcess(
      {
        windowDays: c.returns.windowDays,
        finalSaleSkus: c.returns.finalSaleSkus,
        refusedConditions: c.returns.refusedConditions,
        writeOffConditions: c.returns.writeOffConditions,
        loyalty: settings.loyalty,
        systems: settings.systems.crm ? { crm: settings.systems.crm } : {},
      },
      () => ctx.now(),
    );
    for (const [type, handler] of Object.entries({ ...orders.handlers(), ...returns.handlers() })) {
      ctx.engine.registerHandler(type, handler);
    }
    ctx.onAcknowledged('order', (ack, tx) => orders.acknowledged(ack, tx));
    ctx.onAcknowledged('return', (ack, tx) => returns.acknowledged(ack, tx));
    ctx.onRefused('order', (refusal, tx) => orders.refused(refusal, tx));
    // Cancellations and amendments of booked sales, performed by every ERP port that can.
    for (const [system, port] of ctx.services.erps) {
      if (port.cancelSalesOrder) {
        ctx.registerAction(system, 'erp.cancel-sales-order', cancelSalesOrderPerformer(port));
      }
    }

    const store = ctx.store as unknown as TransactionalSql;
    const rounds: Array<{ stop(): Promise<void> }> = [];
    let lastRefresh = 0;
    let lastStock = 0;
    return {
      routes: [
        orderRoutes(ctx.store),
        orderV2Routes(ctx.store),
        transactionRoutes(ctx.store, (p) => ctx.engine.readPayload(p)),
      ],
      startBackground() {
        rounds.push(
          every(ctx, 'item cross-reference', c.itemLookupIntervalMs, async () => {
            const now = ctx.now();
            const refresh = now - lastRefresh >= c.itemRefreshIntervalMs;
            if (refresh && lastRefresh > 0) {
              await queueStaleMappings(ctx.store, now - c.itemRefreshIntervalMs, now);
            }
            const { answered } = await lookupQueuedItems(store, ctx.services.erps, () => ctx.now());
            if (answered > 0 || refresh) {
              // Orders waiting for these SKUs go on; parked ones are looked at again on refresh.
              const waiting = await ordersAwaitingItems(ctx.store, 5000, refresh);
              await nudgeItemsChecked(ctx.engine, waiting, String(now));
            } else {
              // An order that queued its SKUs while a round was answering them is looked at
              // again after a while (once per window: the window is in the idempotency key).
              const stale = await ordersAwaitingItems(ctx.store, 500, false, now - STALE_WAIT_MS);
              await nudgeItemsChecked(ctx.engine, stale, `w${Math.floor(now / STALE_WAIT_MS)}`);
            }
            if (refresh) lastRefresh = now;
            if (!ctx.services.stock && now - lastStock >= c.itemRefreshIntervalMs) {
              lastStock = now;
              for (const erp of ctx.services.erps.values()) {
                const levels = await erp.stockLevels().catch(() => []);
                await store.transaction((tx) => setFallbackStock(tx, levels, ctx.now()));
              }
            }
          }),
          every(ctx, 'backorder allocation', c.backorderRetryIntervalMs, async () => {
            const due = await backorderedOrders(ctx.store, 500);
            const round = String(ctx.now());
            for (const o of due) await requestAllocationRetry(ctx.engine, o, round);
          }),
        );
      },
      async stop() {
        await Promise.all(rounds.map((r) => r.stop()));
      },
    };
  },
};
