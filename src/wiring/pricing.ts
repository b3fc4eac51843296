// The pricing module: the price calendar's tables, the handlers of price submissions,
// `price.changed` events, the distribution tick and push acknowledgements; the `channel.price`
// performers and read-backs of commerce platforms, store systems and marketplace feeds
// (src/connectors/price-channels); the
// pricing routes; and, in the worker role, the distribution clock, the read-back verifier and
// the ERP's price file drop. See docs/pricing.md.
import { Counter, Gauge } from 'prom-client';
import { pricesRoutes, type PricesApi } from '../api/v1/prices.js';
import type { SystemConfig } from '../config/schema.js';
import {
  commercePriceChannel,
  feedPriceChannel,
  posPriceChannel,
} from '../connectors/price-channels/index.js';
import {
  PricingDesk,
  decideChange,
  listChanges,
  mismatches,
  priceAt,
  pricingMigrations,
  syncStateOf,
  verificationSummary,
  type ChannelPriceReader,
  type PriceTarget,
  type PushBudget,
  type SalesChannelName,
} from '../domains/pricing/index.js';
import type { FeatureModule } from './module.js';

const DEFAULT_CHANNELS: Record<string, SalesChannelName[]> = {
  shopify: ['web', 'mobile'],
  pos: ['store'],
  marketplace: ['marketplace'],
};

/** The systems prices go to, from `pricing.targets` or, without it, every selling system. */
export function priceTargets(
  systems: readonly SystemConfig[],
  configured:
    | ReadonlyArray<{
        system: string;
        channels?: SalesChannelName[] | undefined;
        storeGroups?: Record<string, string[]> | undefined;
      }>
    | undefined,
): { targets: PriceTarget[]; storesOf: Map<string, Record<string, string[]>> } {
  const byId = new Map(systems.map((s) => [s.id, s]));
  const storesOf = new Map<string, Record<string, string[]>>();
  const list =
    configured ?? systems.filter((s) => s.kind in DEFAULT_CHANNELS).map((s) => ({ system: s.id }));
  const targets: PriceTarget[] = [];
  for (const t of list) {
    const system = byId.get(t.system);
    if (!system) throw new Error(`pricing.targets: '${t.system}' is not a declared system`);
    if (!(system.kind in DEFAULT_CHANNELS)) {
      throw new Error(
        `pricing.targets: '${t.system}' is a ${system.kind} system; prices go to shopify, pos or marketplace systems`,
      );
    }
    const groups = 'storeGroups' in t && t.storeGroups ? t.storeGroups : {};
    storesOf.set(system.id, groups);
    targets.push({
      system: system.id,
      channels: ('channels' in t && t.channels) || DEFAULT_CHANNELS[system.kind]!,
      storeGroups: Object.keys(groups),
      scoped: system.kind === 'pos',
    });
  }
  return { targets, storesOf };
}

export const pricingModule: FeatureModule = {
  name: 'pricing',
  migrations: (dialect) => pricingMigrations(dialect),
  start(ctx) {
    const cfg = ctx.config.pricing;
    const { targets, storesOf } = priceTargets(ctx.config.systems, cfg.targets);
    const systems = new Map(ctx.config.systems.map((s) => [s.id, s]));
    const budgets = new Map<string, PushBudget>();
    const readers = new Map<string, ChannelPriceReader>();
    const listings = new Map<string, (sku: string) => boolean | undefined>();
    const listingRefreshers: Array<() => Promise<void>> = [];

    // Read-backs go through the gate, within the channel's call budget.
    const readerThroughGate =
      (
        id: string,
        read: (
          scope: string,
          skus: readonly string[],
          signal: AbortSignal | undefined,
        ) => ReturnType<ChannelPriceReader>,
      ): ChannelPriceReader =>
      async (scope, skus) => {
        let seen: Awaited<ReturnType<ChannelPriceReader>> | undefined;
        const outcome = await ctx.gate.attempt({
          destination: id,
          idempotencyKey: `price-readback/${ctx.now()}`,
          attempt: 1,
          send: async ({ signal }) => {
            seen = await read(scope, skus, signal);
            return { status: 200 };
          },
        });
        if (outcome.kind !== 'delivered' || !seen) {
          throw new Error(`read-back of ${id} not made (${outcome.kind})`);
        }
        return seen;
      };
    for (const target of targets) {
      const system = systems.get(target.system)!;
      budgets.set(system.id, {
        perSecond: system.limits.ratePerSecond,
        burst: system.limits.burst,
        maxInFlight: Math.max(system.limits.burst, system.limits.concurrency * 4),
      });
      if (system.kind === 'shopify') {
        const channel = commercePriceChannel({
          baseUrl: system.baseUrl,
          accessToken: String(system.credentials.accessToken ?? ''),
          ...(typeof system.settings.apiVersion === 'string'
            ? { apiVersion: system.settings.apiVersion }
            : {}),
          ...(typeof system.settings.currency === 'string'
            ? { currency: system.settings.currency }
            : {}),
        });
        ctx.registerAction(system.id, 'channel.price', channel.perform);
        listings.set(system.id, (sku) => channel.sells(sku));
        // The product list is read through the gate, within the shop's call budget.
        listingRefreshers.push(async () => {
          await ctx.gate.attempt({
            destination: system.id,
            idempotencyKey: `price-listing/${ctx.now()}`,
            attempt: 1,
            send: async ({ signal }) => {
              await channel.refreshListing(signal);
              return { status: 200 };
            },
          });
        });
        readers.set(
          system.id,
          readerThroughGate(system.id, (_scope, skus, signal) => channel.readPrices(skus, signal)),
        );
      } else if (system.kind === 'pos') {
        const groups = storesOf.get(system.id) ?? {};
        const channel = posPriceChannel({
          baseUrl: system.baseUrl,
          storesOf: (scope) => groups[scope],
          ...(typeof system.settings.priceBatchWindowMs === 'number'
            ? { batchWindowMs: system.settings.priceBatchWindowMs }
            : {}),
        });
        ctx.registerAction(system.id, 'channel.price', channel.perform);
        readers.set(
          system.id,
          readerThroughGate(system.id, (scope, skus, signal) =>
            channel.readPrices(scope, skus, signal),
          ),
        );
      } else if (system.kind === 'marketplace') {
        const path = system.settings.pricePath;
        const apiKey = system.credentials.apiKey;
        const channel = feedPriceChannel({
          system: system.id,
          baseUrl: system.baseUrl,
          ...(typeof path === 'string' ? { path } : {}),
          ...(apiKey ? { apiKey } : {}),
        });
        ctx.registerAction(system.id, 'channel.price', channel.perform);
        readers.set(
          system.id,
          readerThroughGate(system.id, (_scope, skus, signal) => channel.readPrices(skus, signal)),
        );
      }
    }

    const verifications = new Counter({
      name: 'middlemart_price_verifications_total',
      help: 'Prices read back from channels after distribution, by outcome (match, mismatch, not-listed, unreadable)',
      labelNames: ['channel', 'outcome'],
      registers: [ctx.metrics.registry],
    });
    const mismatchGauge = new Gauge({
      name: 'middlemart_price_mismatches',
      help: 'Prices a channel shows that differ from what it acknowledged, at the last read-back',
      labelNames: ['channel'],
      registers: [ctx.metrics.registry],
    });

    const desk = new PricingDesk({
      store: ctx.store,
      engine: ctx.engine,
      targets,
      rules: {
        maxDropPercent: cfg.approval.maxDropPercent,
        maxPromotionDiscountPercent: cfg.approval.maxPromotionDiscountPercent,
      },
      priority: cfg.priority,
      leadTimeMs: cfg.leadTimeMs,
      tickIntervalMs: cfg.tickIntervalMs,
      budgets,
      listings,
      now: ctx.now,
      ...(cfg.verification.enabled
        ? {
            verification: {
              intervalMs: cfg.verification.intervalMs,
              delayMs: cfg.verification.delayMs,
              readers,
              onChecked: async (target, outcomes) => {
                for (const [outcome, n] of Object.entries(outcomes)) {
                  if (n > 0) verifications.inc({ channel: target, outcome }, n);
                }
                const s = await verificationSummary(ctx.store, target);
                mismatchGauge.set({ channel: target }, s.mismatched);
              },
            },
          }
        : {}),
      ...(cfg.fileDrop.dir
        ? { fileDrop: { dir: cfg.fileDrop.dir, pollIntervalMs: cfg.fileDrop.pollIntervalMs } }
        : {}),
      onError: (where, err) => ctx.logger.warn({ err, where }, 'pricing background work failed'),
    });
    desk.registerHandlers();
    ctx.onAcknowledged('price', (ack, tx) => desk.acknowledge(ack, tx));
    for (const t of targets) mismatchGauge.set({ channel: t.system }, 0);

    const api: PricesApi = {
      maxChanges: 5000,
      submit: (req) => desk.submit(req),
      listChanges: (filter) => listChanges(ctx.store, filter),
      async decide(id, d) {
        const outcome = await ctx.store.transaction((tx) =>
          decideChange(tx, id, {
            approve: d.approve,
            by: d.actor,
            reason: d.reason,
            now: ctx.now(),
            targets,
          }),
        );
        if (outcome.ok) {
          await ctx.audit({
            actor: d.actor,
            action: d.approve ? 'price.approve' : 'price.reject',
            target: id,
            remote: d.remote,
            detail: { reason: d.reason, sku: outcome.change.sku },
          });
          if (!d.approve) {
            ctx.logger.info(
              { change: id, sku: outcome.change.sku, reason: d.reason },
              'price change rejected',
            );
          }
          void desk.requestTick().catch(() => undefined);
        }
        return outcome;
      },
      async priceAt(q) {
        const target =
          desk.targets.get(q.channel) ??
          [...desk.targets.values()].find((t) =>
            t.channels.includes(q.channel as SalesChannelName),
          );
        if (!target) {
          return {
            ok: false,
            errors: [
              {
                path: 'querystring.channel',
                message: `not a price channel (channels: ${[...desk.targets.keys()].join(', ') || 'none'})`,
              },
            ],
          };
        }
        let scope = '';
        if (target.scoped && target.storeGroups.length > 0) {
          if (!q.storeGroup || !target.storeGroups.includes(q.storeGroup)) {
            return {
              ok: false,
              errors: [
                {
                  path: 'querystring.storeGroup',
                  message: `${target.system} prices by store group: one of ${target.storeGroups.join(', ')}`,
                },
              ],
            };
          }
          scope = q.storeGroup;
        }
        const { price } = await priceAt(ctx.store, target, scope, q.sku, q.at);
        const sync = await syncStateOf(ctx.store, target.system, scope, q.sku);
        return { ok: true, system: target.system, scope, price, sync };
      },
      async verification() {
        const out = [];
        for (const t of desk.targets.keys()) {
          out.push({
            ...(await verificationSummary(ctx.store, t)),
            mismatches: await mismatches(ctx.store, t, 100),
          });
        }
        return out;
      },
    };

    let listingTimer: NodeJS.Timeout | undefined;
    const refreshListings = () => {
      void Promise.allSettled(listingRefreshers.map((r) => r())).then(() => {
        if (listingTimer !== undefined) listingTimer = setTimeout(refreshListings, 60_000);
      });
    };
    return {
      routes: [pricesRoutes(api)],
      startBackground: () => {
        listingTimer = setTimeout(refreshListings, 0);
        desk.start();
      },
      stop: async () => {
        if (listingTimer !== undefined) clearTimeout(listingTimer);
        listingTimer = undefined;
        await desk.stop();
      },
    };
  },
};
