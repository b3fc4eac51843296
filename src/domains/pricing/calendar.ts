// The price calendar in the store: every change as ingested with its approval state, and one
// sync row per target scope and SKU (the EIP "latest value" variant of a resequencer, as in
// inventory's channel propagation): the price that should show now (`latest_*`, versioned), the
// one in flight (`sending_*`, at most one per key), the one the channel acknowledged
// (`acked_*`) and what a read-back found (`verify_outcome`, `observed_*`). `due_at` is when the
// price in effect must be resolved again: at once after a change, else at the next start or end
// of a change that reaches the key.
import type { HandlerTx, PriorityClass } from '../../runtime/index.js';
import {
  approvalReasons,
  nextBoundary,
  resolvePrice,
  samePrice,
  scopesOf,
  syncKeyOf,
  type ApprovalRules,
  type PriceChange,
  type PriceTarget,
  type SalesChannelName,
  type ShownPrice,
} from './model.js';
import type { PriceChangeInput } from './input.js';

/** SQL with `?` placeholders inside one transaction (or none). */
export type PricingSql = Pick<HandlerTx, 'dialect' | 'query' | 'execute'>;

export interface PricingStore extends PricingSql {
  transaction<T>(fn: (tx: PricingSql) => Promise<T>): Promise<T>;
}

export function num(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint' || typeof value === 'string') return Number(value);
  return 0;
}
function numOrUndef(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : num(value);
}
function strOrUndef(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

export type ChangeStatus = 'approved' | 'pending' | 'rejected' | 'withdrawn';

export interface StoredChange extends PriceChange {
  status: ChangeStatus;
  reasons: string[];
  source: string;
  submission: string;
  decidedBy?: string | undefined;
  decidedAt?: number | undefined;
  decisionReason?: string | undefined;
}

export function toChange(r: Record<string, unknown>): StoredChange {
  return {
    id: String(r.id),
    sku: String(r.sku),
    channel: strOrUndef(r.channel) as SalesChannelName | undefined,
    storeGroup: strOrUndef(r.store_group),
    currency: String(r.currency),
    listMinor: num(r.list_minor),
    saleMinor: numOrUndef(r.sale_minor),
    includesTax: num(r.includes_tax) === 1,
    effectiveFrom: num(r.effective_from),
    effectiveUntil: numOrUndef(r.effective_until),
    promotionId: strOrUndef(r.promotion_id),
    ingestedAt: num(r.ingested_at),
    ingestIndex: num(r.ingest_index),
    status: String(r.status) as ChangeStatus,
    reasons: r.reasons ? (JSON.parse(String(r.reasons)) as string[]) : [],
    source: String(r.source),
    submission: String(r.submission),
    decidedBy: strOrUndef(r.decided_by),
    decidedAt: numOrUndef(r.decided_at),
    decisionReason: strOrUndef(r.decision_reason),
  };
}

function placeholders(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/**
 * Approved changes of the given SKUs, by SKU. With `current`, only those that may still be in
 * effect from now on (not ended, not superseded): what distribution needs. Without, the whole
 * history (for answers about past moments).
 */
export async function approvedChangesOf(
  db: PricingSql,
  skus: readonly string[],
  current?: { at: number },
): Promise<Map<string, PriceChange[]>> {
  const out = new Map<string, PriceChange[]>();
  for (const sku of skus) out.set(sku, []);
  for (let i = 0; i < skus.length; i += 400) {
    const chunk = skus.slice(i, i + 400);
    const rows = await db.query(
      `SELECT * FROM pricing_changes WHERE status = 'approved' AND sku IN (${placeholders(chunk.length)})
       ${current ? 'AND superseded_at IS NULL AND (effective_until IS NULL OR effective_until > ?)' : ''}`,
      current ? [...chunk, current.at] : chunk,
    );
    for (const r of rows) out.get(String(r.sku))?.push(toChange(r));
  }
  return out;
}

/** Marks target keys for resolution at `at` (or earlier, when already due earlier). */
async function markDue(db: PricingSql, keys: Iterable<string>, at: number): Promise<void> {
  const all = [...keys].map((k) => JSON.parse(k) as [string, string, string]);
  for (let i = 0; i < all.length; i += 200) {
    const chunk = all.slice(i, i + 200);
    await db.execute(
      `INSERT INTO pricing_sync (target, scope, sku, due_at)
       VALUES ${chunk.map(() => '(?, ?, ?, ?)').join(', ')}
       ON CONFLICT (target, scope, sku) DO UPDATE SET due_at = CASE
         WHEN pricing_sync.due_at IS NULL OR pricing_sync.due_at > excluded.due_at
         THEN excluded.due_at ELSE pricing_sync.due_at END`,
      chunk.flatMap(([target, scope, sku]) => [target, scope, sku, at]),
    );
  }
}

function keysOf(change: PriceChange, targets: readonly PriceTarget[]): string[] {
  const keys: string[] = [];
  for (const t of targets) {
    for (const scope of scopesOf(change, t)) keys.push(syncKeyOf(t.system, scope, change.sku));
  }
  return keys;
}

export interface RecordOutcome {
  approved: number;
  held: number;
}

/**
 * Records the changes of one submission (idempotent per submission id: a submission already
 * recorded is not recorded again), decides approval for each against the price in effect for the same SKU and addressing,
 * and makes the keys approved changes reach due.
 */
export async function recordChanges(
  db: PricingSql,
  changes: readonly PriceChangeInput[],
  opts: {
    submission: string;
    source: string;
    ingestedAt: number;
    rules: ApprovalRules;
    targets: readonly PriceTarget[];
    now: number;
  },
): Promise<RecordOutcome> {
  const skus = [...new Set(changes.map((c) => c.sku))];
  // The price in effect is only needed by the drop rule; superseded history is not read.
  const approved =
    opts.rules.maxDropPercent !== undefined
      ? await approvedChangesOf(db, skus, {
          at: Math.min(opts.now, ...changes.map((c) => c.effectiveFrom)),
        })
      : new Map<string, PriceChange[]>();
  const due = new Set<string>();
  const outcome: RecordOutcome = { approved: 0, held: 0 };
  // A submission is recorded whole in one transaction: found once, it is done.
  const done = await db.query('SELECT 1 AS x FROM pricing_changes WHERE submission = ? LIMIT 1', [
    opts.submission,
  ]);
  if (done.length > 0) return outcome;
  const rows: Array<Array<string | number | null>> = [];
  for (let i = 0; i < changes.length; i++) {
    const input = changes[i]!;
    const change: PriceChange = {
      ...input,
      id: `${opts.submission}/${i}`,
      ingestedAt: opts.ingestedAt,
      ingestIndex: i,
    };
    const same = (approved.get(change.sku) ?? []).filter(
      (c) => c.channel === change.channel && c.storeGroup === change.storeGroup,
    );
    const reasons = approvalReasons(change, resolvePrice(same, change.effectiveFrom), opts.rules);
    const status: ChangeStatus = reasons.length > 0 ? 'pending' : 'approved';
    rows.push([
      change.id,
      change.sku,
      change.channel ?? null,
      change.storeGroup ?? null,
      change.currency,
      change.listMinor,
      change.saleMinor ?? null,
      change.includesTax ? 1 : 0,
      change.effectiveFrom,
      change.effectiveUntil ?? null,
      change.promotionId ?? null,
      status,
      reasons.length > 0 ? JSON.stringify(reasons) : null,
      opts.source,
      opts.submission,
      change.ingestedAt,
      i,
    ]);
    if (status === 'approved') {
      outcome.approved++;
      approved.get(change.sku)?.push(change);
      for (const k of keysOf(change, opts.targets)) due.add(k);
    } else outcome.held++;
  }
  for (let i = 0; i < rows.length; i += 50) {
    const chunk = rows.slice(i, i + 50);
    await db.execute(
      `INSERT INTO pricing_changes (id, sku, channel, store_group, currency, list_minor, sale_minor,
         includes_tax, effective_from, effective_until, promotion_id, status, reasons, source,
         submission, ingested_at, ingest_index)
       VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      chunk.flat(),
    );
  }
  await markDue(db, due, opts.now);
  return outcome;
}

/** Changes by status (newest first), for the approvals queue. */
export async function listChanges(
  db: PricingSql,
  filter: {
    status?: ChangeStatus;
    sku?: string;
    limit: number;
    before?: { at: number; id: string };
  },
): Promise<StoredChange[]> {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (filter.status) {
    where.push('status = ?');
    params.push(filter.status);
  }
  if (filter.sku) {
    where.push('sku = ?');
    params.push(filter.sku);
  }
  if (filter.before) {
    where.push('(ingested_at < ? OR (ingested_at = ? AND id < ?))');
    params.push(filter.before.at, filter.before.at, filter.before.id);
  }
  const rows = await db.query(
    `SELECT * FROM pricing_changes ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY ingested_at DESC, id DESC LIMIT ?`,
    [...params, filter.limit],
  );
  return rows.map(toChange);
}

export async function changeById(db: PricingSql, id: string): Promise<StoredChange | undefined> {
  const rows = await db.query('SELECT * FROM pricing_changes WHERE id = ?', [id]);
  return rows[0] ? toChange(rows[0]) : undefined;
}

export type DecisionOutcome =
  | { ok: true; change: StoredChange }
  | { ok: false; reason: 'not-found' }
  | { ok: false; reason: 'already-decided'; change: StoredChange };

/** Approves or rejects a held change; an approved one is scheduled for its targets. */
export async function decideChange(
  db: PricingSql,
  id: string,
  decision: {
    approve: boolean;
    by: string;
    reason: string;
    now: number;
    targets: readonly PriceTarget[];
  },
): Promise<DecisionOutcome> {
  const before = await changeById(db, id);
  if (!before) return { ok: false, reason: 'not-found' };
  const r = await db.execute(
    `UPDATE pricing_changes SET status = ?, decided_by = ?, decided_at = ?, decision_reason = ?
     WHERE id = ? AND status = 'pending'`,
    [decision.approve ? 'approved' : 'rejected', decision.by, decision.now, decision.reason, id],
  );
  if (r.changes === 0) return { ok: false, reason: 'already-decided', change: before };
  if (decision.approve) await markDue(db, keysOf(before, decision.targets), decision.now);
  return { ok: true, change: (await changeById(db, id))! };
}

/**
 * A promotion ended early or was withdrawn: its changes stop at `at` (those not started by then
 * are withdrawn, held ones too), and the keys they reach are resolved again. Returns how many
 * changes it touched.
 */
export async function endPromotion(
  db: PricingSql,
  promotionId: string,
  at: number,
  opts: { targets: readonly PriceTarget[]; now: number },
): Promise<number> {
  const rows = (
    await db.query(
      `SELECT * FROM pricing_changes WHERE promotion_id = ? AND status IN ('approved', 'pending')
         AND (effective_until IS NULL OR effective_until > ?)`,
      [promotionId, at],
    )
  ).map(toChange);
  const due = new Set<string>();
  for (const c of rows) {
    if (c.effectiveFrom >= at || c.status === 'pending') {
      await db.execute("UPDATE pricing_changes SET status = 'withdrawn' WHERE id = ?", [c.id]);
    } else {
      await db.execute('UPDATE pricing_changes SET effective_until = ? WHERE id = ?', [at, c.id]);
    }
    if (c.status === 'approved') for (const k of keysOf(c, opts.targets)) due.add(k);
  }
  await markDue(db, due, opts.now);
  return rows.length;
}

// ---- resolution and pushes -----------------------------------------------------------------

/**
 * Resolves the price in effect at `now + leadMs` for every key due by then (at most `limit`):
 * a different price than the latest becomes a new version, pending a push. Each key is next due
 * at its next boundary. Returns how many keys got a new version.
 */
export async function resolveDuePrices(
  db: PricingSql,
  targets: ReadonlyMap<string, PriceTarget>,
  opts: { now: number; leadMs: number; limit: number },
): Promise<{ resolved: number; changed: number }> {
  const at = opts.now + opts.leadMs;
  const rows = await db.query(
    `SELECT target, scope, sku, latest_currency, latest_list, latest_sale FROM pricing_sync
     WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?`,
    [at, opts.limit],
  );
  if (rows.length === 0) return { resolved: 0, changed: 0 };
  const changes = await approvedChangesOf(db, [...new Set(rows.map((r) => String(r.sku)))], { at });
  for (const list of changes.values()) await supersede(db, list, at);
  let changed = 0;
  // Keys whose price did not change only get their next due time: one statement per group.
  const unchanged = new Map<string, string[]>();
  for (const r of rows) {
    const target = targets.get(String(r.target));
    const scope = String(r.scope);
    const sku = String(r.sku);
    const candidates = target
      ? (changes.get(sku) ?? []).filter((c) => scopesOf(c, target).includes(scope))
      : [];
    const shown = resolvePrice(candidates, at);
    const next = nextBoundary(candidates, at);
    const dueAt = next === undefined ? null : next - opts.leadMs;
    const latest =
      r.latest_currency === null || r.latest_currency === undefined
        ? undefined
        : {
            currency: String(r.latest_currency),
            listMinor: num(r.latest_list),
            saleMinor: numOrUndef(r.latest_sale),
          };
    if (shown && !samePrice(shown, latest)) {
      changed++;
      await db.execute(
        `UPDATE pricing_sync SET latest_version = latest_version + 1, latest_currency = ?,
           latest_list = ?, latest_sale = ?, pending_since = COALESCE(pending_since, ?), due_at = ?
         WHERE target = ? AND scope = ? AND sku = ?`,
        [
          shown.currency,
          shown.listMinor,
          shown.saleMinor ?? null,
          opts.now,
          dueAt,
          r.target as string,
          scope,
          sku,
        ],
      );
    } else {
      const group = JSON.stringify([String(r.target), scope, dueAt]);
      if (!unchanged.has(group)) unchanged.set(group, []);
      unchanged.get(group)!.push(sku);
    }
  }
  for (const [group, skus] of unchanged) {
    const [target, scope, dueAt] = JSON.parse(group) as [string, string, number | null];
    for (let i = 0; i < skus.length; i += 400) {
      const chunk = skus.slice(i, i + 400);
      await db.execute(
        `UPDATE pricing_sync SET due_at = ? WHERE target = ? AND scope = ? AND sku IN (${placeholders(chunk.length)})`,
        [dueAt, target, scope, ...chunk],
      );
    }
  }
  return { resolved: rows.length, changed };
}

/**
 * Marks regular open-ended changes that can never win again from `at` on: another regular
 * open-ended change with the same addressing started later (or as late and ingested later) and
 * is in effect. Removed from `list` too. History keeps them (past moments still resolve).
 */
async function supersede(db: PricingSql, list: PriceChange[], at: number): Promise<void> {
  const newest = new Map<string, PriceChange>();
  const open = list.filter(
    (c) => c.promotionId === undefined && c.effectiveUntil === undefined && c.effectiveFrom <= at,
  );
  const later = (a: PriceChange, b: PriceChange) =>
    a.effectiveFrom !== b.effectiveFrom
      ? a.effectiveFrom > b.effectiveFrom
      : a.ingestedAt !== b.ingestedAt
        ? a.ingestedAt > b.ingestedAt
        : a.ingestIndex > b.ingestIndex;
  for (const c of open) {
    const k = `${c.channel ?? ''}|${c.storeGroup ?? ''}`;
    const n = newest.get(k);
    if (!n || later(c, n)) newest.set(k, c);
  }
  const gone: string[] = [];
  for (const c of open) {
    if (newest.get(`${c.channel ?? ''}|${c.storeGroup ?? ''}`) !== c) gone.push(c.id);
  }
  if (gone.length === 0) return;
  for (let i = 0; i < gone.length; i += 400) {
    const chunk = gone.slice(i, i + 400);
    await db.execute(
      `UPDATE pricing_changes SET superseded_at = ? WHERE id IN (${placeholders(chunk.length)})`,
      [at, ...chunk],
    );
  }
  const drop = new Set(gone);
  for (let i = list.length - 1; i >= 0; i--) if (drop.has(list[i]!.id)) list.splice(i, 1);
}

/** Keys of a target with a live send (claimed, lease not run out). */
export async function sendsInFlight(db: PricingSql, target: string, now: number): Promise<number> {
  const rows = await db.query(
    `SELECT COUNT(*) AS n FROM pricing_sync WHERE target = ? AND sending_version IS NOT NULL
       AND sending_until > ?`,
    [target, now],
  );
  return num(rows[0]?.n);
}

/** Keys of a target whose newest version waits for a push. */
export async function pushesWaiting(db: PricingSql, target: string, now: number): Promise<number> {
  const rows = await db.query(
    `SELECT COUNT(*) AS n FROM pricing_sync WHERE target = ? AND latest_version > acked_version
       AND (sending_version IS NULL OR sending_until <= ?)`,
    [target, now],
  );
  return num(rows[0]?.n);
}

/** True when some key is due for resolution or waits for a push (any target). */
export async function distributionDue(
  db: PricingSql,
  now: number,
  leadMs: number,
): Promise<boolean> {
  const due = await db.query(
    'SELECT 1 AS x FROM pricing_sync WHERE due_at IS NOT NULL AND due_at <= ? LIMIT 1',
    [now + leadMs],
  );
  if (due.length > 0) return true;
  const waiting = await db.query(
    `SELECT 1 AS x FROM pricing_sync WHERE pending_since IS NOT NULL
       AND (sending_version IS NULL OR sending_until <= ?) LIMIT 1`,
    [now],
  );
  if (waiting.length > 0) return true;
  const expired = await db.query(
    `SELECT 1 AS x FROM pricing_sync WHERE sending_version IS NOT NULL AND sending_until <= ? LIMIT 1`,
    [now],
  );
  return expired.length > 0;
}

/**
 * Claims up to `calls` keys of a target waiting for a push (the longest-waiting first; each
 * with its newest version only) and writes one `channel.price` delivery per key in `tx`.
 */
export async function planPricePushes(
  tx: Pick<HandlerTx, 'dialect' | 'query' | 'execute' | 'deliver'>,
  target: string,
  opts: { now: number; calls: number; leaseMs: number; priority: PriorityClass },
): Promise<number> {
  if (opts.calls <= 0) return 0;
  const rows = await tx.query(
    `SELECT scope, sku FROM pricing_sync WHERE target = ? AND latest_version > acked_version
       AND (sending_version IS NULL OR sending_until <= ?)
     ORDER BY pending_since, sku, scope LIMIT ?`,
    [target, opts.now, opts.calls],
  );
  let planned = 0;
  for (const r of rows) {
    const scope = String(r.scope);
    const sku = String(r.sku);
    const claimed = await tx.query(
      `UPDATE pricing_sync SET sending_version = latest_version, sending_currency = latest_currency,
         sending_list = latest_list, sending_sale = latest_sale, sending_until = ?,
         pending_since = NULL
       WHERE target = ? AND scope = ? AND sku = ? AND latest_version > acked_version
         AND (sending_version IS NULL OR sending_until <= ?)
       RETURNING sending_version, sending_currency, sending_list, sending_sale`,
      [opts.now + opts.leaseMs, target, scope, sku, opts.now],
    );
    const c = claimed[0];
    if (!c) continue;
    const version = num(c.sending_version);
    const sale = numOrUndef(c.sending_sale);
    await tx.deliver({
      destination: target,
      idempotencyKey: `price/${scope}/${sku}/v${version}`,
      priority: opts.priority,
      payload: {
        action: 'channel.price',
        correlation: { process: 'price', id: syncKeyOf(target, scope, sku) },
        sku,
        ...(scope !== '' ? { scope } : {}),
        currency: String(c.sending_currency),
        listPriceMinor: num(c.sending_list),
        ...(sale !== undefined ? { salePriceMinor: sale } : {}),
        version,
      },
    });
    planned++;
  }
  return planned;
}

/**
 * Keys of a target waiting for a push whose SKU the channel does not sell (`sells` says false):
 * recorded as acknowledged and not listed, without a call. Returns how many.
 */
export async function settleUnlisted(
  db: PricingSql,
  target: string,
  sells: (sku: string) => boolean | undefined,
  now: number,
): Promise<number> {
  const rows = await db.query(
    `SELECT scope, sku FROM pricing_sync WHERE target = ? AND latest_version > acked_version
       AND (sending_version IS NULL OR sending_until <= ?) LIMIT 5000`,
    [target, now],
  );
  let settled = 0;
  for (const r of rows) {
    if (sells(String(r.sku)) !== false) continue;
    const u = await db.execute(
      `UPDATE pricing_sync SET acked_version = latest_version, acked_currency = latest_currency,
         acked_list = latest_list, acked_sale = latest_sale, acked_at = ?, listed = 0,
         pending_since = NULL, sending_version = NULL, sending_until = NULL
       WHERE target = ? AND scope = ? AND sku = ? AND latest_version > acked_version`,
      [now, target, String(r.scope), String(r.sku)],
    );
    settled += u.changes;
  }
  return settled;
}

/** What a channel connector answers for a `channel.price` push (see src/connectors/price-channels). */
export interface PricePushResult {
  version: number;
  /** False when the channel does not sell the SKU (nothing to show there). */
  listed: boolean;
  currency: string;
  listPriceMinor: number;
  salePriceMinor?: number;
}

export function isPricePushResult(v: unknown): v is PricePushResult {
  const r = v as Record<string, unknown> | null;
  return (
    r !== null &&
    typeof r === 'object' &&
    typeof r.version === 'number' &&
    typeof r.listed === 'boolean' &&
    typeof r.listPriceMinor === 'number'
  );
}

/** The channel acknowledged a push: records what it now shows. */
export async function acknowledgePricePush(
  db: PricingSql,
  key: { target: string; scope: string; sku: string },
  result: PricePushResult,
  ackedAt: number,
): Promise<boolean> {
  const r = await db.execute(
    `UPDATE pricing_sync SET acked_version = ?, acked_currency = ?, acked_list = ?, acked_sale = ?,
       acked_at = ?, listed = ?,
       sending_version = CASE WHEN sending_version <= ? THEN NULL ELSE sending_version END,
       sending_until = CASE WHEN sending_version <= ? THEN NULL ELSE sending_until END
     WHERE target = ? AND scope = ? AND sku = ? AND acked_version < ?`,
    [
      result.version,
      result.currency,
      result.listPriceMinor,
      result.salePriceMinor ?? null,
      ackedAt,
      result.listed ? 1 : 0,
      result.version,
      result.version,
      key.target,
      key.scope,
      key.sku,
      result.version,
    ],
  );
  return r.changes > 0;
}

// ---- reads --------------------------------------------------------------------------------

export interface SyncState {
  target: string;
  scope: string;
  sku: string;
  latestVersion: number;
  latest?: { currency: string; listMinor: number; saleMinor?: number | undefined } | undefined;
  ackedVersion: number;
  acked?:
    { currency: string; listMinor: number; saleMinor?: number | undefined; at: number } | undefined;
  listed?: boolean | undefined;
  verification?:
    | {
        outcome: string;
        at: number;
        observedListMinor?: number | undefined;
        observedSaleMinor?: number | undefined;
      }
    | undefined;
}

function toSync(r: Record<string, unknown>): SyncState {
  return {
    target: String(r.target),
    scope: String(r.scope),
    sku: String(r.sku),
    latestVersion: num(r.latest_version),
    latest:
      r.latest_currency == null
        ? undefined
        : {
            currency: String(r.latest_currency),
            listMinor: num(r.latest_list),
            saleMinor: numOrUndef(r.latest_sale),
          },
    ackedVersion: num(r.acked_version),
    acked:
      r.acked_at == null
        ? undefined
        : {
            currency: String(r.acked_currency),
            listMinor: num(r.acked_list),
            saleMinor: numOrUndef(r.acked_sale),
            at: num(r.acked_at),
          },
    listed: r.listed == null ? undefined : num(r.listed) === 1,
    verification:
      r.verify_outcome == null
        ? undefined
        : {
            outcome: String(r.verify_outcome),
            at: num(r.verified_at),
            observedListMinor: numOrUndef(r.observed_list),
            observedSaleMinor: numOrUndef(r.observed_sale),
          },
  };
}

export async function syncStateOf(
  db: PricingSql,
  target: string,
  scope: string,
  sku: string,
): Promise<SyncState | undefined> {
  const rows = await db.query(
    'SELECT * FROM pricing_sync WHERE target = ? AND scope = ? AND sku = ?',
    [target, scope, sku],
  );
  return rows[0] ? toSync(rows[0]) : undefined;
}

/** The price a target scope shows for a SKU at `at`, by the calendar's approved changes. */
export async function priceAt(
  db: PricingSql,
  target: PriceTarget,
  scope: string,
  sku: string,
  at: number,
): Promise<{ price: ShownPrice | undefined; changes: PriceChange[] }> {
  const all = (await approvedChangesOf(db, [sku])).get(sku) ?? [];
  const changes = all.filter((c) => scopesOf(c, target).includes(scope));
  return { price: resolvePrice(changes, at), changes };
}

// ---- verification ---------------------------------------------------------------------------

export interface VerificationCandidate {
  scope: string;
  sku: string;
  version: number;
  listed: boolean;
  currency: string;
  listMinor: number;
  saleMinor?: number | undefined;
}

/** Acknowledged pushes of a target not yet read back (none in flight), oldest first. */
export async function verificationCandidates(
  db: PricingSql,
  target: string,
  opts: { ackedBefore: number; limit: number },
): Promise<VerificationCandidate[]> {
  const rows = await db.query(
    `SELECT scope, sku, acked_version, listed, acked_currency, acked_list, acked_sale
     FROM pricing_sync WHERE target = ? AND acked_version > verified_version AND acked_at <= ?
       AND sending_version IS NULL
     ORDER BY acked_at LIMIT ?`,
    [target, opts.ackedBefore, opts.limit],
  );
  return rows.map((r) => ({
    scope: String(r.scope),
    sku: String(r.sku),
    version: num(r.acked_version),
    listed: num(r.listed) === 1,
    currency: String(r.acked_currency),
    listMinor: num(r.acked_list),
    saleMinor: numOrUndef(r.acked_sale),
  }));
}

export type VerifyOutcome = 'match' | 'mismatch' | 'not-listed' | 'unreadable';

export async function recordVerification(
  db: PricingSql,
  target: string,
  c: VerificationCandidate,
  outcome: VerifyOutcome,
  observed: { listMinor?: number | undefined; saleMinor?: number | undefined } | undefined,
  at: number,
): Promise<void> {
  await db.execute(
    `UPDATE pricing_sync SET verified_version = ?, verified_at = ?, verify_outcome = ?,
       observed_list = ?, observed_sale = ?
     WHERE target = ? AND scope = ? AND sku = ? AND verified_version < ?`,
    [
      c.version,
      at,
      outcome,
      observed?.listMinor ?? null,
      observed?.saleMinor ?? null,
      target,
      c.scope,
      c.sku,
      c.version,
    ],
  );
}

export interface VerificationSummary {
  target: string;
  keys: number;
  acknowledged: number;
  waiting: number;
  matched: number;
  mismatched: number;
  notListed: number;
  unreadable: number;
  unverified: number;
  lastCheckedAt?: number | undefined;
}

export async function verificationSummary(
  db: PricingSql,
  target: string,
): Promise<VerificationSummary> {
  const rows = await db.query(
    `SELECT COUNT(*) AS keys,
       SUM(CASE WHEN acked_version > 0 THEN 1 ELSE 0 END) AS acknowledged,
       SUM(CASE WHEN latest_version > acked_version THEN 1 ELSE 0 END) AS waiting,
       SUM(CASE WHEN verify_outcome = 'match' THEN 1 ELSE 0 END) AS matched,
       SUM(CASE WHEN verify_outcome = 'mismatch' THEN 1 ELSE 0 END) AS mismatched,
       SUM(CASE WHEN verify_outcome = 'not-listed' THEN 1 ELSE 0 END) AS not_listed,
       SUM(CASE WHEN verify_outcome = 'unreadable' THEN 1 ELSE 0 END) AS unreadable,
       SUM(CASE WHEN acked_version > verified_version THEN 1 ELSE 0 END) AS unverified,
       MAX(verified_at) AS last_checked
     FROM pricing_sync WHERE target = ?`,
    [target],
  );
  const r = rows[0] ?? {};
  return {
    target,
    keys: num(r.keys),
    acknowledged: num(r.acknowledged),
    waiting: num(r.waiting),
    matched: num(r.matched),
    mismatched: num(r.mismatched),
    notListed: num(r.not_listed),
    unreadable: num(r.unreadable),
    unverified: num(r.unverified),
    lastCheckedAt: numOrUndef(r.last_checked),
  };
}

export async function mismatches(
  db: PricingSql,
  target: string,
  limit: number,
): Promise<SyncState[]> {
  const rows = await db.query(
    `SELECT * FROM pricing_sync WHERE target = ? AND verify_outcome = 'mismatch'
     ORDER BY verified_at DESC LIMIT ?`,
    [target, limit],
  );
  return rows.map(toSync);
}
