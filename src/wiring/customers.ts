// The customers module: golden records, matching, consent, stewardship and the 360 view. It owns
// migrations 3000+, handles `customer.created`, `customer.updated` and `consent.changed` from any
// source (plus its own stewardship messages), offers `services.customers` (the resolver the order
// process uses), and serves /v1/customers and /v1/stewardship. The PII key comes from
// MIDDLEMART_PII_KEY, a key file, or (embedded default only) is generated beside the database.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { Gauge } from 'prom-client';
import { customerRoutes } from '../api/v1/customers.js';
import { stewardshipRoutes } from '../api/v1/stewardship.js';
import { eventByName, type EventName } from '../canonical/index.js';
import { createCustomerSources } from '../connectors/customer360/index.js';
import {
  CUSTOMER_ATTRIBUTES,
  Customer360,
  CustomerDirectory,
  customerMigrations,
  decodePiiKey,
  PiiVault,
  STEWARDSHIP_DECIDED_TYPE,
  StewardshipQueries,
  UNMERGE_REQUESTED_TYPE,
  type CustomerAttribute,
  type PiiKeys,
} from '../domains/customers/index.js';
import { createMatcher, defaultParameters } from '../domains/customers/matching/index.js';
import { normaliseCustomer } from '../domains/customers/normalise.js';
import type { EstateConfig } from '../config/schema.js';
import { createPayloadSealer, type EngineOptions } from '../runtime/index.js';
import type { FeatureModule } from './module.js';

export const PII_KEY_ENV = 'MIDDLEMART_PII_KEY';
/** Comma-separated base64 keys of earlier rotations, still used to open older values. */
export const PII_PREVIOUS_KEYS_ENV = 'MIDDLEMART_PII_PREVIOUS_KEYS';
/** Pins the blind-index key (base64, 32 bytes) across key rotations. */
export const PII_INDEX_KEY_ENV = 'MIDDLEMART_PII_INDEX_KEY';

interface PiiKeySources {
  env: NodeJS.ProcessEnv;
  keyFile?: string;
  storeDescription: string;
  dialect: 'sqlite' | 'postgres';
  logger?: Pick<Logger, 'info' | 'warn'>;
}

/**
 * The PII keys: MIDDLEMART_PII_KEY, else the configured key file, else (SQLite only) `pii.key`
 * beside the database, generated with mode 0600 on first start.
 */
export function loadPiiKeys(opts: PiiKeySources): PiiKeys {
  const keys = configuredPiiKeys(opts);
  if (!keys) {
    throw new Error(
      `customer data is stored encrypted: set ${PII_KEY_ENV} (base64, 32 bytes) or customers.pii.keyFile; every process must use the same key`,
    );
  }
  return keys;
}

/**
 * The PII keys as loadPiiKeys finds them, or undefined when none is configured (PostgreSQL or an
 * in-memory SQLite store without MIDDLEMART_PII_KEY or a key file). A key that is configured
 * but unusable is an error.
 */
export function configuredPiiKeys(opts: PiiKeySources): PiiKeys | undefined {
  const previous = (opts.env[PII_PREVIOUS_KEYS_ENV] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((k, i) => decodePiiKey(k, `${PII_PREVIOUS_KEYS_ENV}[${i}]`));
  const indexRaw = opts.env[PII_INDEX_KEY_ENV];
  const extra = {
    ...(previous.length > 0 ? { previous } : {}),
    ...(indexRaw ? { index: decodePiiKey(indexRaw, PII_INDEX_KEY_ENV) } : {}),
  };
  const fromEnv = opts.env[PII_KEY_ENV];
  if (fromEnv) return { current: decodePiiKey(fromEnv, PII_KEY_ENV), ...extra };
  if (opts.keyFile) {
    if (!existsSync(opts.keyFile)) {
      throw new Error(`customers.pii.keyFile ${opts.keyFile} does not exist`);
    }
    return { current: decodePiiKey(readFileSync(opts.keyFile, 'utf8'), opts.keyFile), ...extra };
  }
  const path = opts.storeDescription.replace(/^sqlite:/, '');
  if (opts.dialect !== 'sqlite' || path === ':memory:') return undefined;
  const file = join(dirname(path), 'pii.key');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const key = randomBytes(32);
    try {
      writeFileSync(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
      opts.logger?.info(
        { keyFile: file },
        `generated the PII key (mode 0600); keep a copy: without it the stored customer data cannot be read. Set ${PII_KEY_ENV} to use your own`,
      );
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return { current: decodePiiKey(readFileSync(file, 'utf8'), file), ...extra };
}

/**
 * Canonical events whose payloads carry personal data: sealed at rest in the engine, with what
 * their handlers emit and deliver (ADR 0018). Reference data (stock, prices, products) is not.
 */
export const PERSONAL_DATA_EVENTS: readonly EventName[] = [
  'customer.created',
  'customer.updated',
  'customer.merged',
  'consent.changed',
  'order.created',
  'order.updated',
  'order.status_changed',
  'order.cancelled',
  'order.fulfilled',
  'order.posted',
  'return.requested',
  'return.completed',
  'shipment.confirmed',
  'loyalty.accrued',
  'loyalty.reversed',
  'loyalty.redeemed',
];

/**
 * The engine's payload sealing (ADR 0018), from the PII key configuration: the sealer and its
 * scope, or nothing (payloads in clear, as before) when no key is configured. Logged once.
 */
export function engineSealing(opts: {
  config: EstateConfig;
  env: NodeJS.ProcessEnv;
  storeDescription: string;
  dialect: 'sqlite' | 'postgres';
  logger?: Pick<Logger, 'info' | 'warn'>;
}): Pick<EngineOptions, 'sealer' | 'sealScope' | 'personalDataTypes'> {
  const pii = opts.config.customers.pii;
  const keys = configuredPiiKeys({
    env: opts.env,
    ...(pii.keyFile ? { keyFile: pii.keyFile } : {}),
    storeDescription: opts.storeDescription,
    dialect: opts.dialect,
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  // The engine logs once which payloads it seals (or that it keeps them in clear).
  if (!keys) return {};
  const sealer = createPayloadSealer({
    current: keys.current,
    ...(keys.previous ? { previous: keys.previous } : {}),
  });
  return {
    sealer,
    sealScope: pii.enginePayloads,
    personalDataTypes: PERSONAL_DATA_EVENTS.map((name) => eventByName(name).type),
  };
}

const ERP_KINDS = ['rest-erp', 'soap-erp', 'tryton'];

/**
 * The system kinds that keep the account attributes: when the config names no owner for one,
 * the one declared system of those kinds owns it (none when there are several: say which).
 */
export const DEFAULT_OWNER_KINDS: Readonly<Partial<Record<CustomerAttribute, readonly string[]>>> =
  {
    legalName: ERP_KINDS,
    taxId: ERP_KINDS,
    paymentTerms: ERP_KINDS,
    creditLimit: ERP_KINDS,
    preferences: ['crm'],
    segments: ['crm'],
    loyaltyTier: ['loyalty'],
    loyaltyPoints: ['loyalty'],
  };

/**
 * Who owns each attribute: `customers.ownership`, else `fieldOwnership.customer`, else (account
 * attributes only) the one declared system of the kind that keeps it (DEFAULT_OWNER_KINDS).
 */
export function attributeOwnership(
  config: EstateConfig,
): Partial<Record<CustomerAttribute, string>> {
  const out: Partial<Record<CustomerAttribute, string>> = {};
  const general = config.fieldOwnership.customer ?? {};
  for (const attr of CUSTOMER_ATTRIBUTES) {
    let owner = config.customers.ownership[attr] ?? general[attr];
    const kinds = DEFAULT_OWNER_KINDS[attr];
    if (!owner && kinds) {
      const candidates = config.systems.filter((s) => kinds.includes(s.kind));
      if (candidates.length === 1) owner = candidates[0]!.id;
    }
    if (owner) out[attr] = owner;
  }
  return out;
}

/** System kinds that keep customer identities, and so are sent `customer.sync` by default. */
export const CUSTOMER_HOLDER_KINDS: ReadonlySet<string> = new Set([
  'crm',
  'loyalty',
  'shopify',
  'marketplace',
  'rest-erp',
  'soap-erp',
  'tryton',
]);

/** The systems sent `customer.sync`; names in the section must be declared systems. */
export function syncSystems(config: EstateConfig): Set<string> {
  const declared = new Set(config.systems.map((s) => s.id));
  const cfg = config.customers;
  const named: Array<[string, string]> = [
    ...Object.entries(cfg.ownership).map(([attr, id]): [string, string] => [
      `customers.ownership.${attr}`,
      id,
    ]),
    ...cfg.sourceTrust.map((id, i): [string, string] => [`customers.sourceTrust[${i}]`, id]),
    ...(cfg.syncTo ?? []).map((id, i): [string, string] => [`customers.syncTo[${i}]`, id]),
  ];
  for (const [path, id] of named) {
    if (!declared.has(id)) {
      throw new Error(
        `${path}: '${id}' is not a declared system (declared: ${[...declared].join(', ') || 'none'})`,
      );
    }
  }
  return new Set(
    cfg.syncTo ?? config.systems.filter((s) => CUSTOMER_HOLDER_KINDS.has(s.kind)).map((s) => s.id),
  );
}

export const customersModule: FeatureModule = {
  name: 'customers',
  migrations: (dialect) => customerMigrations(dialect),
  start(ctx) {
    const cfg = ctx.config.customers;
    const holders = syncSystems(ctx.config);
    const vault = new PiiVault(
      loadPiiKeys({
        env: process.env,
        ...(cfg.pii.keyFile ? { keyFile: cfg.pii.keyFile } : {}),
        storeDescription: ctx.store.description,
        dialect: ctx.store.dialect,
        logger: ctx.logger,
      }),
    );
    const base = defaultParameters();
    const matcher = createMatcher({
      ...base,
      thresholds: {
        link: cfg.matching.link ?? base.thresholds.link,
        review: cfg.matching.review ?? base.thresholds.review,
      },
    });
    const normaliseOptions = cfg.defaultCountry ? { defaultCountry: cfg.defaultCountry } : {};
    const directory = new CustomerDirectory({
      vault,
      matcher,
      normalise: (fields) => normaliseCustomer(fields, normaliseOptions),
      policy: { ownership: attributeOwnership(ctx.config), sourceTrust: cfg.sourceTrust },
      defaultRegion: cfg.defaultRegion,
      syncSystems: holders,
      maxCandidates: cfg.matching.maxCandidates,
      now: () => ctx.now(),
    });
    const { engine } = ctx;
    engine.registerHandler(eventByName('customer.created').type, directory.onCustomerEvent);
    engine.registerHandler(eventByName('customer.updated').type, directory.onCustomerEvent);
    engine.registerHandler(eventByName('consent.changed').type, directory.onConsentChanged);
    engine.registerHandler(STEWARDSHIP_DECIDED_TYPE, directory.onStewardshipDecided);
    engine.registerHandler(UNMERGE_REQUESTED_TYPE, directory.onUnmergeRequested);
    ctx.services.customers = { resolve: (tx, ref) => directory.resolve(tx, ref) };

    const sources = createCustomerSources({
      systems: ctx.config.systems.map((s) => ({
        id: s.id,
        kind: s.kind,
        baseUrl: s.baseUrl,
        credentials: s.credentials as Record<string, string>,
        settings: s.settings,
      })),
      cacheTtlMs: cfg.customer360.cacheTtlMs,
    });
    const view360 = new Customer360({
      sources,
      timeoutMs: cfg.customer360.timeoutMs,
      recentOrders: cfg.customer360.recentOrders,
    });
    const queries = new StewardshipQueries(directory);
    const accept = engine.accept.bind(engine);
    // Identity health for operators: match decisions by outcome (link, review, new …) and the
    // stewardship backlog, read from the store at scrape time (so every process reports all).
    const store = ctx.store;
    new Gauge({
      name: 'middlemart_customer_match_decisions',
      help: 'Customer match decisions recorded, by decision (review = ambiguous, sent to stewardship)',
      labelNames: ['decision'],
      registers: [ctx.metrics.registry],
      async collect() {
        const rows = await store
          .query<{ decision: string; n: number | string }>(
            'SELECT decision, COUNT(*) AS n FROM customer_match_decisions GROUP BY decision',
          )
          .catch(() => undefined);
        this.reset();
        for (const r of rows ?? []) this.set({ decision: r.decision }, Number(r.n));
      },
    });
    new Gauge({
      name: 'middlemart_stewardship_backlog',
      help: 'Stewardship tasks waiting for a decision, and the age of the oldest in seconds',
      labelNames: ['measure'],
      registers: [ctx.metrics.registry],
      async collect() {
        const rows = await store
          .query<{ n: number | string; oldest: number | string | null }>(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM customer_stewardship_tasks WHERE status = 'open'",
          )
          .catch(() => undefined);
        this.reset();
        const r = rows?.[0];
        if (!r) return;
        this.set({ measure: 'open' }, Number(r.n));
        this.set(
          { measure: 'oldest_age_seconds' },
          r.oldest === null ? 0 : Math.max(0, (ctx.now() - Number(r.oldest)) / 1000),
        );
      },
    });
    return {
      routes: [
        customerRoutes({
          accept,
          vault,
          directory,
          queries,
          view360,
          db: ctx.store,
          defaultRegion: cfg.defaultRegion,
          ...(cfg.defaultCountry ? { defaultCountry: cfg.defaultCountry } : {}),
        }),
        stewardshipRoutes({ accept, queries, db: ctx.store, audit: (e) => ctx.audit(e) }),
      ],
    };
  },
};
