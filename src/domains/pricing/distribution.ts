// The pricing process: ingest (submissions and `price.changed` events become calendar entries,
// approved or held), the distribution clock (due keys are resolved at their effective times and
// pushed, newest version only, within each channel's call budget) and the read-back
// verification. Handlers run in engine transactions; the clock and the verifier are background
// loops that only ask the engine for work (a deferrable tick message), so price distribution
// never takes a worker from orders or stock.
import { readdir, readFile, rename, mkdir, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type {
  AcceptResult,
  Engine,
  HandlerTx,
  PriorityClass,
  QueuedMessage,
} from '../../runtime/index.js';
import { PermanentError } from '../../runtime/index.js';
import { PromotionV1 } from '../../canonical/index.js';
import {
  acknowledgePricePush,
  endPromotion,
  distributionDue,
  isPricePushResult,
  planPricePushes,
  recordChanges,
  recordVerification,
  resolveDuePrices,
  settleUnlisted,
  sendsInFlight,
  verificationCandidates,
  type PricingStore,
  type VerifyOutcome,
} from './calendar.js';
import { parsePriceCsv, parsePrices, type InputError, type PriceChangeInput } from './input.js';
import { parseSyncKey, type ApprovalRules, type PriceTarget } from './model.js';

/** Internal message: one submission of price changes (REST push or price file). */
export const PRICE_SUBMISSION_TYPE = 'com.middlemart.pricing.submission.v1';
/** Internal message: resolve due keys and plan pushes now. */
export const PRICE_TICK_TYPE = 'com.middlemart.pricing.distribution-due.v1';
/** The canonical events the generic ingest accepts. */
export const PRICE_CHANGED_TYPE = 'com.middlemart.price.changed.v1';
export const PROMOTION_CHANGED_TYPE = 'com.middlemart.promotion.changed.v1';

export interface PriceSubmission {
  source: string;
  changes: PriceChangeInput[];
}

/** How hard pushes to one target may go: its rate limit and how many may be in flight. */
export interface PushBudget {
  perSecond: number;
  burst: number;
  maxInFlight: number;
}

/** What a channel shows now for SKUs of one scope (read back for verification). */
export type ChannelPriceReader = (
  scope: string,
  skus: readonly string[],
) => Promise<Map<string, { listMinor: number; saleMinor?: number | undefined }>>;

export interface PricingOptions {
  store: PricingStore;
  engine: Pick<Engine, 'accept' | 'registerHandler'>;
  targets: readonly PriceTarget[];
  rules: ApprovalRules;
  priority: PriorityClass;
  leadTimeMs: number;
  tickIntervalMs: number;
  budgets: ReadonlyMap<string, PushBudget>;
  /**
   * Whether a target's channel sells a SKU (undefined: not known yet). A SKU it does not sell
   * is not pushed there.
   */
  listings?: ReadonlyMap<string, (sku: string) => boolean | undefined>;
  /** How long a claimed push may stay unacknowledged before it is planned again. */
  leaseMs?: number;
  verification?: {
    intervalMs: number;
    delayMs: number;
    readers: ReadonlyMap<string, ChannelPriceReader>;
    onChecked?: (target: string, outcomes: Record<VerifyOutcome, number>) => void | Promise<void>;
  };
  fileDrop?: { dir: string; pollIntervalMs: number };
  now?: () => number;
  onError?: (where: string, err: unknown) => void;
}

export type SubmitResult = AcceptResult;

interface Bucket {
  tokens: number;
  at: number;
}

function refill(b: Bucket | undefined, budget: PushBudget, now: number): Bucket {
  if (!b) return { tokens: budget.burst, at: now };
  const tokens = Math.min(
    budget.burst,
    b.tokens + (Math.max(0, now - b.at) * budget.perSecond) / 1000,
  );
  return { tokens, at: now };
}

export class PricingDesk {
  readonly targets: ReadonlyMap<string, PriceTarget>;
  private readonly now: () => number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private tickQueuedAt: number | undefined;
  private running: Promise<unknown>[] = [];

  constructor(private readonly opts: PricingOptions) {
    this.targets = new Map(opts.targets.map((t) => [t.system, t]));
    this.now = opts.now ?? Date.now;
  }

  /** Registers the engine handlers of submissions, `price.changed` and the distribution tick. */
  registerHandlers(): void {
    const { engine } = this.opts;
    engine.registerHandler(PRICE_SUBMISSION_TYPE, (m, tx) => this.recordSubmission(m, tx));
    engine.registerHandler(PRICE_CHANGED_TYPE, (m, tx) => this.recordPriceEvent(m, tx));
    engine.registerHandler(PRICE_TICK_TYPE, (_m, tx) => this.distribute(tx));
    engine.registerHandler(PROMOTION_CHANGED_TYPE, (m, tx) => this.recordPromotionEvent(m, tx));
  }

  /**
   * `promotion.changed`: a withdrawn promotion, or one ended before its planned end, stops its
   * price changes (prices themselves arrive as `price.changed` or submissions).
   */
  private async recordPromotionEvent(m: QueuedMessage, tx: HandlerTx): Promise<void> {
    const parsed = PromotionV1.safeParse((m.payload as { data?: unknown } | null)?.data);
    if (!parsed.success) {
      throw new PermanentError(
        parsed.error.issues.map((i) => `data.${i.path.join('.')}: ${i.message}`).join('; '),
      );
    }
    const p = parsed.data;
    const now = this.now();
    if (p.status === 'withdrawn') {
      await endPromotion(tx, p.id, now, { targets: this.opts.targets, now });
    } else if (p.status === 'ended') {
      const at = p.effectiveUntil !== undefined ? Math.min(Date.parse(p.effectiveUntil), now) : now;
      await endPromotion(tx, p.id, at, { targets: this.opts.targets, now });
    } else if (p.effectiveUntil !== undefined) {
      // A shortened promotion: changes beyond its new end stop there.
      await endPromotion(tx, p.id, Date.parse(p.effectiveUntil), {
        targets: this.opts.targets,
        now,
      });
    }
  }

  /** Accepts a submission durably (idempotent per source and key); the handler records it. */
  submit(req: {
    source: string;
    changes: PriceChangeInput[];
    idempotencyKey: string;
    requestHash: string;
    traceparent?: string;
  }): Promise<AcceptResult> {
    const payload: PriceSubmission = { source: req.source, changes: req.changes };
    return this.opts.engine.accept({
      source: req.source,
      idempotencyKey: req.idempotencyKey,
      requestHash: req.requestHash,
      type: PRICE_SUBMISSION_TYPE,
      partitionKey: 'pricing/submissions',
      priority: this.opts.priority,
      payload,
      ...(req.traceparent ? { traceparent: req.traceparent } : {}),
    });
  }

  private async recordSubmission(m: QueuedMessage, tx: HandlerTx): Promise<void> {
    const p = m.payload as PriceSubmission;
    if (!p || !Array.isArray(p.changes))
      throw new PermanentError('a price submission without changes');
    await recordChanges(tx, p.changes, {
      submission: m.id,
      source: p.source,
      ingestedAt: Date.parse(m.acceptedAt),
      rules: this.opts.rules,
      targets: this.opts.targets,
      now: this.now(),
    });
  }

  private async recordPriceEvent(m: QueuedMessage, tx: HandlerTx): Promise<void> {
    const data = (m.payload as { data?: unknown } | null)?.data;
    const parsed = parsePrices([data], 'data');
    if (!parsed.ok) {
      throw new PermanentError(parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; '));
    }
    await recordChanges(tx, parsed.changes, {
      submission: m.id,
      source: m.source,
      ingestedAt: Date.parse(m.acceptedAt),
      rules: this.opts.rules,
      targets: this.opts.targets,
      now: this.now(),
    });
  }

  /** The tick: resolve due keys, then plan pushes per target within its budget. */
  async distribute(tx: HandlerTx): Promise<void> {
    this.tickQueuedAt = undefined;
    const now = this.now();
    // Bounded, so one tick never holds the store long; the rest is due on the next tick.
    await resolveDuePrices(tx, this.targets, { now, leadMs: this.opts.leadTimeMs, limit: 1000 });
    for (const target of this.targets.values()) {
      const budget = this.opts.budgets.get(target.system) ?? {
        perSecond: 10,
        burst: 10,
        maxInFlight: 20,
      };
      const sells = this.opts.listings?.get(target.system);
      if (sells) await settleUnlisted(tx, target.system, sells, now);
      const stateKey = `budget/${target.system}`;
      const bucket = refill(await tx.state.get<Bucket>('pricing', stateKey), budget, now);
      const room = budget.maxInFlight - (await sendsInFlight(tx, target.system, now));
      const calls = Math.max(0, Math.min(Math.floor(bucket.tokens), room));
      const planned = await planPricePushes(tx, target.system, {
        now,
        calls,
        leaseMs: this.opts.leaseMs ?? 600_000,
        priority: this.opts.priority,
      });
      await tx.state.put('pricing', stateKey, { tokens: bucket.tokens - planned, at: now });
    }
  }

  /** The acknowledgement of a push (registered with the app for process `price`). */
  async acknowledge(
    ack: { correlation: { id: string }; result?: unknown; at: string },
    tx: HandlerTx,
  ): Promise<void> {
    const key = parseSyncKey(ack.correlation.id);
    if (!key || !isPricePushResult(ack.result)) return;
    await acknowledgePricePush(
      tx,
      { target: key.system, scope: key.scope, sku: key.sku },
      ack.result,
      Date.parse(ack.at),
    );
  }

  /** Asks the engine for a tick when something is due (at most one queued at a time). */
  async requestTick(): Promise<void> {
    const now = this.now();
    if (this.tickQueuedAt !== undefined && now - this.tickQueuedAt < 30_000) return;
    if (!(await distributionDue(this.opts.store, now, this.opts.leadTimeMs))) return;
    const r = await this.opts.engine.accept({
      source: 'middlemart',
      idempotencyKey: `pricing-tick/${now}/${Math.random().toString(36).slice(2, 10)}`,
      requestHash: 'tick',
      type: PRICE_TICK_TYPE,
      partitionKey: 'pricing/distribution',
      priority: this.opts.priority,
      payload: { at: new Date(now).toISOString() },
    });
    if (r.outcome === 'accepted') this.tickQueuedAt = now;
  }

  /** One verification pass over every target with a reader. */
  async verifyOnce(): Promise<void> {
    const v = this.opts.verification;
    if (!v) return;
    for (const target of this.targets.values()) {
      const reader = v.readers.get(target.system);
      const now = this.now();
      const candidates = await verificationCandidates(this.opts.store, target.system, {
        ackedBefore: now - v.delayMs,
        limit: 500,
      });
      if (candidates.length === 0) continue;
      const outcomes: Record<VerifyOutcome, number> = {
        match: 0,
        mismatch: 0,
        'not-listed': 0,
        unreadable: 0,
      };
      const byScope = new Map<string, typeof candidates>();
      for (const c of candidates) {
        if (!byScope.has(c.scope)) byScope.set(c.scope, []);
        byScope.get(c.scope)!.push(c);
      }
      for (const [scope, list] of byScope) {
        let seen: Awaited<ReturnType<ChannelPriceReader>> | undefined;
        const listed = list.filter((c) => c.listed);
        if (reader && listed.length > 0) {
          try {
            seen = await reader(
              scope,
              listed.map((c) => c.sku),
            );
          } catch (err) {
            this.opts.onError?.(`verification of ${target.system}`, err);
            continue; // tried again on the next pass
          }
        }
        const verdicts: Array<{
          c: (typeof list)[number];
          outcome: VerifyOutcome;
          observed: ReturnType<NonNullable<typeof seen>['get']>;
        }> = [];
        for (const c of list) {
          let outcome: VerifyOutcome;
          const observed = seen?.get(c.sku);
          if (!c.listed) outcome = 'not-listed';
          else if (!reader) outcome = 'unreadable';
          else if (!observed) outcome = 'mismatch';
          else {
            outcome =
              observed.listMinor === c.listMinor &&
              (observed.saleMinor ?? null) === (c.saleMinor ?? null)
                ? 'match'
                : 'mismatch';
          }
          outcomes[outcome]++;
          verdicts.push({ c, outcome, observed });
        }
        // One commit for the scope's verdicts, not one per SKU: verification is background work
        // and must not take the writer from orders and stock once per price.
        const at = this.now();
        await this.opts.store.transaction(async (tx) => {
          for (const v of verdicts) {
            await recordVerification(tx, target.system, v.c, v.outcome, v.observed, at);
          }
        });
      }
      await v.onChecked?.(target.system, outcomes);
    }
  }

  /** Reads the price files waiting in the drop folder (`prices-*.csv`). */
  async pollPriceFiles(): Promise<
    Array<{ file: string; changes?: number; errors?: InputError[] }>
  > {
    const drop = this.opts.fileDrop;
    if (!drop) return [];
    await mkdir(drop.dir, { recursive: true });
    const names = (await readdir(drop.dir)).filter((n) => /^prices-.*\.csv$/i.test(n)).sort();
    const results: Array<{ file: string; changes?: number; errors?: InputError[] }> = [];
    for (const name of names) {
      const path = join(drop.dir, name);
      const text = await readFile(path, 'utf8');
      const parsed = parsePriceCsv(text);
      const now = this.now();
      if (!parsed.ok) {
        await mkdir(join(drop.dir, 'rejected'), { recursive: true });
        await mkdir(join(drop.dir, 'errors'), { recursive: true });
        const lines = ['line,field,error'];
        for (const e of parsed.errors) {
          const m = /^line (\d+)(?:: (.*))?$/.exec(e.path);
          lines.push([m?.[1] ?? '', m?.[2] ?? '', e.message].map(csvField).join(','));
        }
        await writeFile(
          join(drop.dir, 'errors', `${name}.errors.csv`),
          lines.join('\r\n') + '\r\n',
        );
        await rename(path, join(drop.dir, 'rejected', name));
        await this.recordFile(name, 'rejected', 0, parsed.errors, now);
        results.push({ file: name, errors: parsed.errors });
        continue;
      }
      const hash = createHash('sha256').update(text).digest('hex');
      const r = await this.submit({
        source: 'price-file',
        changes: parsed.changes,
        idempotencyKey: `file:${name}:${hash.slice(0, 16)}`,
        requestHash: hash,
      });
      if (r.outcome === 'backpressure') continue; // stays in the folder; read again later
      await mkdir(join(drop.dir, 'processed'), { recursive: true });
      await rename(path, join(drop.dir, 'processed', name));
      await this.recordFile(
        name,
        r.outcome === 'conflict' ? 'conflict' : 'accepted',
        parsed.changes.length,
        [],
        now,
      );
      results.push({ file: name, changes: parsed.changes.length });
    }
    return results;
  }

  private async recordFile(
    name: string,
    status: string,
    changes: number,
    errors: InputError[],
    at: number,
  ) {
    await this.opts.store.execute(
      `INSERT INTO pricing_files (name, status, changes, errors, at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET status = excluded.status, changes = excluded.changes,
         errors = excluded.errors, at = excluded.at`,
      [name, status, changes, errors.length > 0 ? JSON.stringify(errors.slice(0, 1000)) : null, at],
    );
  }

  /** Starts the clock, the verifier and the file poller. */
  start(): void {
    this.stopped = false;
    this.loop(this.opts.tickIntervalMs, () => this.requestTick(), 'distribution clock');
    const v = this.opts.verification;
    if (v) this.loop(v.intervalMs, () => this.verifyOnce(), 'verification');
    const drop = this.opts.fileDrop;
    if (drop) this.loop(drop.pollIntervalMs, () => this.pollPriceFiles(), 'price file drop');
  }

  private loop(intervalMs: number, work: () => Promise<unknown>, where: string): void {
    const run = () => {
      if (this.stopped) return;
      const p = work()
        .catch((err: unknown) => this.opts.onError?.(where, err))
        .finally(() => {
          this.running = this.running.filter((x) => x !== p);
          if (this.stopped) return;
          const t = setTimeout(() => {
            this.timers.delete(t);
            run();
          }, intervalMs);
          this.timers.add(t);
        });
      this.running.push(p);
    };
    run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled(this.running);
  }
}

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}
