// The durable engine: idempotent accept with group commit, workers that run handlers inside
// store transactions (the outbox), delivery workers that attempt each delivery through the
// delivery gate, back-pressure, retention, and the observable surface (events, counters, stats).
import { EventEmitter } from 'node:events';
import type { Store, StoreTx } from '../store/port.js';
import {
  DAY_MS,
  LeaseLostError,
  acceptBatch,
  acceptInTx,
  claimDeliveries,
  claimMessages,
  failMessage,
  insertDelivery,
  lockPartitionKeys,
  markMessageDone,
  priorityOf,
  promoteNextHeadAtCommit,
  promoteNextHeads,
  renewLeases,
  purgeExpired,
  queueDepths,
  settleDeliveriesInTx,
  settleDeliveryInTx,
  stateAccess,
  toOutboundDelivery,
  toQueuedMessage,
  type Claimed,
  type DeliveryResult,
  type DeliveryRow,
  type FinishedMessage,
  type MessageRow,
  type PurgeReport,
} from './queue.js';
import {
  listDeadLetters,
  replayDeadLetter,
  replayDeadLetters,
  showDeadLetter,
  type DeadLetter,
  type DeadLetterFilter,
  type DeadLetterPage,
  type ReplayResult,
} from './dead-letters.js';
import { GroupCommit } from './group-commit.js';
import { isSealedPayload, readStoredPayload, type PayloadSealer } from './sealing.js';
import {
  PRIORITY_CLASSES,
  PermanentError,
  type AcceptRequest,
  type AcceptResult,
  type DeliveryGate,
  type DeliveryRequest,
  type EmitRequest,
  type EngineCounters,
  type EngineEvents,
  type EngineStats,
  type HandlerTx,
  type MessageHandler,
  type OutboundDelivery,
  type PriorityClass,
  type Sender,
} from './types.js';

export interface EngineLogger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface EngineOptions {
  store: Store;
  /**
   * Handlers running at once in this process (default 8). On SQLite handlers run one at a time
   * (one writer) and messages in flight are bounded by two handler batches instead.
   */
  workers?: number;
  /**
   * Messages whose handlers share one transaction, each in its own savepoint (one commit for
   * several messages). Default: 64 (or `workers` if more) on SQLite (one writer anyway), 1 on
   * PostgreSQL (handlers commit independently, in parallel over the pool).
   */
  handlerBatch?: number;
  /** Delivery attempts running at once in this process (default 32). */
  deliveryWorkers?: number;
  /** Per destination, attempts in flight from this process (default 16; the gate may limit lower). */
  perDestinationInFlight?: number;
  /** Lease on a claimed message or delivery (default 30 s). Must exceed a handler's or attempt's run time. */
  leaseMs?: number;
  /** Idle polling backoff bounds (defaults 5 ms .. 250 ms). */
  pollMs?: { min?: number; max?: number };
  /** The delivery gate (src/runtime/delivery). Deliveries are only attempted when one is given. */
  gate?: DeliveryGate;
  /** Handler attempts before a message is dead-lettered, and retry backoff. */
  handlerRetry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number };
  /** Safety cap on delivery attempts on top of the gate's own policy (default 25). */
  deliveryMaxAttempts?: number;
  /** How long an idempotency key answers duplicates (default 7 days). */
  idempotencyWindowMs?: number;
  retention?: {
    /** Keep done messages and delivered deliveries this long (default 7 days). */
    completedMs?: number;
    /** Keep dead letters this long after they died (default 30 days). */
    deadLettersMs?: number;
    /** How often the background purge runs (default 10 minutes); 0 disables it. */
    intervalMs?: number;
    batch?: number;
  };
  backpressure?: {
    /** Queued deferrable messages + deliveries above which deferrable accepts are refused (default 100,000). */
    deferrableBacklogLimit?: number;
    retryAfterSeconds?: number;
    /**
     * Per destination: queued critical + standard deliveries above which its deferrable
     * deliveries wait (also reported to the gate through setBacklog).
     */
    destinationBacklog?: Record<string, number>;
    /**
     * How often backlog figures are refreshed (default 1 s); never more often than
     * DEPTH_READ_SPACING times what the last read of the depths took.
     */
    refreshMs?: number;
  };
  /** Accepts (and delivery outcomes) per group commit (default 512). */
  acceptBatchMax?: number;
  /**
   * How long a forming group commit may wait for more accepts (or delivery outcomes) while each
   * turn of the event loop still brings some (default 2 ms; 0: what the first turn gathered).
   */
  acceptGatherMs?: number;
  /**
   * Seals message, delivery and dead letter payloads at rest (ADR 0018; which ones:
   * `sealScope`); handlers and senders still see them in clear. Without one, payloads are
   * stored in clear. Rows written in clear stay readable after a sealer is configured.
   */
  sealer?: PayloadSealer;
  /**
   * What the sealer seals: `all` payloads (default), or only `personal-data`: messages whose
   * request says `personalData` or whose type is in `personalDataTypes`, what the handler of
   * such a message emits and delivers, and deliveries that say `personalData`.
   */
  sealScope?: 'all' | 'personal-data';
  /** Message types whose payloads always carry personal data (for `sealScope: personal-data`). */
  personalDataTypes?: Iterable<string>;
  logger?: EngineLogger;
}

export interface Engine {
  /** Commits the message (or finds its duplicate) before resolving. */
  accept(req: AcceptRequest): Promise<AcceptResult>;
  registerHandler(type: string, handler: MessageHandler): void;
  registerSender(destination: string, sender: Sender): void;
  /** Starts workers, back-pressure refresh and retention in this process. */
  start(): void;
  /** Stops claiming, waits for in-flight handlers and deliveries and pending accepts. */
  stop(): Promise<void>;
  stats(): Promise<EngineStats>;
  /** Runs the retention purge now. */
  purge(): Promise<PurgeReport>;
  readonly deadLetters: {
    list(
      filter?: DeadLetterFilter,
      page?: { limit?: number; cursor?: string },
    ): Promise<DeadLetterPage>;
    show(id: string): Promise<DeadLetter | undefined>;
    replay(id: string): Promise<ReplayResult | undefined>;
    replayMatching(filter: DeadLetterFilter, limit?: number): Promise<ReplayResult[]>;
  };
  readonly events: EventEmitter<EngineEvents>;
  readonly counters: Readonly<EngineCounters>;
  readonly running: boolean;
  /** The key id payloads are sealed under; undefined when they are stored in clear. */
  readonly payloadKeyId: string | undefined;
  /**
   * Reads a payload as stored in `messages`, `deliveries` or `dead_letters` (sealed or clear)
   * into its value; throws a SealedPayloadError when it is sealed under a key not configured.
   */
  readPayload(stored: unknown): unknown;
  /**
   * Accepts a message inside the caller's own store transaction: it commits (or rolls back) with
   * the caller's writes, for flows that change state outside a handler and must publish the
   * change atomically with it. Call `wake()` after the commit so a worker claims it at once.
   */
  acceptInTransaction(tx: StoreTx, req: AcceptRequest): Promise<AcceptResult>;
  /** Tells idle workers that messages were committed outside `accept`. */
  wake(): void;
  /**
   * Resolves once every handler batch committed so far is on disk. On SQLite handler batches
   * commit relaxed (ADR 0004): anything that sends out what handlers wrote other than through
   * a delivery (a channel pusher) awaits this first. Cheap when nothing is pending.
   */
  durableHandlerEffects(): Promise<void>;
}

const silentLogger: EngineLogger = { warn: () => undefined, error: () => undefined };

/**
 * The backlog refresh reads the queue's depths at most once per this many times what the last
 * read took, so it keeps the store busy at most 1/20 of the time. On SQLite the depths are
 * counts (well under a millisecond); PostgreSQL counts the queued rows, which at a million took
 * 0.34–1.4 s: the refresh then runs every 7–28 s instead of every second.
 */
const DEPTH_READ_SPACING = 20;
/** However slow the read, the refresh runs at least this often. */
const MAX_BACKLOG_REFRESH_MS = 60_000;

function addTo(counts: Map<string, number>, key: string, n: number): void {
  counts.set(key, (counts.get(key) ?? 0) + n);
}

/** Takes `n` off `key`'s count, not below none. */
function takeFrom(counts: Map<string, number>, key: string, n: number): void {
  const left = (counts.get(key) ?? 0) - n;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}

/** Resolves waiters on wake() or after their timeout, whichever comes first. */
class Waker {
  private waiters = new Set<() => void>();
  wake(): void {
    const w = [...this.waiters];
    this.waiters.clear();
    for (const f of w) f();
  }
  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

function validate(req: AcceptRequest): void {
  const fields = ['source', 'idempotencyKey', 'requestHash', 'type', 'partitionKey'] as const;
  for (const f of fields) {
    if (typeof req[f] !== 'string') throw new TypeError(`accept: ${f} must be a string`);
  }
  if (req.source === '' || req.idempotencyKey === '' || req.type === '') {
    throw new TypeError('accept: source, idempotencyKey and type must not be empty');
  }
  if (!PRIORITY_CLASSES.includes(req.priority)) {
    throw new TypeError(`accept: priority must be one of ${PRIORITY_CLASSES.join(', ')}`);
  }
  if (req.payloadJson !== undefined && typeof req.payloadJson !== 'string') {
    throw new TypeError('accept: payloadJson must be a string');
  }
  if (req.availableAt !== undefined && !(req.availableAt instanceof Date)) {
    throw new TypeError('accept: availableAt must be a Date');
  }
}

/** Backlog figures: what a depth read found, or what this engine committed since one started. */
interface BacklogCounts {
  /** Queued non-deferrable deliveries per destination (what its deferrable ones wait behind). */
  ahead: Map<string, number>;
  /** Queued deferrable messages and deliveries. */
  deferrable: number;
}

/** What a handler wrote; `ahead` and `deferrable` count towards the backlog once committed. */
interface HandlerEffects extends BacklogCounts {
  emitted: number;
  delivered: number;
}

function noBacklog(): BacklogCounts {
  return { ahead: new Map(), deferrable: 0 };
}

/**
 * Counts `n` queued items into `counts`: deferrable ones as deferrable work, a delivery of another
 * class as backlog ahead of its destination, a message of another class not at all.
 */
function addWork(
  counts: BacklogCounts,
  deferrable: boolean,
  destination: string | null,
  n = 1,
): void {
  if (deferrable) counts.deferrable += n;
  else if (destination !== null) addTo(counts.ahead, destination, n);
}

interface PendingSettle {
  claimed: Claimed<DeliveryRow>;
  result: DeliveryResult;
  resolve: (settled: boolean) => void;
  reject: (e: unknown) => void;
}

interface PendingAccept {
  req: AcceptRequest;
  resolve: (r: AcceptResult) => void;
  reject: (e: unknown) => void;
}

class DurableEngine implements Engine {
  readonly events = new EventEmitter<EngineEvents>();
  readonly counters: EngineCounters = {
    accepted: 0,
    duplicates: 0,
    conflicts: 0,
    backpressured: 0,
    processed: 0,
    handlerFailures: 0,
    delivered: 0,
    retried: 0,
    circuitOpenSkips: 0,
    deadLettered: 0,
    replayed: 0,
    purged: 0,
  };
  readonly deadLetters: Engine['deadLetters'];

  private readonly store: Store;
  private readonly sealer: PayloadSealer | undefined;
  /** Only personal data is sealed: the types that always carry it. */
  private readonly personalOnly: ReadonlySet<string> | undefined;
  private readonly log: EngineLogger;
  private readonly workers: number;
  private readonly handlerBatch: number;
  private readonly messageCapacity: number;
  private readonly minMessageClaim: number;
  private readonly minDeliveryClaim: number;
  private readonly deliveryWorkers: number;
  private readonly perDestination: number;
  private readonly leaseMs: number;
  private readonly pollMin: number;
  private readonly pollMax: number;
  private readonly gate: DeliveryGate | undefined;
  private readonly handlerMaxAttempts: number;
  private readonly handlerBaseDelay: number;
  private readonly handlerMaxDelay: number;
  private readonly deliveryMaxAttempts: number;
  private readonly idempotencyWindowMs: number;
  private readonly retentionMs: number;
  private readonly deadLetterRetentionMs: number;
  private readonly retentionInterval: number;
  private readonly retentionBatch: number;
  private readonly deferrableLimit: number;
  private readonly retryAfterSeconds: number;
  private readonly destinationBacklog: Record<string, number>;
  private readonly refreshMs: number;

  private readonly handlers = new Map<string, MessageHandler>();
  private readonly senders = new Map<string, Sender>();
  /** Group commits of accepts, and of delivery outcomes. */
  private readonly accepts: GroupCommit<PendingAccept>;
  private readonly settles: GroupCommit<PendingSettle>;

  private started = false;
  private stopping = false;
  private loops: Promise<void>[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private messagesInFlight = 0;
  private deliveriesInFlight = 0;
  /**
   * Handler batches committed relaxed (SQLite), and how many of them a `store.durable()` is
   * known to have put on disk: no delivery is sent while the two differ (see deliveryLoop).
   */
  private relaxedHandlerCommits = 0;
  private syncedHandlerCommits = 0;
  private readonly destinationInFlight = new Map<string, number>();
  private readonly messageWaker = new Waker();
  private readonly deliveryWaker = new Waker();
  private timers: NodeJS.Timeout[] = [];
  /** Claims in flight in this process, whose leases the heartbeat renews. */
  private readonly heldMessages = new Set<Claimed<MessageRow>>();
  private readonly heldDeliveries = new Set<Claimed<DeliveryRow>>();
  private renewing: Promise<void> | null = null;

  /** What the last depth read found. */
  private readBacklog = noBacklog();
  /**
   * What this engine has committed since the last depth read started, less what of it has left
   * the queue since (`leftQueue`), added to that read's figures until the next one:
   * back-pressure sees the engine's own writes at once, however far apart slow reads are spaced
   * (DEPTH_READ_SPACING). Other processes' writes are seen at the next read.
   */
  private readonly ownBacklog = noBacklog();
  private backlogRefreshedAt = 0;
  /** refreshMs, or more when the last depth read was slow (DEPTH_READ_SPACING). */
  private backlogRefreshEveryMs: number;
  private refreshing: Promise<void> | null = null;

  constructor(opts: EngineOptions) {
    this.store = opts.store;
    this.sealer = opts.sealer;
    this.personalOnly =
      opts.sealScope === 'personal-data' ? new Set(opts.personalDataTypes ?? []) : undefined;
    this.log = opts.logger ?? silentLogger;
    this.workers = Math.max(1, opts.workers ?? 8);
    this.handlerBatch = Math.max(
      1,
      opts.handlerBatch ?? (this.store.dialect === 'sqlite' ? Math.max(this.workers, 64) : 1),
    );
    this.deliveryWorkers = Math.max(1, opts.deliveryWorkers ?? 32);
    // Messages claimed and not yet committed. On SQLite a batch's handlers run one after another
    // in one transaction, so what bounds the work in flight is the batch, not `workers`: two
    // batches, one being written while the previous one's commit is made durable.
    this.messageCapacity =
      this.store.dialect === 'sqlite'
        ? Math.max(this.workers, this.handlerBatch * 2)
        : this.workers;
    this.minMessageClaim = Math.max(1, Math.floor(this.messageCapacity / 2));
    this.minDeliveryClaim = Math.max(1, Math.floor(this.deliveryWorkers / 4));
    this.perDestination = Math.max(1, opts.perDestinationInFlight ?? 16);
    this.leaseMs = Math.max(50, opts.leaseMs ?? 30_000);
    this.pollMin = Math.max(1, opts.pollMs?.min ?? 5);
    this.pollMax = Math.max(this.pollMin, opts.pollMs?.max ?? 250);
    this.gate = opts.gate;
    this.handlerMaxAttempts = Math.max(1, opts.handlerRetry?.maxAttempts ?? 5);
    this.handlerBaseDelay = Math.max(0, opts.handlerRetry?.baseDelayMs ?? 500);
    this.handlerMaxDelay = Math.max(this.handlerBaseDelay, opts.handlerRetry?.maxDelayMs ?? 60_000);
    this.deliveryMaxAttempts = Math.max(1, opts.deliveryMaxAttempts ?? 25);
    this.idempotencyWindowMs = opts.idempotencyWindowMs ?? 7 * DAY_MS;
    this.retentionMs = opts.retention?.completedMs ?? 7 * DAY_MS;
    this.deadLetterRetentionMs = opts.retention?.deadLettersMs ?? 30 * DAY_MS;
    this.retentionInterval = opts.retention?.intervalMs ?? 10 * 60_000;
    this.retentionBatch = Math.max(1, opts.retention?.batch ?? 1000);
    this.deferrableLimit = opts.backpressure?.deferrableBacklogLimit ?? 100_000;
    this.retryAfterSeconds = Math.max(1, opts.backpressure?.retryAfterSeconds ?? 30);
    this.destinationBacklog = opts.backpressure?.destinationBacklog ?? {};
    this.refreshMs = Math.max(10, opts.backpressure?.refreshMs ?? 1000);
    this.backlogRefreshEveryMs = this.refreshMs;
    // Up to four group commits of each kind in flight at once. On SQLite their writes are
    // serialised on the one connection (so commit order is accept order) while their WAL
    // fdatasyncs overlap: a batch forms and is written while the previous one is being made
    // durable.
    const groupCommit = {
      maxBatch: Math.max(1, opts.acceptBatchMax ?? 512),
      maxInFlight: 4,
      gatherMs: Math.max(0, opts.acceptGatherMs ?? 2),
    };
    this.accepts = new GroupCommit({ ...groupCommit, commit: (b) => this.flush(b) });
    this.settles = new GroupCommit({ ...groupCommit, commit: (b) => this.flushSettles(b) });

    const store = this.store;
    const sealer = this.sealer;
    this.deadLetters = {
      list: (filter, page) => listDeadLetters(store, filter, page, sealer),
      show: (id) => showDeadLetter(store, id, sealer),
      replay: async (id) => {
        const r = await replayDeadLetter(store, id);
        if (r) this.afterReplay([r]);
        return r;
      },
      replayMatching: async (filter, limit) => {
        const r = await replayDeadLetters(store, filter, limit === undefined ? {} : { limit });
        this.afterReplay(r);
        return r;
      },
    };
    if (this.sealer) {
      this.log.info?.(
        { payloadKeyId: this.sealer.keyId, sealScope: this.personalOnly ? 'personal-data' : 'all' },
        this.personalOnly
          ? 'engine: payloads carrying personal data are sealed at rest (AES-256-GCM); others are stored in clear'
          : 'engine: message, delivery and dead letter payloads are sealed at rest (AES-256-GCM)',
      );
    } else {
      this.log.info?.({}, 'engine: no payload key configured; payloads are stored in clear');
    }
    // An 'error' event without listeners would throw; errors are also logged.
    this.events.on('error', () => undefined);
  }

  get running(): boolean {
    return this.started && !this.stopping;
  }

  get payloadKeyId(): string | undefined {
    return this.sealer?.keyId;
  }

  readPayload(stored: unknown): unknown {
    return readStoredPayload(this.sealer, stored);
  }

  /** Whether an accepted or emitted request's payload is sealed. */
  private readonly sealWhen = (req: AcceptRequest): boolean =>
    !this.personalOnly || req.personalData === true || this.personalOnly.has(req.type);

  /** Whether a claimed message carries personal data (what its handler writes is sealed). */
  private personalMessage(row: MessageRow): boolean {
    return !this.personalOnly || this.personalOnly.has(row.type) || isSealedPayload(row.payload);
  }

  private afterReplay(results: ReplayResult[]): void {
    // What a replay queued again counts in the backlog at once, as the engine's own writes do.
    const requeued = noBacklog();
    for (const r of results) addWork(requeued, r.priority === 'deferrable', r.destination ?? null);
    this.countOwn(requeued);
    for (const r of results) {
      this.counters.replayed++;
      this.notify('replayed', r);
    }
    if (results.length > 0) {
      this.messageWaker.wake();
      this.deliveryWaker.wake();
    }
  }

  // ------------------------------------------------------------------------------ accept

  async acceptInTransaction(tx: StoreTx, req: AcceptRequest): Promise<AcceptResult> {
    validate(req);
    await lockPartitionKeys(tx, [req.partitionKey]);
    const r = await acceptInTx(tx, req, {
      now: Date.now(),
      idempotencyWindowMs: this.idempotencyWindowMs,
      refuseDeferrable: false,
      retryAfterSeconds: this.retryAfterSeconds,
      sealer: this.sealer,
      sealWhen: this.sealWhen,
    });
    if (r.outcome === 'accepted') this.counters.accepted++;
    return r;
  }

  wake(): void {
    this.messageWaker.wake();
  }

  accept(req: AcceptRequest): Promise<AcceptResult> {
    try {
      validate(req);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    if (req.priority === 'deferrable') this.maybeRefreshBacklog();
    return new Promise<AcceptResult>((resolve, reject) => {
      this.accepts.add({ req, resolve, reject });
    });
  }

  private async flush(batch: PendingAccept[]): Promise<void> {
    const now = Date.now();
    const opts = {
      now,
      idempotencyWindowMs: this.idempotencyWindowMs,
      refuseDeferrable:
        this.readBacklog.deferrable + this.ownBacklog.deferrable > this.deferrableLimit,
      retryAfterSeconds: this.retryAfterSeconds,
      sealer: this.sealer,
      sealWhen: this.sealWhen,
    };
    let results: (AcceptResult | Error)[];
    try {
      results = await acceptBatch(
        this.store,
        batch.map((b) => b.req),
        opts,
      );
    } catch (err) {
      if (batch.length === 1) {
        results = [err as Error];
      } else {
        // Isolate the failing request: each one in its own transaction.
        results = [];
        for (const b of batch) {
          try {
            results.push(
              await this.store.transaction(async (tx) => {
                await lockPartitionKeys(tx, [b.req.partitionKey]);
                return acceptInTx(tx, b.req, opts);
              }),
            );
          } catch (e) {
            results.push(e as Error);
          }
        }
      }
    }
    // Every caller is answered first; listeners of `accepted` hear of it after.
    const accepted: EngineEvents['accepted'][0][] = [];
    const queued = noBacklog();
    batch.forEach((b, i) => {
      const r = results[i]!;
      if (r instanceof Error) {
        b.reject(r);
        return;
      }
      switch (r.outcome) {
        case 'accepted':
          this.counters.accepted++;
          addWork(queued, b.req.priority === 'deferrable', null);
          accepted.push({
            messageId: r.messageId,
            type: b.req.type,
            priority: b.req.priority,
            source: b.req.source,
          });
          break;
        case 'duplicate':
          this.counters.duplicates++;
          break;
        case 'conflict':
          this.counters.conflicts++;
          break;
        case 'backpressure':
          this.counters.backpressured++;
          break;
      }
      b.resolve(r);
    });
    this.countOwn(queued);
    if (accepted.length === 0) return;
    this.messageWaker.wake();
    for (const e of accepted) this.notify('accepted', e);
  }

  private maybeRefreshBacklog(): void {
    if (this.refreshing || Date.now() - this.backlogRefreshedAt < this.backlogRefreshEveryMs) {
      return;
    }
    this.refreshing = this.refreshBacklog().finally(() => (this.refreshing = null));
  }

  private async refreshBacklog(): Promise<void> {
    // What is committed from now on may or may not be in this read; it stays counted on top of
    // it (twice at worst, until the next read). What was counted before goes once it answers.
    const before = {
      ahead: new Map(this.ownBacklog.ahead),
      deferrable: this.ownBacklog.deferrable,
    };
    try {
      const started = performance.now();
      const d = await queueDepths(this.store);
      const took = performance.now() - started;
      this.backlogRefreshEveryMs = Math.max(
        this.refreshMs,
        Math.min(MAX_BACKLOG_REFRESH_MS, Math.ceil(took * DEPTH_READ_SPACING)),
      );
      const deferrable = priorityOrder('deferrable');
      const read = noBacklog();
      for (const m of d.messages) addWork(read, m.priority === deferrable, null, m.n);
      // A destination's backlog is the work deferrable deliveries would wait behind.
      for (const x of d.deliveries) addWork(read, x.priority === deferrable, x.destination, x.n);
      this.readBacklog = read;
      const own = this.ownBacklog;
      own.deferrable = Math.max(0, own.deferrable - before.deferrable);
      for (const [dest, n] of before.ahead) takeFrom(own.ahead, dest, n);
      this.backlogRefreshedAt = Date.now();
    } catch (err) {
      // Nothing read: what was counted since the previous read still counts.
      this.reportError('backlog refresh', err);
      return;
    }
    this.reportBacklog(this.senders.keys());
  }

  /** Adds work this engine committed to the backlog between depth reads. */
  private countOwn(w: BacklogCounts): void {
    if (w.deferrable === 0 && w.ahead.size === 0) return;
    this.ownBacklog.deferrable += w.deferrable;
    for (const [dest, n] of w.ahead) addTo(this.ownBacklog.ahead, dest, n);
  }

  /**
   * A message or delivery of this engine's left the queue (done, delivered or dead): taken off
   * what it counted since the last read, never below none. One written before the read stays in
   * the read's figure until the next read (counted a while longer, never missed); one finished
   * while a read runs may be taken off twice until that read answers.
   */
  private leftQueue(priority: number, destination: string | null): void {
    const deferrable = priority === priorityOrder('deferrable');
    // A message counts only as deferrable work; the backlog ahead is deliveries'.
    if (!deferrable && destination === null) return;
    if (deferrable) this.ownBacklog.deferrable = Math.max(0, this.ownBacklog.deferrable - 1);
    else takeFrom(this.ownBacklog.ahead, destination!, 1);
  }

  /** A destination's backlog: the last read plus this engine's own writes since. */
  private backlogAhead(dest: string): number {
    return (this.readBacklog.ahead.get(dest) ?? 0) + (this.ownBacklog.ahead.get(dest) ?? 0);
  }

  /** Tells the gate these destinations' backlogs (its own congestion is judged on them). */
  private reportBacklog(destinations: Iterable<string>): void {
    if (!this.gate?.setBacklog) return;
    for (const dest of destinations) {
      try {
        this.gate.setBacklog(dest, this.backlogAhead(dest));
      } catch {
        // The gate has no policy for this destination; its deliveries will say so.
      }
    }
  }

  // -------------------------------------------------------------------------- registration

  registerHandler(type: string, handler: MessageHandler): void {
    if (this.handlers.has(type)) throw new Error(`a handler for ${type} is already registered`);
    this.handlers.set(type, handler);
  }

  registerSender(destination: string, sender: Sender): void {
    if (this.senders.has(destination)) {
      throw new Error(`a sender for ${destination} is already registered`);
    }
    this.senders.set(destination, sender);
    this.deliveryWaker.wake();
  }

  // ------------------------------------------------------------------------------- workers

  start(): void {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    this.loops = [this.messageLoop(), this.deliveryLoop()];
    this.timers.push(setInterval(() => this.maybeRefreshBacklog(), this.refreshMs));
    // Heartbeat: leases of work still running here are extended every third of leaseMs, so a
    // slow but alive worker keeps its claims; a dead one stops renewing and loses them.
    this.timers.push(
      setInterval(() => this.renewLeases(), Math.max(10, Math.floor(this.leaseMs / 3))),
    );
    if (this.retentionInterval > 0) {
      this.timers.push(
        setInterval(() => {
          this.purge().catch((err: unknown) => this.reportError('retention', err));
        }, this.retentionInterval),
      );
    }
    for (const t of this.timers) t.unref();
    this.maybeRefreshBacklog();
  }

  async stop(): Promise<void> {
    if (!this.started) {
      await this.drainGroupCommits();
      return;
    }
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.messageWaker.wake();
    this.deliveryWaker.wake();
    await Promise.allSettled(this.loops);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.drainGroupCommits();
    if (this.refreshing) await this.refreshing;
    if (this.renewing) await this.renewing;
    this.loops = [];
    this.started = false;
    this.stopping = false;
  }

  /** Commits what is still gathering (not after the store may be closed) and waits for it. */
  private async drainGroupCommits(): Promise<void> {
    await Promise.all([this.accepts.drain(), this.settles.drain()]);
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /** Extends the leases of claims still in flight here (one statement per table and token). */
  private renewLeases(): void {
    if (this.renewing || (this.heldMessages.size === 0 && this.heldDeliveries.size === 0)) return;
    const now = Date.now();
    // Renew what has used a third of its lease or more.
    const due = (until: number | null) => until !== null && until - now < (this.leaseMs * 2) / 3;
    const messages = [...this.heldMessages].filter((c) => due(c.row.lease_until));
    const deliveries = [...this.heldDeliveries].filter((c) => due(c.row.lease_until));
    if (messages.length === 0 && deliveries.length === 0) return;
    const leaseUntil = now + this.leaseMs;
    this.renewing = renewLeases(this.store, { messages, deliveries, leaseUntil })
      .then((renewed) => {
        for (const c of [...messages, ...deliveries]) {
          if (renewed.has(c.row.id)) c.row.lease_until = leaseUntil;
        }
      })
      .catch((err: unknown) => this.reportError('renew leases', err))
      .finally(() => (this.renewing = null));
  }

  /** The gate's view of a destination; undefined when it has no policy for it. */
  private gateStatus(destination: string) {
    try {
      return this.gate?.status?.(destination);
    } catch {
      return undefined;
    }
  }

  /**
   * Tells the listeners of an event. A listener that throws is reported as an engine error; it
   * never fails or interrupts the work the event reports.
   */
  private notify<K extends Exclude<keyof EngineEvents, 'error'>>(
    name: K,
    event: EngineEvents[K][0],
  ): void {
    try {
      (this.events as EventEmitter).emit(name, event);
    } catch (err) {
      this.reportError(`${name} listener`, err);
    }
  }

  private reportError(where: string, error: unknown): void {
    this.log.error({ err: error, where }, `engine: ${where} failed`);
    this.events.emit('error', { where, error });
  }

  private async messageLoop(): Promise<void> {
    let idle = this.pollMin;
    while (!this.stopping) {
      const free = this.messageCapacity - this.messagesInFlight;
      // Claim in batches: while work is in flight, wait until half the workers are free (each
      // claim is a commit; claiming one slot at a time would cap throughput at the claim rate).
      if (free <= 0 || (free < this.minMessageClaim && this.messagesInFlight > 0)) {
        await this.messageWaker.wait(this.pollMax);
        continue;
      }
      let claimed: Claimed<MessageRow>[] = [];
      try {
        claimed = await claimMessages(this.store, {
          limit: free,
          leaseMs: this.leaseMs,
          now: Date.now(),
        });
      } catch (err) {
        if (this.stopping) break;
        this.reportError('claim messages', err);
        await this.messageWaker.wait(this.pollMax);
        continue;
      }
      if (claimed.length === 0) {
        await this.messageWaker.wait(idle);
        idle = Math.min(idle * 2, this.pollMax);
        continue;
      }
      idle = this.pollMin;
      for (const c of claimed) this.heldMessages.add(c);
      if (this.handlerBatch > 1) {
        for (let i = 0; i < claimed.length; i += this.handlerBatch) {
          const chunk = claimed.slice(i, i + this.handlerBatch);
          this.messagesInFlight += chunk.length;
          this.track(
            this.processBatch(chunk).finally(() => {
              for (const c of chunk) this.heldMessages.delete(c);
              this.messagesInFlight -= chunk.length;
              this.messageWaker.wake();
            }),
          );
        }
        continue;
      }
      for (const c of claimed) {
        this.messagesInFlight++;
        this.track(
          this.processMessage(c).finally(() => {
            this.heldMessages.delete(c);
            this.messagesInFlight--;
            this.messageWaker.wake();
          }),
        );
      }
    }
  }

  private handlerBackoff(attempt: number): number {
    const ceiling = Math.min(this.handlerMaxDelay, this.handlerBaseDelay * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** Runs a claimed message's handler inside `sql`; throws when it fails or the lease is lost. */
  private async runHandler(
    sql: StoreTx,
    c: Claimed<MessageRow>,
    promote = true,
  ): Promise<HandlerEffects> {
    const msg = toQueuedMessage(c.row, this.sealer);
    const handler = this.handlers.get(msg.type);
    const personal = this.sealer !== undefined && this.personalMessage(c.row);
    if (!handler) throw new PermanentError(`no handler registered for ${msg.type}`);
    const effects: HandlerEffects = { emitted: 0, delivered: 0, ahead: new Map(), deferrable: 0 };
    // The done-mark first: on PostgreSQL it locks the row, so a worker that re-claimed an
    // expired lease cannot commit the same message's effects twice.
    await markMessageDone(sql, msg.id, c.leaseToken, Date.now());
    const perDestination = new Map<string, number>();
    const tx: HandlerTx = {
      dialect: sql.dialect,
      message: msg,
      query: (s, p) => sql.query(s, p),
      execute: (s, p) => sql.execute(s, p),
      state: stateAccess(sql, Date.now),
      emit: async (e: EmitRequest) => {
        effects.emitted++;
        return this.emitInTx(sql, msg, e, effects, personal);
      },
      deliver: async (d: DeliveryRequest) => {
        const n = (perDestination.get(d.destination) ?? 0) + 1;
        perDestination.set(d.destination, n);
        effects.delivered++;
        const priority = d.priority ?? msg.priority;
        addWork(effects, priority === 'deferrable', d.destination);
        return insertDelivery(
          sql,
          {
            messageId: msg.id,
            destination: d.destination,
            idempotencyKey: d.idempotencyKey ?? `${msg.id}/${d.destination}/${n}`,
            priority,
            payload: d.payload,
            headers: d.headers,
            traceparent: d.traceparent ?? msg.traceparent,
            availableAt: d.availableAt,
            originAt: c.row.accepted_at,
          },
          Date.now(),
          personal || d.personalData === true ? this.sealer : undefined,
        );
      },
    };
    await handler(msg, tx);
    if (promote) promoteNextHeadAtCommit(sql, c.row);
    return effects;
  }

  private async processMessage(c: Claimed<MessageRow>): Promise<void> {
    let effects: HandlerEffects;
    try {
      effects = await this.store.transaction((sql) => this.runHandler(sql, c));
    } catch (err) {
      await this.handlerFailed(c, err);
      return;
    }
    this.handlerSucceeded(c, effects);
  }

  /**
   * A chunk of claimed messages runs in ONE transaction, each handler in its own savepoint (a
   * failing handler rolls back to it and leaves the others), so many messages share one commit
   * and one fsync. On SQLite handlers run one at a time in any case (one writer).
   *
   * On SQLite the batch commits relaxed: its effects are written to the WAL without waiting for
   * the disk, and the delivery loop sends nothing until `store.durable()` has put them there
   * (one fdatasync off the event loop for all the batches since the last). Lost with the
   * machine before that, the batch leaves no trace outside: its messages are still queued and
   * run again, and the deliveries it wrote were never sent (ADR 0004).
   */
  private async processBatch(batch: Claimed<MessageRow>[]): Promise<void> {
    const outcomes: ({ ok: true; effects: HandlerEffects } | { ok: false; error: unknown })[] = [];
    try {
      // SQLite (one writer, nothing interleaves): the next heads of the finished keys are
      // promoted once for the batch, before the commit, and the commit is relaxed (above);
      // PostgreSQL promotes per message under the key's lock.
      const sqlite = this.store.dialect === 'sqlite';
      await this.store.transaction(
        async (sql) => {
          const finished: FinishedMessage[] = [];
          for (const c of batch) {
            await sql.execute('SAVEPOINT handler');
            try {
              const effects = await this.runHandler(sql, c, !sqlite);
              await sql.execute('RELEASE SAVEPOINT handler');
              outcomes.push({ ok: true, effects });
              finished.push(c.row);
            } catch (error) {
              await sql.execute('ROLLBACK TO SAVEPOINT handler');
              await sql.execute('RELEASE SAVEPOINT handler');
              outcomes.push({ ok: false, error });
            }
          }
          if (!sqlite) return;
          await promoteNextHeads(sql, finished);
          // Counted before the COMMIT (under the store's lock): a delivery claimed after this
          // commit always finds it counted. A commit that then fails only costs one sync.
          this.relaxedHandlerCommits++;
        },
        { relaxed: sqlite },
      );
    } catch (err) {
      // Nothing committed: every message of the batch failed this time.
      for (const c of batch) await this.handlerFailed(c, err);
      return;
    }
    for (let i = 0; i < batch.length; i++) {
      const o = outcomes[i]!;
      if (o.ok) this.handlerSucceeded(batch[i]!, o.effects);
      else await this.handlerFailed(batch[i]!, o.error);
    }
  }

  private handlerSucceeded(c: Claimed<MessageRow>, effects: HandlerEffects): void {
    this.counters.processed++;
    this.leftQueue(c.row.priority, null);
    this.notify('processed', {
      messageId: c.row.id,
      type: c.row.type,
      priority: priorityOf(c.row.priority),
      latencyMs: Date.now() - c.row.accepted_at,
    });
    this.countOwn(effects);
    if (effects.emitted > 0) this.messageWaker.wake();
    if (effects.delivered > 0) this.deliveryWaker.wake();
  }

  private async handlerFailed(c: Claimed<MessageRow>, err: unknown): Promise<void> {
    if (err instanceof LeaseLostError) {
      this.log.warn({ messageId: c.row.id }, 'engine: lease lost; another worker has the message');
      return;
    }
    await this.messageFailed(c, err);
  }

  private async emitInTx(
    sql: StoreTx,
    parent: ReturnType<typeof toQueuedMessage>,
    e: EmitRequest,
    effects: HandlerEffects,
    personal: boolean,
  ): Promise<string> {
    const now = Date.now();
    const n = effects.emitted;
    const req: AcceptRequest = {
      source: e.source ?? 'middlemart',
      idempotencyKey: e.idempotencyKey ?? `${parent.id}/emit/${n}`,
      requestHash: e.requestHash ?? '',
      type: e.type,
      partitionKey: e.partitionKey,
      priority: e.priority ?? parent.priority,
      payload: e.payload,
      ...((e.traceparent ?? parent.traceparent)
        ? { traceparent: (e.traceparent ?? parent.traceparent) as string }
        : {}),
      ...(e.availableAt ? { availableAt: e.availableAt } : {}),
      ...(personal || e.personalData ? { personalData: true } : {}),
    };
    validate(req);
    await lockPartitionKeys(sql, [req.partitionKey]);
    const r = await acceptInTx(sql, req, {
      now,
      idempotencyWindowMs: this.idempotencyWindowMs,
      refuseDeferrable: false,
      retryAfterSeconds: this.retryAfterSeconds,
      sealer: this.sealer,
      sealWhen: this.sealWhen,
    });
    if (r.outcome === 'backpressure') throw new Error('unreachable: emit refused');
    if (r.outcome === 'accepted') addWork(effects, req.priority === 'deferrable', null);
    return r.messageId;
  }

  private async messageFailed(c: Claimed<MessageRow>, err: unknown): Promise<void> {
    const permanent = err instanceof PermanentError;
    const exhausted = c.row.attempts >= this.handlerMaxAttempts;
    const error = errorText(err);
    this.counters.handlerFailures++;
    const retryAfterMs = permanent || exhausted ? null : this.handlerBackoff(c.row.attempts);
    try {
      const r = await failMessage(this.store, c, {
        now: Date.now(),
        error,
        retryAfterMs,
        reason: permanent ? 'permanent handler failure' : 'handler attempts exhausted',
      });
      if (r === 'retry') {
        this.counters.retried++;
        this.notify('retried', {
          kind: 'message',
          id: c.row.id,
          afterMs: retryAfterMs ?? 0,
          error,
        });
      } else if (r === 'dead') {
        this.counters.deadLettered++;
        this.leftQueue(c.row.priority, null);
        this.notify('dead-lettered', {
          kind: 'message',
          id: c.row.id,
          type: c.row.type,
          reason: permanent ? 'permanent handler failure' : 'handler attempts exhausted',
        });
        this.messageWaker.wake();
      }
      this.log.warn(
        { messageId: c.row.id, type: c.row.type, error, outcome: r },
        'engine: handler failed',
      );
    } catch (e) {
      // The lease will expire and the message will be claimed again.
      this.reportError('record handler failure', e);
    }
  }

  // ---------------------------------------------------------------------------- deliveries

  private async deliveryLoop(): Promise<void> {
    let idle = this.pollMin;
    let warned = false;
    while (!this.stopping) {
      const free = this.deliveryWorkers - this.deliveriesInFlight;
      const waitForMore = free < this.minDeliveryClaim && this.deliveriesInFlight > 0;
      if (free <= 0 || waitForMore || this.senders.size === 0 || !this.gate) {
        if (!this.gate && this.senders.size > 0 && !warned) {
          warned = true;
          this.log.warn({}, 'engine: senders registered but no delivery gate; deliveries wait');
        }
        await this.deliveryWaker.wait(this.pollMax);
        continue;
      }
      const destinations = [...this.senders.keys()];
      const congested = new Set(
        Object.entries(this.destinationBacklog)
          .filter(([dest, limit]) => this.backlogAhead(dest) > limit)
          .map(([dest]) => dest),
      );
      this.reportBacklog(destinations);
      for (const d of destinations) if (this.gateStatus(d)?.congested) congested.add(d);
      let claimed: Claimed<DeliveryRow>[] = [];
      try {
        claimed = await claimDeliveries(this.store, {
          limit: Math.min(free, this.perDestination * destinations.length),
          leaseMs: this.leaseMs,
          now: Date.now(),
          destinations,
          congested: [...congested],
          room: new Map(
            destinations.map((d) => [
              d,
              this.perDestination - (this.destinationInFlight.get(d) ?? 0),
            ]),
          ),
        });
      } catch (err) {
        if (this.stopping) break;
        this.reportError('claim deliveries', err);
        await this.deliveryWaker.wait(this.pollMax);
        continue;
      }
      if (claimed.length === 0) {
        await this.deliveryWaker.wait(idle);
        idle = Math.min(idle * 2, this.pollMax);
        continue;
      }
      idle = this.pollMin;
      // Handler batches committed relaxed since the last sync (one of them may have written
      // these deliveries): on disk before anything they wrote leaves the process.
      try {
        await this.durableHandlerEffects();
      } catch (err) {
        if (this.stopping) break;
        // Nothing is sent; the claims' leases expire and the deliveries are claimed again.
        this.reportError('flush handler commits', err);
        await this.deliveryWaker.wait(this.pollMax);
        continue;
      }
      for (const c of claimed) {
        const dest = c.row.destination;
        this.deliveriesInFlight++;
        this.destinationInFlight.set(dest, (this.destinationInFlight.get(dest) ?? 0) + 1);
        this.heldDeliveries.add(c);
        this.track(
          this.attemptDelivery(c).finally(() => {
            this.heldDeliveries.delete(c);
            this.deliveriesInFlight--;
            this.destinationInFlight.set(dest, (this.destinationInFlight.get(dest) ?? 1) - 1);
            this.deliveryWaker.wake();
          }),
        );
      }
    }
  }

  async durableHandlerEffects(): Promise<void> {
    if (this.relaxedHandlerCommits === this.syncedHandlerCommits) return;
    const upTo = this.relaxedHandlerCommits;
    await this.store.durable();
    this.syncedHandlerCommits = Math.max(this.syncedHandlerCommits, upTo);
  }

  private async attemptDelivery(c: Claimed<DeliveryRow>): Promise<void> {
    const gate = this.gate!;
    let delivery: OutboundDelivery;
    try {
      delivery = toOutboundDelivery(c.row, this.sealer);
    } catch (err) {
      // A payload sealed under a key this process does not have: nothing is sent; the attempt
      // counts, so the delivery is retried (another process, or this one after a restart with
      // the key, may open it) and finally dead-lettered with the reason.
      await this.unreadableDelivery(c, errorText(err));
      return;
    }
    const sender = this.senders.get(delivery.destination);
    let result: DeliveryResult;
    const started = Date.now();
    if (!sender) {
      result = { kind: 'postpone', afterMs: this.pollMax, why: 'no-sender' };
    } else {
      try {
        const outcome = await gate.attempt({
          destination: delivery.destination,
          idempotencyKey: delivery.idempotencyKey,
          attempt: delivery.attempt,
          ...(delivery.traceparent ? { traceparent: delivery.traceparent } : {}),
          send: (ctx) =>
            sender(delivery, {
              signal: ctx.signal,
              idempotencyKey: ctx.idempotencyKey,
              attempt: delivery.attempt,
            }),
        });
        switch (outcome.kind) {
          case 'delivered':
            result = { kind: 'delivered', status: outcome.status, latencyMs: outcome.latencyMs };
            break;
          case 'retry':
            if (outcome.notSent) {
              // Deferred by the destination's own limits: nothing was sent, no attempt counted.
              result = { kind: 'postpone', afterMs: outcome.afterMs, why: 'deferred' };
              break;
            }
            result =
              delivery.attempt >= this.deliveryMaxAttempts
                ? {
                    kind: 'dead',
                    reason: 'delivery attempts exhausted',
                    error: outcome.error,
                    ...(outcome.status !== undefined ? { status: outcome.status } : {}),
                    latencyMs: outcome.latencyMs,
                  }
                : outcome;
            break;
          case 'permanent':
            result = {
              kind: 'dead',
              reason: 'permanent delivery failure',
              error: outcome.error,
              ...(outcome.status !== undefined ? { status: outcome.status } : {}),
              latencyMs: outcome.latencyMs,
            };
            break;
          case 'circuit-open':
            result = { kind: 'postpone', afterMs: outcome.afterMs, why: 'circuit-open' };
            break;
        }
      } catch (err) {
        // The gate itself failed: count it as a retryable attempt.
        const error = errorText(err);
        result =
          delivery.attempt >= this.deliveryMaxAttempts
            ? {
                kind: 'dead',
                reason: 'delivery attempts exhausted',
                error,
                latencyMs: Date.now() - started,
              }
            : {
                kind: 'retry',
                afterMs: this.handlerBackoff(delivery.attempt),
                error,
                latencyMs: Date.now() - started,
              };
      }
    }
    let settled = false;
    try {
      settled = await this.settle(c, result);
    } catch (err) {
      this.reportError('record delivery outcome', err);
      return;
    }
    if (!settled) {
      this.log.warn(
        { deliveryId: delivery.id },
        'engine: delivery lease lost before its outcome was recorded',
      );
      return;
    }
    switch (result.kind) {
      case 'delivered':
        this.counters.delivered++;
        this.notify('delivered', {
          deliveryId: delivery.id,
          destination: delivery.destination,
          priority: delivery.priority,
          attempt: delivery.attempt,
          latencyMs: result.latencyMs,
          endToEndMs: Date.now() - (c.row.origin_at ?? c.row.created_at),
        });
        break;
      case 'retry':
        this.counters.retried++;
        this.notify('retried', {
          kind: 'delivery',
          id: delivery.id,
          destination: delivery.destination,
          afterMs: result.afterMs,
          error: result.error,
        });
        break;
      case 'dead':
        this.counters.deadLettered++;
        this.notify('dead-lettered', {
          kind: 'delivery',
          id: delivery.id,
          destination: delivery.destination,
          reason: result.reason,
        });
        break;
      case 'postpone':
        if (result.why === 'circuit-open') {
          this.counters.circuitOpenSkips++;
          this.notify('circuit-open', {
            destination: delivery.destination,
            deliveryId: delivery.id,
          });
        }
        break;
    }
  }

  private async unreadableDelivery(c: Claimed<DeliveryRow>, error: string): Promise<void> {
    const attempt = c.row.attempts + 1;
    const result: DeliveryResult =
      attempt >= this.deliveryMaxAttempts
        ? { kind: 'dead', reason: 'payload cannot be opened', error, latencyMs: 0 }
        : { kind: 'retry', afterMs: this.handlerBackoff(attempt), error, latencyMs: 0 };
    this.log.error({ deliveryId: c.row.id, error }, 'engine: delivery payload cannot be opened');
    try {
      if (!(await this.settle(c, result))) return;
    } catch (err) {
      this.reportError('record delivery outcome', err);
      return;
    }
    if (result.kind === 'dead') {
      this.counters.deadLettered++;
      this.notify('dead-lettered', {
        kind: 'delivery',
        id: c.row.id,
        destination: c.row.destination,
        reason: result.reason,
      });
    } else {
      this.counters.retried++;
      this.notify('retried', {
        kind: 'delivery',
        id: c.row.id,
        destination: c.row.destination,
        afterMs: result.afterMs,
        error,
      });
    }
  }

  /** Group commit for delivery outcomes (see GroupCommit). */
  private async settle(claimed: Claimed<DeliveryRow>, result: DeliveryResult): Promise<boolean> {
    const settled = await new Promise<boolean>((resolve, reject) => {
      this.settles.add({ claimed, result, resolve, reject });
    });
    if (settled && (result.kind === 'delivered' || result.kind === 'dead')) {
      this.leftQueue(claimed.row.priority, claimed.row.destination);
    }
    return settled;
  }

  /**
   * A delivery outcome is a relaxed commit (not waited to disk, like a claim): it records what
   * the destination already did, so losing it with the machine only repeats the attempt, under
   * the idempotency key stored on the delivery, and the destination does not apply it twice. The
   * next durable commit (an accept, a handler's) flushes it in order.
   */
  private async flushSettles(batch: PendingSettle[]): Promise<void> {
    const now = Date.now();
    const relaxed = { relaxed: true };
    try {
      const results = await this.store.transaction(
        (tx) => settleDeliveriesInTx(tx, batch, now),
        relaxed,
      );
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      for (const b of batch) {
        try {
          b.resolve(
            await this.store.transaction(
              (tx) => settleDeliveryInTx(tx, b.claimed, b.result, now),
              relaxed,
            ),
          );
        } catch (e) {
          b.reject(e);
        }
      }
    }
  }

  // --------------------------------------------------------------------------- operations

  async stats(): Promise<EngineStats> {
    const now = Date.now();
    const d = await queueDepths(this.store);
    const figure = () => ({ depth: 0, oldestAgeMs: 0 });
    const byClass = {
      critical: figure(),
      standard: figure(),
      deferrable: figure(),
    } as Record<PriorityClass, { depth: number; oldestAgeMs: number }>;
    const total = figure();
    for (const m of d.messages) {
      const f = byClass[priorityOf(m.priority)];
      const age = m.oldest === null ? 0 : Math.max(0, now - m.oldest);
      f.depth += m.n;
      f.oldestAgeMs = Math.max(f.oldestAgeMs, age);
      total.depth += m.n;
      total.oldestAgeMs = Math.max(total.oldestAgeMs, age);
    }
    const byDestination: EngineStats['deliveries']['byDestination'] = {};
    const dTotal = figure();
    for (const x of d.deliveries) {
      const entry = (byDestination[x.destination] ??= {
        depth: 0,
        oldestAgeMs: 0,
        byClass: { critical: 0, standard: 0, deferrable: 0 },
        congested: false,
      });
      const age = x.oldest === null ? 0 : Math.max(0, now - x.oldest);
      entry.depth += x.n;
      entry.byClass[priorityOf(x.priority)] += x.n;
      entry.oldestAgeMs = Math.max(entry.oldestAgeMs, age);
      dTotal.depth += x.n;
      dTotal.oldestAgeMs = Math.max(dTotal.oldestAgeMs, age);
    }
    for (const [dest, entry] of Object.entries(byDestination)) {
      const st = this.gateStatus(dest);
      if (st) entry.circuit = st.circuit;
      const limit = this.destinationBacklog[dest];
      const ahead = entry.byClass.critical + entry.byClass.standard;
      entry.congested = Boolean(st?.congested) || (limit !== undefined && ahead > limit);
    }
    return {
      at: new Date(now).toISOString(),
      messages: { total, byClass, inFlight: this.messagesInFlight },
      deliveries: { total: dTotal, byDestination, inFlight: this.deliveriesInFlight },
      deadLetters: d.deadLetters,
    };
  }

  async purge(): Promise<PurgeReport> {
    const r = await purgeExpired(
      this.store,
      {
        completedMs: this.retentionMs,
        deadLettersMs: this.deadLetterRetentionMs,
        batch: this.retentionBatch,
      },
      Date.now(),
    );
    this.counters.purged += r.messages + r.deliveries + r.idempotencyKeys + r.deadLetters;
    this.notify('purged', r);
    return r;
  }
}

function priorityOrder(p: PriorityClass): number {
  return PRIORITY_CLASSES.indexOf(p);
}

export function createEngine(options: EngineOptions): Engine {
  return new DurableEngine(options);
}
