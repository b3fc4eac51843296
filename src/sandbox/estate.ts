// The sandbox estate: every simulator of the built-in estate (middlemart.yaml) started on its
// own 127.0.0.1 port, basePort + 1 … + 9 in the order of the config, with fresh credentials per
// start handed out as the SANDBOX_* environment variables the config references.
import { randomBytes } from 'node:crypto';
import { Document, parseDocument, isMap, isSeq } from 'yaml';
import type { YAMLMap, YAMLSeq } from 'yaml';
import { createCloudErp } from './cloud-erp/index.js';
import { createCommerce } from './commerce/index.js';
import type { Commerce } from './commerce/index.js';
import { createCrm } from './crm/index.js';
import { mulberry32 } from './kit.js';
import type { Simulator } from './kit.js';
import { createLegacyErp } from './legacy-erp/index.js';
import { createLoyalty } from './loyalty/index.js';
import { createNotifications } from './notifications/index.js';
import { createPos } from './pos/index.js';
import type { Pos } from './pos/index.js';
import { createTaxEngine } from './tax/index.js';
import { createWms } from './wms/index.js';

export type EstateSystemId =
  | 'cloud-erp'
  | 'legacy-erp'
  | 'commerce'
  | 'pos'
  | 'crm'
  | 'loyalty'
  | 'wms'
  | 'tax'
  | 'notifications';

export interface EstateLayoutEntry {
  id: EstateSystemId;
  /** Connector kind, as in middlemart.yaml. */
  kind: string;
  /** Port = basePort + offset. */
  offset: number;
  region: string;
  /** Credential key → environment variable holding its value (secrets only). */
  secrets: Readonly<Record<string, string>>;
  /** Credential key → literal value (identifiers, not secrets). */
  identifiers: Readonly<Record<string, string>>;
}

/** The estate of middlemart.yaml: ids, kinds, port offsets and credential environment names. */
export const ESTATE_LAYOUT: readonly EstateLayoutEntry[] = [
  {
    id: 'cloud-erp',
    kind: 'rest-erp',
    offset: 1,
    region: 'eu',
    identifiers: { clientId: 'middlemart' },
    secrets: { clientSecret: 'SANDBOX_CLOUD_ERP_CLIENT_SECRET' },
  },
  {
    id: 'legacy-erp',
    kind: 'soap-erp',
    offset: 2,
    region: 'us',
    identifiers: { username: 'middlemart' },
    secrets: { password: 'SANDBOX_LEGACY_ERP_PASSWORD' },
  },
  {
    id: 'commerce',
    kind: 'shopify',
    offset: 3,
    region: 'eu',
    identifiers: {},
    secrets: {
      accessToken: 'SANDBOX_COMMERCE_ACCESS_TOKEN',
      webhookSecret: 'SANDBOX_COMMERCE_WEBHOOK_SECRET',
    },
  },
  { id: 'pos', kind: 'pos', offset: 4, region: 'eu', identifiers: {}, secrets: {} },
  {
    id: 'crm',
    kind: 'crm',
    offset: 5,
    region: 'eu',
    identifiers: {},
    secrets: { apiKey: 'SANDBOX_CRM_API_KEY' },
  },
  {
    id: 'loyalty',
    kind: 'loyalty',
    offset: 6,
    region: 'eu',
    identifiers: {},
    secrets: { apiKey: 'SANDBOX_LOYALTY_API_KEY' },
  },
  {
    id: 'wms',
    kind: 'wms',
    offset: 7,
    region: 'eu',
    identifiers: {},
    secrets: { webhookSecret: 'SANDBOX_WMS_WEBHOOK_SECRET' },
  },
  { id: 'tax', kind: 'tax', offset: 8, region: 'eu', identifiers: {}, secrets: {} },
  {
    id: 'notifications',
    kind: 'notification',
    offset: 9,
    region: 'eu',
    identifiers: {},
    secrets: {},
  },
];

export interface EstateOptions {
  /** Systems listen on basePort + 1 … + 9; 0 puts every system on an ephemeral port. Default 7100. */
  basePort?: number;
  /** Seeds catalogues, customers, sales and fault randomness (default 1). */
  seed?: number;
  /** Middlemart's base URL: where stores upload and (with native transport) webhooks go. */
  middlemartUrl?: string;
  /** Folder of the legacy ERP's flat-file exchange (off without it). */
  dropDir?: string;
  /** How stores (and the commerce platform) reach Middlemart: canonical events (default) or native. */
  transport?: 'events' | 'native';
  /** Sent as `Authorization: Bearer` by stores uploading to Middlemart. */
  apiKey?: string;
  host?: string;
}

export interface EstateSystem {
  id: EstateSystemId;
  kind: string;
  url: string;
}

export interface Estate {
  readonly systems: EstateSystem[];
  /** The SANDBOX_* credential variables middlemart.yaml references, with this start's values. */
  readonly env: Record<string, string>;
  readonly basePort: number;
  readonly seed: number;
  /** The running simulators by system id. */
  readonly simulators: Readonly<Record<EstateSystemId, Simulator>>;
  readonly commerce: Commerce;
  readonly pos: Pos;
  stop(): Promise<void>;
}

/** A fresh secret for one start of the estate. */
function secret(prefix = ''): string {
  return `${prefix}${randomBytes(24).toString('hex')}`;
}

/** Generates the credentials of one start: every SANDBOX_* variable of the layout. */
export function generateSandboxEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of ESTATE_LAYOUT) {
    for (const [key, name] of Object.entries(entry.secrets)) {
      env[name] =
        key === 'accessToken'
          ? secret('shpat_')
          : name === 'SANDBOX_WMS_WEBHOOK_SECRET'
            ? `whsec_${randomBytes(24).toString('base64')}`
            : secret();
    }
  }
  return env;
}

export class EstateStartError extends Error {
  constructor(
    readonly systemId: string,
    readonly port: number,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`sandbox system '${systemId}' could not listen on port ${port}: ${reason}`);
    this.name = 'EstateStartError';
  }
}

/** Starts every simulator of the estate, in the order of middlemart.yaml. */
export async function startEstate(opts: EstateOptions = {}): Promise<Estate> {
  const basePort = opts.basePort ?? 7100;
  if (!Number.isInteger(basePort) || basePort < 0 || (basePort !== 0 && basePort + 9 > 65535)) {
    throw new RangeError(`basePort must be 0 or a port with room for 9 more, got ${basePort}`);
  }
  const seed = opts.seed ?? 1;
  const env = generateSandboxEnv();
  const host = opts.host ?? '127.0.0.1';
  const portOf = (id: EstateSystemId) => {
    const entry = ESTATE_LAYOUT.find((e) => e.id === id) as EstateLayoutEntry;
    return basePort === 0 ? 0 : basePort + entry.offset;
  };
  const common = (id: EstateSystemId, salt: number) => ({
    port: portOf(id),
    host,
    random: mulberry32(seed * 31 + salt),
  });
  const mm = opts.middlemartUrl?.replace(/\/+$/, '');
  const transport = opts.transport ?? 'events';

  const factories: Record<EstateSystemId, () => Simulator> = {
    'cloud-erp': () =>
      createCloudErp({
        ...common('cloud-erp', 1),
        clientSecret: env.SANDBOX_CLOUD_ERP_CLIENT_SECRET as string,
        seed,
      }),
    'legacy-erp': () =>
      createLegacyErp({
        ...common('legacy-erp', 2),
        password: env.SANDBOX_LEGACY_ERP_PASSWORD as string,
        seed,
        ...(opts.dropDir ? { dropDir: opts.dropDir } : {}),
      }),
    commerce: () =>
      createCommerce({
        ...common('commerce', 3),
        seed,
        accessToken: env.SANDBOX_COMMERCE_ACCESS_TOKEN as string,
        webhookSecret: env.SANDBOX_COMMERCE_WEBHOOK_SECRET as string,
        ...(mm && transport === 'native'
          ? { webhookUrl: `${mm}/v1/webhooks/shopify/commerce` }
          : {}),
      }),
    pos: () =>
      createPos({
        ...common('pos', 4),
        seed,
        transport,
        ...(mm ? { middlemartUrl: mm } : {}),
        ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
      }),
    crm: () => createCrm({ ...common('crm', 5), apiKey: env.SANDBOX_CRM_API_KEY as string }),
    loyalty: () =>
      createLoyalty({ ...common('loyalty', 6), apiKey: env.SANDBOX_LOYALTY_API_KEY as string }),
    wms: () =>
      createWms({
        ...common('wms', 7),
        webhookSecret: env.SANDBOX_WMS_WEBHOOK_SECRET as string,
        ...(mm ? { webhookUrl: `${mm}/v1/webhooks/wms/wms` } : {}),
      }),
    tax: () => createTaxEngine({ ...common('tax', 8) }),
    notifications: () => createNotifications({ ...common('notifications', 9) }),
  };

  const started: Array<{ entry: EstateLayoutEntry; sim: Simulator; url: string }> = [];
  const stopAll = async () => {
    for (const s of [...started].reverse()) await s.sim.close().catch(() => undefined);
  };
  for (const entry of ESTATE_LAYOUT) {
    const sim = factories[entry.id]();
    try {
      const url = await sim.listen();
      started.push({ entry, sim, url });
    } catch (err) {
      await sim.close().catch(() => undefined);
      await stopAll();
      throw new EstateStartError(entry.id, portOf(entry.id), err);
    }
  }

  const simulators = Object.fromEntries(started.map((s) => [s.entry.id, s.sim])) as Record<
    EstateSystemId,
    Simulator
  >;
  let stopped: Promise<void> | undefined;
  return {
    systems: started.map((s) => ({ id: s.entry.id, kind: s.entry.kind, url: s.url })),
    env,
    basePort,
    seed,
    simulators,
    commerce: simulators.commerce as Commerce,
    pos: simulators.pos as Pos,
    stop() {
      stopped ??= stopAll();
      return stopped;
    },
  };
}

export interface RenderEstateConfigOptions {
  /**
   * YAML text of an estate config to start from (e.g. the built-in middlemart.yaml): its
   * systems get this estate's URLs and everything else, comments included, is kept.
   */
  template?: string;
  /** Where Middlemart itself listens (server.port); kept from the template by default. */
  serverPort?: number;
}

/**
 * An estate config (middlemart.yaml's shape) pointing at this running estate. Credentials stay
 * `${SANDBOX_…}` references; `sandbox.enabled` is false because the estate already runs.
 */
export function renderEstateConfig(
  estate: Pick<Estate, 'systems' | 'basePort'>,
  opts: RenderEstateConfigOptions = {},
): string {
  const doc = opts.template !== undefined ? parseDocument(opts.template) : defaultDocument();
  if (doc.errors.length > 0)
    throw new Error(`template is not valid YAML: ${doc.errors[0]?.message}`);
  if (!isMap(doc.contents)) throw new Error('template is not a YAML mapping');
  doc.setIn(['sandbox', 'enabled'], false);
  if (estate.basePort >= 1024) doc.setIn(['sandbox', 'basePort'], estate.basePort);
  if (opts.serverPort !== undefined) doc.setIn(['server', 'port'], opts.serverPort);
  if (!doc.has('systems') || !isSeq(doc.get('systems'))) doc.set('systems', doc.createNode([]));
  const systems = doc.get('systems') as YAMLSeq;
  for (const system of estate.systems) {
    const existing = systems.items.find(
      (item): item is YAMLMap => isMap(item) && item.get('id') === system.id,
    );
    if (existing) existing.set('baseUrl', system.url);
    else systems.add(doc.createNode(systemNode(system)));
  }
  return doc.toString({ lineWidth: 0 });
}

function systemNode(system: EstateSystem): Record<string, unknown> {
  const entry = ESTATE_LAYOUT.find((e) => e.id === system.id);
  const credentials: Record<string, string> = { ...(entry?.identifiers ?? {}) };
  for (const [key, name] of Object.entries(entry?.secrets ?? {})) credentials[key] = `\${${name}}`;
  return {
    id: system.id,
    kind: system.kind,
    baseUrl: system.url,
    region: entry?.region ?? 'eu',
    ...(Object.keys(credentials).length > 0 ? { credentials } : {}),
  };
}

function defaultDocument(): Document {
  const doc = new Document({
    version: 1,
    sandbox: { enabled: false },
    systems: [],
    routing: [
      {
        name: 'us-orders-to-legacy-erp',
        when: { event: 'order.created', region: 'us' },
        to: 'legacy-erp',
      },
      { name: 'other-orders-to-cloud-erp', when: { event: 'order.created' }, to: 'cloud-erp' },
    ],
  });
  doc.commentBefore =
    ' Estate configuration of a running Middlemart sandbox (written by `middlemart sandbox`).\n' +
    ' Credentials are environment references: load the SANDBOX_* variables from its env file.';
  return doc;
}
