// The inventory module: the availability ledger's tables and handlers, the stock reservation
// port for orders (`services.stock`), the inventory API, the availability push to every
// configured sales channel (performers of `channel.availability`, acknowledgements, the
// background pump), reservation expiry and the reconciliation schedule.
//
// How pushes are driven (ADR 0017): a change recorded in a handler's transaction plans its key
// at once and writes the delivery in that transaction; an acknowledgement plans the key's next
// value; the pump (every `inventory.push.intervalMs`) asks a worker to plan what is due but
// unplanned (changes made outside the engine: reservations over the API, expiry, corrections;
// keys whose lease ran out). The delivery gate applies each channel's rate limit; the performer
// sends the key's newest value at send time.
import { Counter, Gauge, Histogram } from 'prom-client';
import { inventoryRoutes } from '../api/v1/inventory.js';
import type { EstateConfig, SystemConfig } from '../config/schema.js';
import type { InventoryConfig } from '../config/sections/inventory.js';
import {
  availabilityChannelFor,
  availabilityPerformer,
  erpStockReaderFor,
  type AvailabilityChannel,
} from '../connectors/availability/index.js';
import {
  AVAILABILITY_PROCESS,
  CHANNEL_PUSH_DUE_TYPE,
  acknowledgeAvailability,
  assertAvailabilityRules,
  createStockReservations,
  expireDueReservations,
  hasDuePushes,
  inventoryMigrations,
  reconcileInventory,
  refreshPush,
  registerInventoryHandlers,
  type AvailabilityRules,
  type ChannelPushOptions,
  type ReconciliationReport,
} from '../domains/inventory/index.js';
import type { ErpStockLevel } from '../ports/erp.js';
import type { Store } from '../store/index.js';
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
    const push: ChannelPushOptions = {
      leaseMs: settings.push.leaseSeconds * 1000,
      maxPerPass: settings.push.maxPerPass,
      now: ctx.now,
    };
    const reservationTtlMs = settings.reservationTtlMinutes * 60_000;
    const metrics = inventoryMetrics(ctx);

    registerInventoryHandlers(ctx.engine, { rules, channels, push, now: ctx.now });
    ctx.services.stock = createStockReservations({
      rules,
      channels,
      push,
      reservationTtlMs,
      now: ctx.now,
    });
    for (const [id, connector] of connectors) {
      ctx.registerAction(
        id,
        'channel.availability',
        availabilityPerformer(connector, (action, c) =>
          refreshPush(ctx.store, id, action, c.idempotencyKey),
        ),
      );
    }
    ctx.onAcknowledged(AVAILABILITY_PROCESS, async (ack, tx) => {
      const lagMs = await acknowledgeAvailability(tx, ack, push);
      if (lagMs !== undefined) metrics.lag.labels(ack.destination).observe(lagMs / 1000);
    });

    const timers: NodeJS.Timeout[] = [];
    let stopped = false;
    let pumping = false;
    let pumpSeq = 0;
    const pump = async () => {
      if (pumping || stopped) return;
      pumping = true;
      try {
        const now = ctx.now();
        for (const channel of channels) {
          if (!(await hasDuePushes(ctx.store, channel, now))) continue;
          await ctx.engine.accept({
            source: 'middlemart',
            idempotencyKey: `inventory/push-due/${channel}/${now}/${pumpSeq++}`,
            requestHash: 'push-due',
            type: CHANNEL_PUSH_DUE_TYPE,
            partitionKey: `inventory-push/${channel}`,
            priority: 'standard',
            payload: { channel },
          });
        }
      } catch (err) {
        ctx.logger.warn({ err }, 'inventory push pump failed; retrying');
      } finally {
        pumping = false;
      }
    };
    let expiring = false;
    const expire = async () => {
      if (expiring || stopped) return;
      expiring = true;
      try {
        for (let i = 0; i < 20; i++) {
          const n = await expireDueReservations(ctx.store, { channels, rules, now: ctx.now() });
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
        }),
      ],
      startBackground() {
        if (channels.length > 0) {
          timers.push(setInterval(() => void pump(), settings.push.intervalMs));
        }
        timers.push(setInterval(() => void expire(), 1000));
        const every = settings.reconciliation.everyMinutes;
        if (every > 0) timers.push(setInterval(() => void reconcile(), every * 60_000));
        for (const t of timers) t.unref();
      },
      async stop() {
        stopped = true;
        for (const t of timers) clearInterval(t);
        for (let i = 0; i < 200 && (pumping || expiring || reconciling); i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
      },
    };
  },
};
