// The composition root: the one place that builds Middlemart from an estate config. It opens the
// store, builds the durable engine and its delivery gate from the systems' limits, wires the
// canonical event catalogue into the HTTP API, and (in the embedded default) runs the sandbox
// estate beside it. Nothing else constructs a store, an engine or a server.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { API_KEY_MIGRATIONS, apiKeyAuthenticator } from './api/auth/api-keys.js';
import { combinedAuthenticator, jwtAuthenticator } from './api/auth/jwt.js';
import type { JwtOptions } from './api/auth/jwt.js';
import { DEFAULT_RATE_TIERS } from './api/limits.js';
import type { RateTier } from './api/limits.js';
import { buildServer } from './api/server.js';
import type { DescribedEvent, RejectedEvent } from './api/types.js';
import { catalogue, eventByName, eventByType, parseEvent } from './canonical/index.js';
import { packageVersion } from './config/package-root.js';
import type { EstateConfig } from './config/schema.js';
import { createLogger } from './observability/logger.js';
import { createTracing, tracedHandler, tracedSender } from './observability/tracing.js';
import type { Tracing } from './observability/tracing.js';
import { createMetrics } from './observability/metrics.js';
import type { Metrics } from './observability/metrics.js';
import { createEngine } from './runtime/index.js';
import type { Engine, MessageHandler, PriorityClass, Sender } from './runtime/index.js';
import { createDeliveryGate } from './runtime/delivery/index.js';
import type { DeliveryGate } from './runtime/delivery/index.js';
import { openStore } from './store/index.js';
import type { Migration, Store } from './store/index.js';
import { appendAudit } from './api/auth/audit.js';
import { SYSTEM_ACKNOWLEDGED_TYPE, SYSTEM_REFUSED_TYPE } from './ports/system-actions.js';
import { AcknowledgementRouter, ActionRegistry, MODULES } from './wiring/index.js';
import { RefusalRouter } from './wiring/actions.js';
import { destinationPolicies } from './wiring/policies.js';
import { engineSealing } from './wiring/customers.js';

export { destinationPolicies };
import type { FeatureModule, MessageObserver, ModuleInstance, Services } from './wiring/index.js';
import { Counter } from 'prom-client';
import { residencyRefusal } from './config/sections/residency.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Describes a body for the generic ingest: validates it against the catalogue and gives its
 * partition key and priority class. The class comes from the configured overrides, else the
 * catalogue; a caller's own `priority` extension cannot lift its event above that.
 */
export function eventDescriber(
  priorities: Readonly<Record<string, PriorityClass>>,
): (body: unknown) => DescribedEvent | RejectedEvent {
  return (body) => {
    const parsed = parseEvent(body);
    if (!parsed.ok) {
      return {
        ok: false,
        errors: parsed.issues.map((i) => ({ path: i.path, message: i.message })),
      };
    }
    const event = parsed.value;
    const entry = eventByType(event.type);
    const name = entry?.name ?? event.type;
    const priority = priorities[name] ?? entry?.priority ?? 'standard';
    return {
      ok: true,
      type: event.type,
      partitionKey: event.partitionkey ?? event.id,
      priority,
      source: event.source,
    };
  };
}

export interface AppOptions {
  /** The resolved estate config (env references already substituted). */
  config: EstateConfig;
  logger?: Logger;
  /** Overrides `server.port` (0 = ephemeral; tests use it). */
  port?: number;
  /** Overrides `store.url` (and MIDDLEMART_DATABASE_URL, already applied by config loading). */
  storeUrl?: string;
  /** Rate limits per SLA tier of API keys; default standard 50 req/s, premium 500 req/s. */
  rateTiers?: Readonly<Record<string, RateTier>>;
  /** Also accept OAuth2/OIDC bearer JWTs verified against this JWKS (API keys always work). */
  jwt?: JwtOptions;
  /** The feature modules to run; default `MODULES` (src/wiring/index.ts). */
  modules?: readonly FeatureModule[];
  /** Epoch ms clock handed to modules (default Date.now). */
  now?: () => number;
  /** OpenTelemetry tracing; default from the environment (`OTEL_EXPORTER_OTLP_ENDPOINT`). */
  tracing?: Tracing;
  /** The file `config` was read from: modules watch it for changes they apply live (routing). */
  configFile?: string;
}

export interface App {
  readonly config: EstateConfig;
  readonly store: Store;
  readonly engine: Engine;
  readonly gate: DeliveryGate;
  readonly server: FastifyInstance | undefined;
  /** The API's base URL when the `api` role runs. */
  readonly url: string | undefined;
  readonly logger: Logger;
  /** The Prometheus registry behind `/metrics`. */
  readonly metrics: Metrics;
  /** What the modules offer each other (ERP ports, routing, stock, customers). */
  readonly services: Services;
  /** Stops accepting, finishes in-flight work, closes the store. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Every layer's own tables beyond the engine's: the experience layer's (API keys, audit log;
 * versions 1000+, ADR 0008) and each feature module's (inventory 2000+, ADR 0009, …). Applied
 * at start and by `middlemart migrate`.
 */
export function applicationMigrations(
  dialect: 'sqlite' | 'postgres',
  modules: readonly FeatureModule[] = MODULES,
): Migration[] {
  return [...API_KEY_MIGRATIONS, ...modules.flatMap((m) => m.migrations?.(dialect) ?? [])];
}

/** Builds and starts Middlemart from an estate config. */
export async function startApp(opts: AppOptions): Promise<App> {
  const { config } = opts;
  const logger = opts.logger ?? createLogger({ name: 'middlemart' });
  const roles = new Set(config.engine.roles);
  const modules = opts.modules ?? MODULES;
  const now = opts.now ?? Date.now;
  const tracing = opts.tracing ?? createTracing({ serviceVersion: packageVersion() });

  const store = await openStore(opts.storeUrl ?? config.store.url);
  try {
    await store.migrate(applicationMigrations(store.dialect, modules));
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  const gate = createDeliveryGate(destinationPolicies(config.systems));
  // Engine payloads are sealed with the PII key when one is configured (ADR 0018).
  let sealing: ReturnType<typeof engineSealing>;
  try {
    sealing = engineSealing({
      config,
      env: process.env,
      storeDescription: store.description,
      dialect: store.dialect,
      logger: logger.child({ component: 'engine' }),
    });
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  const engine = createEngine({
    ...sealing,
    store,
    gate,
    workers: config.engine.workers,
    // The gate applies each system's `retry.maxAttempts`; the engine's own cap must not be lower.
    deliveryMaxAttempts: Math.max(25, ...config.systems.map((s) => s.retry.maxAttempts)),
    leaseMs: config.engine.leaseSeconds * 1000,
    idempotencyWindowMs: config.store.retention.idempotencyKeysDays * DAY_MS,
    retention: {
      completedMs: config.store.retention.completedMessagesDays * DAY_MS,
      deadLettersMs: config.store.retention.deadLettersDays * DAY_MS,
    },
    backpressure: {
      deferrableBacklogLimit: config.engine.backpressure.deferrableBacklogLimit,
    },
    logger: logger.child({ component: 'engine' }),
  });

  const metrics = createMetrics({ engine, circuits: () => gate.statuses() });

  // Feature modules register their handlers, senders and services first. Handlers are collected
  // and registered once every module has started, so observers see every canonical event.
  const handlers = new Map<string, MessageHandler>();
  const observers: MessageObserver[] = [];
  // What modules see of the engine: its own methods, except that handlers are collected here and
  // senders are traced. A proxy, not a prototype-linked copy: every other method runs on the
  // engine itself, so the state it writes (back-pressure figures, say) is the engine's.
  const moduleOwn: Partial<Engine> = {
    registerHandler: (type: string, handler: MessageHandler) => {
      if (handlers.has(type)) throw new Error(`a handler for ${type} is already registered`);
      handlers.set(type, handler);
    },
    registerSender: (destination: string, sender: Sender) =>
      engine.registerSender(destination, tracedSender(tracing, destination, sender)),
  };
  // Methods are bound once (modules call `accept` on every request).
  const bound = new Map<PropertyKey, unknown>();
  const moduleEngine = new Proxy(engine, {
    get(target, prop) {
      if (prop === 'registerHandler' || prop === 'registerSender') return moduleOwn[prop];
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      let method = bound.get(prop);
      if (method === undefined) {
        method = (value as () => unknown).bind(target);
        bound.set(prop, method);
      }
      return method;
    },
  });
  const acknowledgements = new AcknowledgementRouter();
  const refusals = new RefusalRouter();
  const actions = new ActionRegistry();
  const services: Services = { erps: new Map() };
  const instances: ModuleInstance[] = [];
  try {
    for (const module of modules) {
      instances.push(
        await module.start({
          config,
          ...(opts.configFile ? { configFile: opts.configFile } : {}),
          store,
          engine: moduleEngine,
          gate,
          logger: logger.child({ module: module.name }),
          metrics,
          services,
          onAcknowledged: (process, handler) => acknowledgements.on(process, handler),
          onRefused: (process, handler) => refusals.on(process, handler),
          observe: (observer) => observers.push(observer),
          registerAction: (destination, action, performer) =>
            actions.register(destination, action, performer),
          audit: (entry) => appendAudit(store, entry, now()),
          now,
        }),
      );
    }
  } catch (err) {
    metrics.close();
    await store.close().catch(() => undefined);
    throw err;
  }
  moduleEngine.registerHandler(SYSTEM_ACKNOWLEDGED_TYPE, acknowledgements.handler);
  moduleEngine.registerHandler(SYSTEM_REFUSED_TYPE, refusals.handler);
  // Canonical events that no process handles are complete once durably accepted (and observed):
  // they stay readable for the retention window.
  for (const entry of catalogue) {
    if (!handlers.has(entry.type)) handlers.set(entry.type, async () => undefined);
  }
  const canonicalTypes = new Set<string>(catalogue.map((e) => e.type));
  for (const [type, handler] of handlers) {
    if (!canonicalTypes.has(type) || observers.length === 0) {
      engine.registerHandler(type, tracedHandler(tracing, type, handler));
      continue;
    }
    const observed: MessageHandler = async (message, tx) => {
      await handler(message, tx);
      for (const observer of observers) await observer(message, tx);
    };
    engine.registerHandler(type, tracedHandler(tracing, type, observed));
  }
  const residencyRefusals = new Counter({
    name: 'middlemart_residency_refusals_total',
    help: "Deliveries refused because the system's region may not hold the customer's data",
    labelNames: ['destination', 'action'],
    registers: [metrics.registry],
  });
  const systemRegions = new Map(config.systems.map((s) => [s.id, s.region]));
  actions.registerSenders(moduleEngine, {
    now,
    residency: (destination, customerRegion) =>
      residencyRefusal(config.residency, customerRegion, {
        id: destination,
        region: systemRegions.get(destination),
      }),
    onResidencyRefusal: (destination, action) => residencyRefusals.inc({ destination, action }),
  });

  let server: FastifyInstance | undefined;
  let url: string | undefined;
  try {
    if (roles.has('worker')) {
      engine.start();
      for (const instance of instances) instance.startBackground?.();
    }
    if (roles.has('api')) {
      const jwt: JwtOptions | undefined =
        opts.jwt ??
        (config.server.jwt
          ? {
              jwksUrl: config.server.jwt.jwksUrl,
              issuer: config.server.jwt.issuer,
              audience: config.server.jwt.audience,
              ...(config.server.jwt.rolesClaim ? { rolesClaim: config.server.jwt.rolesClaim } : {}),
              ...(config.server.jwt.tierClaim ? { tierClaim: config.server.jwt.tierClaim } : {}),
              ...(config.server.jwt.clockToleranceSeconds !== undefined
                ? { clockToleranceSeconds: config.server.jwt.clockToleranceSeconds }
                : {}),
            }
          : undefined);
      const priorities = resolvePriorities(config.priorities);
      server = await buildServer(
        {
          ready: () =>
            store.ping().then(
              () => true,
              () => false,
            ),
          accept: (req) => engine.accept(req),
          describeEvent: eventDescriber(priorities),
          authenticate: combinedAuthenticator(
            apiKeyAuthenticator(store),
            jwt ? jwtAuthenticator(jwt) : undefined,
          ),
          keyStore: store,
          metrics,
          tracing,
          ops: {
            deadLetters: engine.deadLetters,
            stats: () => engine.stats(),
            circuits: () => gate.statuses(),
          },
        },
        {
          rateTiers: opts.rateTiers ?? config.server.rateTiers ?? DEFAULT_RATE_TIERS,
          version: packageVersion(),
          logger: logger as unknown as FastifyBaseLogger,
          bodyLimitBytes: config.server.bodyLimitBytes,
          host: config.server.host,
          port: opts.port ?? config.server.port,
          routes: instances.flatMap((i) => i.routes ?? []),
        },
      );
      const address = server.server.address();
      if (address && typeof address === 'object') {
        const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
        url = `http://${host}:${address.port}`;
      }
    }
  } catch (err) {
    metrics.close();
    for (const instance of instances) await instance.stop?.().catch(() => undefined);
    await engine.stop().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw err;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (server?.server.listening) await server.close();
      for (const instance of instances) await instance.stop?.().catch(() => undefined);
      await engine.stop();
      metrics.close();
      await tracing.shutdown().catch(() => undefined);
      await store.close();
    })();
    return stopping;
  };

  return { config, store, engine, gate, server, url, logger, metrics, services, stop };
}

/** Priority overrides keyed by catalogue name, checked against the catalogue. */
function resolvePriorities(
  overrides: Readonly<Record<string, PriorityClass>>,
): Record<string, PriorityClass> {
  const out: Record<string, PriorityClass> = {};
  for (const [name, cls] of Object.entries(overrides)) {
    if (!eventByName(name)) throw new Error(`priorities: unknown event ${name}`);
    out[name] = cls;
  }
  return out;
}
