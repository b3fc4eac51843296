// The inventory module: the availability ledger's tables and handlers, the stock reservation
// port for orders (`services.stock`), the inventory API, the availability push to every
// configured sales channel (one channel pusher each), reservation expiry and the
// reconciliation schedule.
//
// How pushes are driven (ADR 0020): every flow that changes availability records the channel's
// newest value in its own transaction (the adjustment handler, the stock port, reservations over
// the API, expiry, reconciliation fixes). Each channel's pusher is woken when an engine handler
// or an API transaction of this process commits, and polls every `inventory.push.intervalMs` for
// what other processes committed; it claims due keys within the channel system's limits
// (rate, burst, concurrency, timeout, retry backoff, circuit breaker), calls the channel's
// availability connector, and records the acknowledgements and sync lag in its next round.
import { Counter, Gauge, Histogram } from 'prom-client';
import { inventoryRoutes } from '../api/v1/inventory.js';
import type { EstateConfig, SystemConfig } from '../config/schema.js';
import type { InventoryConfig } from '../config/sections/inventory.js';
import {
  availabilityChannelFor,
  erpStockReaderFor,
  type AvailabilityChannel,
} from '../connectors/availability/index.js';
import {
  ChannelPusher,
  assertAvailabilityRules,
  createStockReservations,
  expireDueReservations,
  inventoryMigrations,
  parkedKeyCounts,
  reconcileInventory,
  registerInventoryHandlers,
  type AcceptInTransaction,
  type AvailabilityRules,
  type ReconciliationReport,
} from '../domains/inventory/index.js';
import type { ErpStockLevel } from '../ports/erp.js';
import type { Store, StoreTx } from '../store/index.js';
import type { FeatureModule, ModuleContext, Services } from './module.js';

/** The availability rules of the estate config. */
export function availabilityRulesOf(settings: InventoryConfig): AvailabilityRules {
  const channels: Record<string, { locations?: string[]; percent?: number; cap?: number }> = {};
  for (const [id, c] of Object.entries(settings.channels)) {
    channels[id] = {
      ...(c.locations ? { locations: c.locations } : {}),
      ...(c.percent === undefined ? {} : { percent: c.percent }),
      ...(c.cap === undefined ? {} : { cap: c.cap }),
    };
  }
  const rules: AvailabilityRules = { safetyStock: settings.safetyStock, channels };
  assertAvailabilityRules(rules);
  return rules;
}

/** The availability connector of every channel that is pushed. */
export function availabilityChannelsOf(config: EstateConfig): Map<string, AvailabilityChannel> {
  const systems = new Map(config.systems.map((s) => [s.id, s]));
  const out = new Map<string, AvailabilityChannel>();
  for (const [id, channel] of Object.entries(config.inventory.channels)) {
    const system = systems.get(id);
    if (!system) throw new Error(`inventory.channels.${id}: no system ${id} in systems`);
    if (!channel.push) continue;
    const connector = availabilityChannelFor(system, channel.locationMap);
    if (!connector) {
      throw new Error(
        `inventory.channels.${id}: a ${system.kind} system takes no availability (push: false keeps its allocation rule only)`,
      );
    }
    out.set(id, connector);
  }
  return out;
}

const ERP_KINDS = new Set(['rest-erp', 'soap-erp', 'tryton']);

/** The ERP whose snapshot reconciliation compares with (configured, else the first ERP). */
export function reconciliationErpOf(config: EstateConfig): SystemConfig | undefined {
  const named = config.inventory.reconciliation.erp;
  if (named) return config.systems.find((s) => s.id === named);
  return config.systems.find((s) => ERP_KINDS.has(s.kind));
}

/**
 * The ERP snapshot of reconciliation: the ERP port of the estate (`services.erps`) when one is
 * registered, else this folder's own reader of the cloud ERP's inventory.
 */
export function erpSnapshotOf(
  erp: SystemConfig,
  services: Pick<Services, 'erps'> | undefined,
): () => Promise<{ asOf: number; levels: ErpStockLevel[] }> {
  const port = services?.erps.get(erp.id);
  if (port) {
    return async () => {
      const asOf = Date.now();
      return { asOf, levels: await port.stockLevels() };
    };
  }
  const reader = erpStockReaderFor(erp);
  if (!reader) throw new Error(`reconciliation: no stock reader for ${erp.id} (${erp.kind})`);
  return () => reader.snapshot();
}

/** Runs one reconciliation with the estate's ERP and channels. */
export async function runInventoryReconciliation(opts: {
  config: EstateConfig;
  store: Pick<Store, 'dialect' | 'query' | 'execute' | 'transaction'>;
  services?: Pick<Services, 'erps'>;
  fix?: boolean;
  now?: () => number;
}): Promise<ReconciliationReport> {
  const { config } = opts;
  const erp = reconciliationErpOf(config);
  if (!erp) throw new Error('reconciliation: no ERP in systems (set inventory.reconciliation.erp)');
  const channels = config.inventory.reconciliation.channels
    ? availabilityChannelsOf(config)
    : new Map<string, AvailabilityChannel>();
  const channelLocations: Record<string, readonly string[] | undefined> = {};
  for (const [id] of channels) {
    const c = config.inventory.channels[id]!;
    const mapped = Object.keys(c.locationMap);
    channelLocations[id] = c.locations ?? (mapped.length > 0 ? mapped : undefined);
  }
  return reconcileInventory({
    store: opts.store,
    erp: erp.id,
    snapshot: erpSnapshotOf(erp, opts.services),
    channels,
    channelLocations,
    rules: availabilityRulesOf(config.inventory),
    fix: opts.fix ?? config.inventory.reconciliation.fix,
    ...(opts.now ? { now: opts.now } : {}),
  });
}

interface InventoryMetrics {
  lag: Histogram<'channel'>;
  pushFailures: Counter<'channel' | 'kind'>;
  drift: Gauge<'kind' | 'channel'>;
  driftFound: Counter<'kind' | 'channel'>;
}

function inventoryMetrics(ctx: ModuleContext): InventoryMetrics {
  const registers = [ctx.metrics.registry];
  return {
    lag: new Histogram({
      name: 'middlemart_inventory_sync_lag_seconds',
      help: 'Sync lag per channel: source time of a stock change to the channel acknowledging it',
      labelNames: ['channel'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    pushFailures: new Counter({
      name: 'middlemart_inventory_push_failures_total',
      help: 'Availability sends a channel failed: transient (sent again) or permanent (the key is parked with the error until a newer value)',
      labelNames: ['channel', 'kind'],
      registers,
    }),
    drift: new Gauge({
      name: 'middlemart_inventory_drift',
      help: 'SKU-locations in drift at the last reconciliation (ledger vs ERP, channel vs ledger)',
      labelNames: ['kind', 'channel'],
      registers,
    }),
    driftFound: new Counter({
      name: 'middlemart_inventory_drift_found_total',
      help: 'SKU-locations found in drift, summed over reconciliations',
      labelNames: ['kind', 'channel'],
      registers,
    }),
  };
}

/** Records a reconciliation report in the drift metrics. */
export function observeReconciliation(
  m: Pick<InventoryMetrics, 'drift' | 'driftFound'>,
  r: ReconciliationReport,
): void {
  m.drift.labels('ledger', '').set(r.ledger.length);
  m.driftFound.labels('ledger', '').inc(r.ledger.length);
  for (const c of r.channels) {
    m.drift.labels('channel', c.channel).set(c.drifts.length);
    m.driftFound.labels('channel', c.channel).inc(c.drifts.length);
  }
}

export const inventoryModule: FeatureModule = {
  name: 'inventory',
  migrations: (dialect) => inventoryMigrations(dialect),
  start(ctx) {
    const settings = ctx.config.inventory;
    const rules = availabilityRulesOf(settings);
    const connectors = availabilityChannelsOf(ctx.config);
    const channels = [...connectors.keys()];
    const reservationTtlMs = settings.reservationTtlMinutes * 60_000;
    const metrics = inventoryMetrics(ctx);
    const systems = new Map(ctx.config.systems.map((sys) => [sys.id, sys]));
    const pushers = [...connectors].map(([id, connector]) => {
      const system = systems.get(id)!;
      return new ChannelPusher({
        store: ctx.store,
        channel: id,
        port: connector,
        limits: system.limits,
        retry: system.retry,
        breaker: system.circuitBreaker,
        leaseMs: settings.push.leaseSeconds * 1000,
        pollMs: settings.push.intervalMs,
        now: ctx.now,
        onAcknowledged: (lagMs) => metrics.lag.labels(id).observe(lagMs / 1000),
        durable: () => ctx.engine.durableHandlerEffects(),
        onFailure: (kind, err) => {
          metrics.pushFailures.labels(id, kind).inc();
          if (kind === 'permanent') {
            ctx.logger.warn({ err, channel: id }, 'channel refused an availability; key parked');
          }
        },
        log: ctx.logger,
      });
    });
    // Flows outside handlers publish `inventory.availability_changed` in their own transaction.
    const acceptInTransaction: AcceptInTransaction = (tx, req) =>
      ctx.engine.acceptInTransaction(tx as StoreTx, req);
    const wakePushers = () => {
      for (const p of pushers) p.wake();
    };
    new Gauge({
      name: 'middlemart_inventory_push_parked',
      help: 'SKU-locations a channel refused for good (parked with the error until a newer value)',
      labelNames: ['channel'],
      registers: [ctx.metrics.registry],
      async collect() {
        const counts = await parkedKeyCounts(ctx.store);
        this.reset();
        for (const [channel, n] of counts) this.labels(channel).set(n);
      },
    });

    // A handler that recorded availability for the channels names its message; once that
    // message's transaction has committed (the engine's `processed` event), the pushers wake.
    const recorded = new Set<string>();
    const onRecorded = (messageId: string | undefined) => {
      if (messageId === undefined) return;
      if (recorded.size > 10_000) recorded.clear(); // bounded: a rolled-back id waits for a retry
      recorded.add(messageId);
    };
    registerInventoryHandlers(ctx.engine, { rules, channels, now: ctx.now, onRecorded });
    ctx.services.stock = createStockReservations({
      rules,
      channels,
      reservationTtlMs,
      now: ctx.now,
      onRecorded,
    });
    const onProcessed = (e: { messageId: string }) => {
      if (recorded.delete(e.messageId)) wakePushers();
    };
    if (pushers.length > 0) ctx.engine.events.on('processed', onProcessed);

    const timers: NodeJS.Timeout[] = [];
    let stopped = false;
    let expiring = false;
    const expire = async () => {
      if (expiring || stopped) return;
      expiring = true;
      try {
        for (let i = 0; i < 20; i++) {
          const n = await expireDueReservations(ctx.store, {
            channels,
            rules,
            now: ctx.now(),
            accept: acceptInTransaction,
          });
          if (n > 0) {
            wakePushers();
            ctx.engine.wake();
          }
          if (n < 500) break;
        }
      } catch (err) {
        ctx.logger.warn({ err }, 'reservation expiry failed; retrying');
      } finally {
        expiring = false;
      }
    };
    let reconciling = false;
    const reconcile = async () => {
      if (reconciling || stopped) return;
      reconciling = true;
      try {
        const report = await runInventoryReconciliation({
          config: ctx.config,
          store: ctx.store,
          services: ctx.services,
          now: ctx.now,
        });
        observeReconciliation(metrics, report);
        ctx.logger.info(
          { ...report.summary, fixed: report.fixed, checked: report.checked },
          'inventory reconciled',
        );
      } catch (err) {
        ctx.logger.warn({ err }, 'inventory reconciliation failed');
      } finally {
        reconciling = false;
      }
    };

    return {
      routes: [
        inventoryRoutes({
          store: ctx.store,
          accept: (req) => ctx.engine.accept(req),
          rules,
          channels,
          reservationTtlMs,
          now: ctx.now,
          onCommitted: () => {
            wakePushers();
            ctx.engine.wake();
          },
          acceptInTransaction,
        }),
      ],
      startBackground() {
        for (const p of pushers) p.start();
        timers.push(setInterval(() => void expire(), 1000));
        const every = settings.reconciliation.everyMinutes;
        if (every > 0) timers.push(setInterval(() => void reconcile(), every * 60_000));
        for (const t of timers) t.unref();
      },
      async stop() {
        stopped = true;
        for (const t of timers) clearInterval(t);
        ctx.engine.events.off('processed', onProcessed);
        await Promise.all(pushers.map((p) => p.stop()));
        for (let i = 0; i < 200 && (expiring || reconciling); i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
      },
    };
  },
};
