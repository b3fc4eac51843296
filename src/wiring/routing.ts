// The routing module: the ERP router (`services.erpRouter`) built from the estate's routing
// rules and reloaded when the config file changes (audited; a faulty change is refused and the
// rules in force stay), and the Tryton connector for every system of kind `tryton`: its ERP port
// (`services.erps`), the actions it performs (`erp.post-sales-order`, `erp.post-credit`) and its
// status poller (shipments done → `order.fulfilled`).
import { readFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { builtinSystems, type EstateConfig, type SystemConfig } from '../config/schema.js';
import {
  ERP_STATUS_MIGRATIONS,
  ERP_STATUS_WATERMARKS_TABLE,
  ErpStatusPoller,
} from '../connectors/cloud-erp/status-poller.js';
import { TrytonErp } from '../connectors/tryton/index.js';
import {
  RoutingRulesError,
  RuleBasedErpRouter,
  type RouteRule,
  type RoutingFinding,
} from '../domains/routing/index.js';
import { ActionError, type ActionPerformer } from '../ports/system-actions.js';
import type { Dialect, Migration } from '../store/index.js';
import type { FeatureModule, ModuleContext, ModuleInstance } from './module.js';

/** System kinds that are ERPs: the router chooses among them. */
export const ERP_KINDS: ReadonlySet<string> = new Set(['rest-erp', 'soap-erp', 'tryton']);

export const DEFAULT_TRYTON_POLL_INTERVAL_MS = 30_000;

/** The ERP systems of an estate, by id. */
export function erpSystemsOf(config: Pick<EstateConfig, 'systems'>): string[] {
  return config.systems.filter((s) => ERP_KINDS.has(s.kind)).map((s) => s.id);
}

/** Builds the router over an estate's rules; throws `RoutingRulesError` when they have errors. */
export function routerFor(config: Pick<EstateConfig, 'systems' | 'routing'>): RuleBasedErpRouter {
  return new RuleBasedErpRouter(config.routing as RouteRule[], {
    erpSystems: erpSystemsOf(config),
  });
}

function setting(system: SystemConfig, key: string): string | number | boolean | undefined {
  return system.settings[key];
}

function requiredCredential(system: SystemConfig, ...keys: string[]): string {
  for (const key of keys) {
    const value = system.credentials[key];
    if (typeof value === 'string' && value !== '') return value;
  }
  throw new Error(`system ${system.id} (tryton) needs credentials.${keys[0]}`);
}

/** `DC-EU-1=WH, STORE-7=ST7` → { 'DC-EU-1': 'WH', 'STORE-7': 'ST7' }. */
export function parseLocationMap(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (text ?? '').split(/[,;]/)) {
    const [ours, theirs] = pair.split('=').map((s) => s.trim());
    if (ours && theirs) out[ours] = theirs;
  }
  return out;
}

/** The Tryton ERP port of a configured system. */
export function trytonErpFor(system: SystemConfig): TrytonErp {
  const database = setting(system, 'database');
  const url =
    typeof database === 'string' && database !== ''
      ? new URL(`/${encodeURIComponent(database)}/`, system.baseUrl).toString()
      : system.baseUrl;
  const company = setting(system, 'company');
  const language = setting(system, 'language');
  const policy = setting(system, 'warningPolicy');
  if (policy !== undefined && policy !== 'fail' && policy !== 'accept') {
    throw new Error(
      `system ${system.id}: settings.warningPolicy must be 'fail' or 'accept', not '${String(policy)}'`,
    );
  }
  const locationMap = setting(system, 'locationMap');
  return new TrytonErp({
    system: system.id,
    url,
    username: requiredCredential(system, 'username', 'user'),
    password: requiredCredential(system, 'password'),
    timeoutMs: system.limits.timeoutMs,
    warningPolicy: policy ?? 'fail',
    ...(typeof company === 'number' ? { company } : {}),
    ...(typeof language === 'string' ? { language } : {}),
    ...(typeof locationMap === 'string' ? { locationMap: parseLocationMap(locationMap) } : {}),
  });
}

/** The action performers of a Tryton ERP port: one attempt each, failures as ErpError. */
export function trytonPerformers(erp: TrytonErp): {
  postSalesOrder: ActionPerformer;
  postCredit: ActionPerformer;
} {
  return {
    postSalesOrder: async (action, ctx) => {
      if (action.action !== 'erp.post-sales-order') {
        throw new ActionError(`${erp.system}: not a sales order action`, 'permanent');
      }
      return erp.postSalesOrder(action.order, {
        signal: ctx.signal,
        idempotencyKey: ctx.idempotencyKey,
      });
    },
    postCredit: async (action, ctx) => {
      if (action.action !== 'erp.post-credit') {
        throw new ActionError(`${erp.system}: not a credit action`, 'permanent');
      }
      return erp.postCredit(action.credit, {
        signal: ctx.signal,
        idempotencyKey: ctx.idempotencyKey,
      });
    },
  };
}

function ruleKey(rule: RouteRule): string {
  return JSON.stringify({ when: rule.when, to: rule.to });
}

/** Which rules a change added, removed, changed or moved (by name). */
export function diffRules(
  before: readonly RouteRule[],
  after: readonly RouteRule[],
): { added: string[]; removed: string[]; changed: string[]; reordered: boolean } {
  const old = new Map(before.map((r) => [r.name, r]));
  const now = new Map(after.map((r) => [r.name, r]));
  const added = after.filter((r) => !old.has(r.name)).map((r) => r.name);
  const removed = before.filter((r) => !now.has(r.name)).map((r) => r.name);
  const changed = after
    .filter((r) => old.has(r.name) && ruleKey(old.get(r.name)!) !== ruleKey(r))
    .map((r) => r.name);
  const common = (list: readonly RouteRule[]) =>
    list.filter((r) => old.has(r.name) && now.has(r.name)).map((r) => r.name);
  const reordered = common(before).join('\n') !== common(after).join('\n');
  return { added, removed, changed, reordered };
}

export type ReloadOutcome =
  | { outcome: 'unchanged' }
  | {
      outcome: 'applied';
      version: number;
      diff: ReturnType<typeof diffRules>;
      warnings: RoutingFinding[];
    }
  | { outcome: 'refused'; reason: string };

/**
 * Reloads the routing rules of a running router from the estate config file: the file must be
 * valid, may only route to ERP systems that run now (a new system needs a restart), and its rules
 * must pass the routing checks. Every applied or refused change is audited.
 */
export class RoutingReloader {
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly router: RuleBasedErpRouter,
    private readonly running: Pick<EstateConfig, 'systems'>,
    private readonly ctx: Pick<ModuleContext, 'audit' | 'logger'>,
  ) {}

  async reload(file: string): Promise<ReloadOutcome> {
    const result = await loadConfig(file, process.env, { resolveEnv: false });
    if (!result.ok) {
      return this.refuse(
        file,
        `the config file is invalid: ${result.issues.map((i) => `${i.path || file}: ${i.message}`).join('; ')}`,
      );
    }
    const rules = result.config.routing as RouteRule[];
    const before = this.router.currentRules;
    const diff = diffRules(before, rules);
    if (!diff.added.length && !diff.removed.length && !diff.changed.length && !diff.reordered) {
      return { outcome: 'unchanged' };
    }
    const runningErps = new Set(erpSystemsOf(this.running));
    const newErps = erpSystemsOf(result.config).filter((id) => !runningErps.has(id));
    const needsRestart = rules.filter((r) => newErps.includes(r.to));
    if (needsRestart.length) {
      return this.refuse(
        file,
        `rule(s) ${needsRestart.map((r) => r.name).join(', ')} route to ERP system(s) not running ` +
          `(${[...new Set(needsRestart.map((r) => r.to))].join(', ')}): restart to add a system`,
      );
    }
    let warnings: RoutingFinding[];
    try {
      warnings = this.router.replace(rules);
    } catch (err) {
      if (err instanceof RoutingRulesError) return this.refuse(file, err.message);
      throw err;
    }
    await this.ctx.audit({
      actor: 'config-watch',
      action: 'routing.rules-changed',
      target: file,
      detail: {
        version: this.router.version,
        ...diff,
        rules: rules.map((r) => `${r.name} → ${r.to}`),
        warnings: warnings.map((w) => `${w.rule}: ${w.message}`),
      },
    });
    this.ctx.logger.info(
      { file, version: this.router.version, ...diff },
      'routing rules reloaded from the config file',
    );
    return { outcome: 'applied', version: this.router.version, diff, warnings };
  }

  private async refuse(file: string, reason: string): Promise<ReloadOutcome> {
    await this.ctx.audit({
      actor: 'config-watch',
      action: 'routing.rules-refused',
      target: file,
      detail: { reason, version: this.router.version },
    });
    this.ctx.logger.error({ file, reason }, 'routing change refused; the previous rules stay');
    return { outcome: 'refused', reason };
  }

  /**
   * Watches `file`: reads it every `intervalMs` and reloads when its text differs from the text
   * seen when watching began (or at the last reload), one reload at a time.
   */
  watch(file: string, intervalMs = 1000): void {
    this.unwatch();
    let seen = readText(file);
    this.timer = setInterval(() => {
      const text = readText(file);
      if (text === undefined || text === seen) return;
      seen = text;
      this.pending = this.pending
        .then(() => this.reload(file))
        .catch((err: unknown) => {
          this.ctx.logger.error(
            { file, err: err instanceof Error ? err.message : String(err) },
            'routing reload failed',
          );
        });
    }, intervalMs);
    this.timer.unref?.();
  }

  /** Waits for the reloads started so far (tests). */
  settled(): Promise<unknown> {
    return this.pending;
  }

  unwatch(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The config file to watch: `configFile` on the context when the app passes it, else the env. */
function configFileOf(ctx: ModuleContext): string | undefined {
  const fromCtx = (ctx as ModuleContext & { configFile?: unknown }).configFile;
  if (typeof fromCtx === 'string' && fromCtx) return fromCtx;
  const fromEnv = process.env.MIDDLEMART_CONFIG_FILE;
  return fromEnv ? fromEnv : undefined;
}

export const routingModule: FeatureModule = {
  name: 'routing',
  // The status watermark table the ERP status pollers share (same DDL as the connectors',
  // idempotent): here too so that Tryton's poller has it whichever module runs first.
  migrations: (_dialect: Dialect): readonly Migration[] => [
    {
      version: 6000,
      name: 'routing_erp_status_watermarks',
      sql: ERP_STATUS_MIGRATIONS[0].sql,
    },
  ],
  start(ctx): ModuleInstance {
    const router = routerFor(ctx.config);
    ctx.services.erpRouter = router;
    const reloader = new RoutingReloader(router, ctx.config, ctx);

    const pollers: ErpStatusPoller[] = [];
    // Tryton systems marked `connector: custom` are served by embedding code, not built here.
    for (const system of builtinSystems(ctx.config)) {
      if (system.kind !== 'tryton') continue;
      const erp = trytonErpFor(system);
      ctx.services.erps.set(system.id, erp);
      const performers = trytonPerformers(erp);
      ctx.registerAction(system.id, 'erp.post-sales-order', performers.postSalesOrder);
      ctx.registerAction(system.id, 'erp.post-credit', performers.postCredit);
      const interval = setting(system, 'statusPollIntervalMs');
      if (interval !== 0 && interval !== false) {
        pollers.push(
          new ErpStatusPoller({
            port: erp,
            sql: ctx.store,
            accept: (req) => ctx.engine.accept(req),
            gate: ctx.gate,
            intervalMs:
              typeof interval === 'number' && interval > 0
                ? interval
                : DEFAULT_TRYTON_POLL_INTERVAL_MS,
            logger: ctx.logger,
            now: () => ctx.now(),
          }),
        );
      }
    }
    const file = configFileOf(ctx);
    return {
      startBackground() {
        if (file) reloader.watch(file);
        for (const poller of pollers) poller.start();
      },
      async stop() {
        reloader.unwatch();
        await reloader.settled();
        for (const poller of pollers) await poller.stop();
      },
    };
  },
};

export { ERP_STATUS_WATERMARKS_TABLE };
