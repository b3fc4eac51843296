// The schema of the estate configuration (`middlemart.yaml`): which systems exist, how to reach
// them, how hard they may be called, where transactions go and who owns which field.
// Every object is strict (an unknown key is an error) and everything optional has a default, so
// a minimal file is `version: 1` plus the systems of the estate.
import { z } from 'zod';
import { catalogue } from '../canonical/events.js';
import { sqlitePath } from '../store/url.js';
import { suggest } from './suggest.js';
import { CustomersConfigSchema } from './sections/customers.js';
import { InventoryConfigSchema } from './sections/inventory.js';
import { OrdersConfigSchema } from './sections/orders.js';
import { PricingConfigSchema } from './sections/pricing.js';
import { ResidencyConfigSchema } from './sections/residency.js';
import { WebhooksConfigSchema } from './sections/webhooks.js';

/** The kinds of system a connector exists for. */
export const SYSTEM_KINDS = [
  'rest-erp',
  'soap-erp',
  'tryton',
  'shopify',
  'pos',
  'crm',
  'loyalty',
  'wms',
  'tax',
  'notification',
  'marketplace',
] as const;
export type SystemKind = (typeof SYSTEM_KINDS)[number];

export const PRIORITY_CLASS_NAMES = ['critical', 'standard', 'deferrable'] as const;
export const ENGINE_ROLES = ['api', 'worker'] as const;

/**
 * Credential keys that identify rather than authenticate, so they may be written literally.
 * Every other credential value must be an environment reference.
 */
export const NON_SECRET_CREDENTIAL_KEYS: readonly string[] = [
  'clientId',
  'username',
  'user',
  'accountId',
  'tenantId',
  'companyId',
  'database',
  'realm',
  'scope',
  'audience',
  'shopDomain',
];

/** One whole environment reference: `${NAME}`. */
export const ENV_REF_WHOLE = /^\$\{([A-Z_][A-Z0-9_]*)\}$/;
/** Well-formed environment references anywhere in a string. */
export const ENV_REF_GLOBAL = /\$\{([A-Z_][A-Z0-9_]*)\}/g;

/**
 * Finds a malformed reference in a string: a `${` that does not open a well-formed `${NAME}`.
 * Returns the offending fragment, or undefined when every reference is well formed.
 */
export function malformedEnvRef(value: string): string | undefined {
  let from = 0;
  for (;;) {
    const at = value.indexOf('${', from);
    if (at < 0) return undefined;
    const close = value.indexOf('}', at);
    const fragment = close < 0 ? value.slice(at) : value.slice(at, close + 1);
    if (!ENV_REF_WHOLE.test(fragment)) return fragment;
    from = close + 1;
  }
}

export function hasEnvRef(value: string): boolean {
  return value.includes('${');
}

/** Where `${NAME}` references are resolved; anywhere else they are an error. */
export const ENV_REF_PLACES = [
  'store.url',
  'systems[].baseUrl',
  'systems[].credentials',
  'systems[].settings',
] as const;

/** True when `path` (keys and indexes) is one of {@link ENV_REF_PLACES}. */
export function envRefAllowedAt(path: readonly (string | number)[]): boolean {
  const [a, b, c, d] = path;
  if (a === 'store') return b === 'url' && path.length === 2;
  if (a !== 'systems' || typeof b !== 'number') return false;
  if (c === 'baseUrl') return path.length === 3;
  return (c === 'credentials' || c === 'settings') && typeof d === 'string' && path.length === 4;
}

/** `cloud-erp` + `clientSecret` → `CLOUD_ERP_CLIENT_SECRET`: the reference we suggest. */
export function suggestedEnvName(systemId: string, key: string): string {
  const words = `${systemId}_${key}`
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return words.toUpperCase();
}

function envRefMessage(fragment: string): string {
  return `malformed environment reference '${fragment}': write \${NAME} with A-Z, 0-9 and _`;
}

const EVENT_NAME = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*\.[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
const SYSTEM_ID = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const REGION = /^[a-z]{2}(?:-[a-z0-9]+)*$/;
const COUNTRY = /^[A-Z]{2}$/;
const IDENTIFIER = /^[a-z][A-Za-z0-9]*$/;

export const EventName = z
  .string()
  .regex(EVENT_NAME, 'event names look like domain.event_name, e.g. order.created');
export const SystemId = z
  .string()
  .regex(SYSTEM_ID, "system ids are lower-case words joined by '-', e.g. cloud-erp");
export const Region = z
  .string()
  .regex(REGION, 'regions are lower-case codes such as eu, us or ap-southeast');

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

/** True for an absolute http(s) URL. */
export function isHttpUrl(value: string): boolean {
  try {
    const u = new URL(value);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

export type StoreLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/**
 * Reads a store url: `sqlite:<path>` (`sqlite::memory:` for in-memory; options after `?` as the
 * store reads them, e.g. `?writer=thread`) or `postgres://…`.
 */
export function parseStoreUrl(url: string): StoreLocation | { error: string } {
  if (url.startsWith('sqlite:')) {
    try {
      return { kind: 'sqlite', path: sqlitePath(url) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    try {
      const u = new URL(url);
      if (u.hostname === '') return { error: 'postgres store url needs a host' };
      return { kind: 'postgres', url };
    } catch {
      return { error: 'malformed postgres url' };
    }
  }
  return { error: "store url must be 'sqlite:<path>' or 'postgres://user@host:port/database'" };
}

/** A string that may carry `${NAME}` references; checked for well-formed references only. */
const withEnvRefs = () =>
  z.string().superRefine((value, ctx) => {
    const bad = malformedEnvRef(value);
    if (bad !== undefined) ctx.addIssue({ code: 'custom', message: envRefMessage(bad) });
  });

const StoreUrl = withEnvRefs().superRefine((value, ctx) => {
  if (hasEnvRef(value)) return; // checked again once resolved
  const parsed = parseStoreUrl(value);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
});

const BaseUrl = withEnvRefs().superRefine((value, ctx) => {
  if (hasEnvRef(value)) return; // checked again once resolved
  if (!isHttpUrl(value)) {
    ctx.addIssue({
      code: 'custom',
      message: `'${value}' is not a valid http(s) URL, e.g. https://erp.example.com`,
    });
  }
});

const RateTierConfig = z.strictObject({ requestsPerSecond: z.number().positive() });

const JwtConfig = z.strictObject({
  /** Where the identity provider publishes its signing keys. */
  jwksUrl: BaseUrl,
  issuer: z.string().min(1),
  audience: z.string().min(1),
  rolesClaim: z.string().min(1).optional(),
  tierClaim: z.string().min(1).optional(),
  clockToleranceSeconds: int(0, 600).optional(),
});

const Server = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: int(0, 65535).default(8080),
  bodyLimitBytes: int(1).default(1_048_576),
  /** Rate limits per API key by SLA tier (a key names its tier; default `standard`). */
  rateTiers: z
    .record(
      z.string().regex(/^[a-z][a-z0-9-]*$/, 'tier names are lower-case words'),
      RateTierConfig,
    )
    .refine((t) => Object.keys(t).length > 0, 'at least one tier')
    .default({ standard: { requestsPerSecond: 50 }, premium: { requestsPerSecond: 500 } }),
  /** Also accept OAuth2/OIDC bearer JWTs verified against this JWKS (API keys always work). */
  jwt: JwtConfig.optional(),
});

const Retention = z.strictObject({
  completedMessagesDays: int(1).default(7),
  idempotencyKeysDays: int(1).default(7),
  deadLettersDays: int(1).default(30),
});

const Store = z.strictObject({
  url: StoreUrl.default('sqlite:.middlemart/middlemart.db'),
  retention: Retention.prefault({}),
});

const Engine = z
  .strictObject({
    roles: z
      .array(z.enum(ENGINE_ROLES))
      .min(1, 'name at least one role: api, worker')
      .default(['api', 'worker']),
    workers: int(0, 1024).default(4),
    leaseSeconds: int(1, 3600).default(30),
    backpressure: z.strictObject({ deferrableBacklogLimit: int(1).default(50_000) }).prefault({}),
  })
  .superRefine((engine, ctx) => {
    const roles = engine.roles;
    const seen = new Set<string>();
    roles.forEach((role, i) => {
      if (seen.has(role)) {
        ctx.addIssue({ code: 'custom', path: ['roles', i], message: `role '${role}' is repeated` });
      }
      seen.add(role);
    });
    if (roles.includes('worker') && engine.workers === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['workers'],
        message: "the worker role needs at least 1 worker (or drop 'worker' from roles)",
      });
    }
  });

const Sandbox = z.strictObject({
  enabled: z.boolean().default(false),
  basePort: int(1024, 65000).default(7100),
});

const Limits = z.strictObject({
  ratePerSecond: z.number().positive().default(10),
  burst: int(1).default(10),
  concurrency: int(1, 1024).default(4),
  adaptiveConcurrency: z.boolean().default(false),
  timeoutMs: int(1, 600_000).default(10_000),
});

const Retry = z
  .strictObject({
    maxAttempts: int(1, 1000).default(8),
    baseDelayMs: int(0).default(250),
    maxDelayMs: int(0).default(60_000),
  })
  .superRefine((retry, ctx) => {
    if (retry.maxDelayMs < retry.baseDelayMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxDelayMs'],
        message: `maxDelayMs (${retry.maxDelayMs}) is below baseDelayMs (${retry.baseDelayMs})`,
      });
    }
  });

const CircuitBreaker = z.strictObject({
  consecutiveFailures: int(1).default(5),
  halfOpenAfterMs: int(1).default(15_000),
});

const Credentials = z.record(
  z.string().regex(IDENTIFIER, 'credential keys are camelCase names such as clientSecret'),
  withEnvRefs(),
);

const System = z
  .strictObject({
    id: SystemId,
    kind: z.enum(SYSTEM_KINDS),
    baseUrl: BaseUrl,
    /** Data residency: where this system keeps its data. */
    region: Region.optional(),
    credentials: Credentials.default({}),
    limits: Limits.prefault({}),
    retry: Retry.prefault({}),
    circuitBreaker: CircuitBreaker.prefault({}),
    /**
     * `builtin` (default): Middlemart's connector for the kind talks to it. `custom`: code
     * embedding Middlemart registers the system's sender itself (`engine.registerSender`); the
     * built-in connectors leave it alone, the delivery gate still applies its limits.
     */
    connector: z.enum(['builtin', 'custom']).default('builtin'),
    /** Connector-specific options (API version, database name, …). */
    settings: z
      .record(
        z.string().regex(IDENTIFIER, 'setting names are camelCase, e.g. apiVersion'),
        z.union([withEnvRefs(), z.number(), z.boolean()]),
      )
      .default({}),
  })
  .superRefine(
    (system: unknown, ctx) => {
      // Runs even when the system has other errors, so a literal secret is never hidden by them.
      if (!isRecord(system) || !isRecord(system.credentials)) return;
      const id = typeof system.id === 'string' ? system.id : 'system';
      for (const [key, value] of Object.entries(system.credentials)) {
        if (typeof value !== 'string' || NON_SECRET_CREDENTIAL_KEYS.includes(key)) continue;
        if (value === '' || (!ENV_REF_WHOLE.test(value) && malformedEnvRef(value) === undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: ['credentials', key],
            message: `literal secret: use an environment reference such as \${${suggestedEnvName(id, key)}}`,
          });
        }
      }
    },
    { when: () => true },
  );

/** The process domains an ERP routing rule may name (src/ports/routing.ts `ErpProcess`). */
export const ROUTED_PROCESSES = ['order', 'return', 'inventory', 'customer', 'price'] as const;

/** One value or a non-empty list of values (any of them matches). */
const oneOrMany = <T extends z.ZodType<string>>(value: T) =>
  z.union([value, z.array(value).min(1, 'list at least one value')]);

/**
 * A routing rule: the first rule whose every condition holds chooses the system; an absent
 * condition accepts anything, a list accepts any of its values (src/domains/routing).
 */
const RoutingRule = z.strictObject({
  name: z.string().regex(SYSTEM_ID, "rule names are lower-case words joined by '-'"),
  when: z.strictObject({
    /** Process domain: order, return, inventory, customer, price. */
    process: oneOrMany(z.enum(ROUTED_PROCESSES)).optional(),
    event: oneOrMany(EventName).optional(),
    businessUnit: oneOrMany(z.string().min(1)).optional(),
    country: oneOrMany(
      z.string().regex(COUNTRY, 'countries are ISO 3166-1 alpha-2 codes such as DE'),
    ).optional(),
    region: oneOrMany(Region).optional(),
    channel: oneOrMany(z.string().min(1)).optional(),
    store: oneOrMany(z.string().min(1)).optional(),
  }),
  to: SystemId,
});

const FieldOwnership = z.record(
  z.string().regex(IDENTIFIER, 'entity names are camelCase, e.g. customer'),
  z.record(z.string().regex(IDENTIFIER, 'field names are camelCase, e.g. email'), SystemId),
);

const Priorities = z.record(EventName, z.enum(PRIORITY_CLASS_NAMES));

/** Short names of every event in the canonical catalogue, e.g. `order.created`. */
export const KNOWN_EVENTS: readonly string[] = catalogue.map((event) => event.name);

/** Why `name` is not a catalogue event, or undefined when it is (or is malformed anyway). */
function unknownEvent(name: string): string | undefined {
  if (!EVENT_NAME.test(name) || KNOWN_EVENTS.includes(name)) return undefined;
  const hint = suggest(name, KNOWN_EVENTS);
  return (
    `unknown event '${name}': not in the event catalogue` +
    (hint ? ` (did you mean '${hint}'?)` : '')
  );
}

/**
 * Cross-references: system ids are unique; routing rules and field ownership name declared
 * systems; rule names are unique; priorities and routing rules name catalogue events. Runs even when other parts of the file have errors, so that
 * every problem is reported at once; it therefore reads the partly-parsed value defensively.
 */
function crossReferences(config: unknown, ctx: z.RefinementCtx): void {
  if (!isRecord(config)) return;
  const systems = Array.isArray(config.systems) ? config.systems : [];
  const declared = new Map<string, number>();
  systems.forEach((system: unknown, i) => {
    if (!isRecord(system) || typeof system.id !== 'string') return;
    const first = declared.get(system.id);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['systems', i, 'id'],
        message: `duplicate system id '${system.id}' (first declared at systems[${first}])`,
      });
    } else {
      declared.set(system.id, i);
    }
  });
  const known = () => [...declared.keys()].join(', ') || 'none';
  const rules = Array.isArray(config.routing) ? config.routing : [];
  const names = new Map<string, number>();
  rules.forEach((rule: unknown, i) => {
    if (!isRecord(rule)) return;
    if (typeof rule.name === 'string') {
      const first = names.get(rule.name);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['routing', i, 'name'],
          message: `duplicate routing rule name '${rule.name}' (first used at routing[${first}])`,
        });
      } else names.set(rule.name, i);
    }
    if (typeof rule.to === 'string' && !declared.has(rule.to)) {
      ctx.addIssue({
        code: 'custom',
        path: ['routing', i, 'to'],
        message: `routes to undeclared system '${rule.to}' (declared: ${known()})`,
      });
    }
  });
  if (isRecord(config.priorities)) {
    for (const name of Object.keys(config.priorities)) {
      const message = unknownEvent(name);
      if (message) {
        ctx.addIssue({
          code: 'custom',
          path: ['priorities', name],
          message,
          params: { at: 'key' },
        });
      }
    }
  }
  rules.forEach((rule: unknown, i) => {
    if (!isRecord(rule) || !isRecord(rule.when)) return;
    const event = rule.when.event;
    const events: Array<[unknown, (string | number)[]]> = Array.isArray(event)
      ? event.map((e, j) => [e, ['routing', i, 'when', 'event', j]])
      : [[event, ['routing', i, 'when', 'event']]];
    for (const [name, path] of events) {
      if (typeof name !== 'string') continue;
      const message = unknownEvent(name);
      if (message) ctx.addIssue({ code: 'custom', path, message });
    }
  });
  if (isRecord(config.fieldOwnership)) {
    for (const [entity, fields] of Object.entries(config.fieldOwnership)) {
      if (!isRecord(fields)) continue;
      for (const [field, owner] of Object.entries(fields)) {
        if (typeof owner === 'string' && !declared.has(owner)) {
          ctx.addIssue({
            code: 'custom',
            path: ['fieldOwnership', entity, field],
            message: `owner '${owner}' is not a declared system (declared: ${known()})`,
          });
        }
      }
    }
  }
}

export const EstateConfigSchema = z
  .strictObject({
    version: z.literal(1, 'version must be 1'),
    server: Server.prefault({}),
    store: Store.prefault({}),
    engine: Engine.prefault({}),
    sandbox: Sandbox.prefault({}),
    /** Overrides of the event catalogue's default priority classes. */
    priorities: Priorities.default({}),
    systems: z.array(System).default([]),
    /** Content-based routing, first match wins. */
    routing: z.array(RoutingRule).default([]),
    /** entity → field → the system that is the source of truth for it. */
    fieldOwnership: FieldOwnership.default({}),
    /** Each domain's own settings (src/config/sections). */
    inventory: InventoryConfigSchema.prefault({}),
    orders: OrdersConfigSchema.prefault({}),
    customers: CustomersConfigSchema.prefault({}),
    pricing: PricingConfigSchema.prefault({}),
    webhooks: WebhooksConfigSchema.prefault({}),
    /** Where customers' personal data may go (src/config/sections/residency.ts). */
    residency: ResidencyConfigSchema.prefault({}),
  })
  .superRefine(crossReferences, { when: () => true });

export type EstateConfig = z.output<typeof EstateConfigSchema>;
export type EstateConfigInput = z.input<typeof EstateConfigSchema>;
export type SystemConfig = EstateConfig['systems'][number];

/** The systems Middlemart's own connectors serve (every one not marked `connector: custom`). */
export function builtinSystems(config: Pick<EstateConfig, 'systems'>): SystemConfig[] {
  return config.systems.filter((s) => s.connector !== 'custom');
}
export type RoutingRuleConfig = EstateConfig['routing'][number];
export type PriorityClassName = (typeof PRIORITY_CLASS_NAMES)[number];
