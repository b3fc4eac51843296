// A feature module: one domain's (or connector family's) contribution to the running
// application: its migrations, the engine handlers and senders it registers, its HTTP routes and
// the services it offers other modules. `src/app.ts` starts every module of `MODULES`
// (src/wiring/index.ts) in order; nothing else in the app needs to change when a module grows.
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import type { EstateConfig } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { CustomerResolverPort } from '../ports/customers.js';
import type { ErpPort } from '../ports/erp.js';
import type { ErpRouter } from '../ports/routing.js';
import type { StockReservationPort } from '../ports/stock.js';
import type {
  ActionPerformer,
  SystemAcknowledgement,
  SystemActionName,
  SystemRefusal,
} from '../ports/system-actions.js';
import type { Engine, HandlerTx, QueuedMessage } from '../runtime/index.js';
import type { DeliveryGate } from '../runtime/delivery/index.js';
import type { Dialect, Migration, Store } from '../store/index.js';

/** Services modules offer each other; filled while modules start, read when used. */
export interface Services {
  /** The ERP chosen per transaction (routing domain). */
  erpRouter?: ErpRouter;
  /** ERP ports by system id (connectors). */
  erps: Map<string, ErpPort>;
  /** Stock reservations for orders (inventory domain). */
  stock?: StockReservationPort;
  /** Customer references to golden ids (customers domain). */
  customers?: CustomerResolverPort;
}

/** Sees a canonical event message after its handler, in the handler's transaction. */
export type MessageObserver = (message: QueuedMessage, tx: HandlerTx) => Promise<void>;

/** Handles acknowledgements of actions a process asked for, in the ack message's transaction. */
export type AcknowledgementHandler = (ack: SystemAcknowledgement, tx: HandlerTx) => Promise<void>;

/** Handles permanent refusals of actions a process asked for, in the refusal's transaction. */
export type RefusalHandler = (refusal: SystemRefusal, tx: HandlerTx) => Promise<void>;

export interface ModuleContext {
  readonly config: EstateConfig;
  /** The estate config file the app was started from, when there is one (watched for reloads). */
  readonly configFile?: string;
  readonly store: Store;
  readonly engine: Engine;
  readonly gate: DeliveryGate;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly services: Services;
  /**
   * Registers the handler of acknowledgements whose correlation names `process` (e.g. `order`).
   * See src/ports/system-actions.ts.
   */
  onAcknowledged(process: string, handler: AcknowledgementHandler): void;
  /**
   * Registers the handler of permanent refusals (the system refused the action as sent, or a
   * residency rule did) whose correlation names `process`. The delivery is dead-lettered as
   * before; a replay that later succeeds arrives as an ordinary acknowledgement.
   */
  onRefused(process: string, handler: RefusalHandler): void;
  /**
   * Declares how `destination` (a system id) performs `action`. Several modules may contribute
   * actions to one system (orders post sales to the ERP, pricing pushes prices to the commerce
   * platform); the app registers one engine sender per system that dispatches by action. Do not
   * call `engine.registerSender` for a system that performs actions.
   */
  registerAction(destination: string, action: SystemActionName, performer: ActionPerformer): void;
  /**
   * Observes every canonical event message (each type of the catalogue) after its handler, in the
   * same transaction: what the observer writes (deliveries, state) commits with the handler's
   * effects or not at all. For cross-cutting fan-out such as outbound webhooks.
   */
  observe(observer: MessageObserver): void;
  /** Appends to the hash-chained audit log. */
  audit(entry: {
    actor: string;
    action: string;
    target?: string;
    remote?: string;
    detail?: Record<string, unknown>;
  }): Promise<void>;
  /** Epoch ms; tests may replace it. */
  now(): number;
}

export interface ModuleInstance {
  /** Route plugins (under /v1) registered on the API server when the `api` role runs. */
  routes?: FastifyPluginAsync[];
  /** Background work to start once the engine runs (pollers, schedules); worker role only. */
  startBackground?(): void;
  /** Stops background work; called before the engine stops. */
  stop?(): Promise<void>;
}

export interface FeatureModule {
  readonly name: string;
  /** The module's own tables (each module has its own version range; see ADR 0009). */
  migrations?(dialect: Dialect): readonly Migration[];
  /**
   * Registers handlers and senders, offers services; runs before the engine starts and before
   * any route is served.
   */
  start(ctx: ModuleContext): ModuleInstance | Promise<ModuleInstance>;
}
