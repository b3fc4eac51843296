// The dead letter channel: what could not be processed or delivered, with its reason, last error
// and attempt history; listed with filters and cursor pagination, and replayed under the SAME
// idempotency key. Replaying a delivery re-queues its row; replaying a message queues it again at
// the tail of its partition key (a fresh sequence, so key order holds).
import type { SqlValue, Store } from '../store/port.js';
import { insertMessage, lockPartitionKeys, priorityOf, type AttemptRecord } from './queue.js';
import { readStoredPayload, SealedPayloadError, type PayloadSealer } from './sealing.js';
import type { PriorityClass } from './types.js';

export interface DeadLetter {
  id: string;
  kind: 'message' | 'delivery';
  type: string | null;
  destination: string | null;
  partitionKey: string | null;
  idempotencyKey: string;
  reason: string;
  lastError: string | null;
  attempts: number;
  history: AttemptRecord[];
  traceparent: string | null;
  /** The payload, opened when it was stored sealed; null when it cannot be opened. */
  payload: unknown;
  /** Why the payload could not be opened (a sealed payload under a key not configured here). */
  payloadError?: string;
  deadAt: string;
  status: 'dead' | 'replayed';
  replayCount: number;
  replayedAt: string | null;
}

export interface DeadLetterFilter {
  kind?: 'message' | 'delivery';
  type?: string;
  destination?: string;
  /** Substring of the last error, case-insensitive. */
  error?: string;
  since?: Date;
  until?: Date;
  /** Default `dead` (not yet replayed). */
  status?: 'dead' | 'replayed' | 'all';
}

export interface DeadLetterPage {
  items: DeadLetter[];
  /** Pass back as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

interface DeadLetterRow {
  [k: string]: unknown;
  id: string;
  kind: 'message' | 'delivery';
  type: string | null;
  destination: string | null;
  partition_key: string | null;
  idempotency_key: string;
  reason: string;
  last_error: string | null;
  attempts: number;
  history: string;
  traceparent: string | null;
  payload: string;
  dead_at: number;
  status: 'dead' | 'replayed';
  replay_count: number;
  replayed_at: number | null;
}

function payloadOf(
  r: DeadLetterRow,
  sealer: PayloadSealer | undefined,
): { payload: unknown; payloadError?: string } {
  try {
    return { payload: readStoredPayload(sealer, r.payload) };
  } catch (err) {
    if (err instanceof SealedPayloadError) return { payload: null, payloadError: err.message };
    throw err;
  }
}

function toDeadLetter(r: DeadLetterRow, sealer: PayloadSealer | undefined): DeadLetter {
  return {
    id: r.id,
    kind: r.kind,
    type: r.type,
    destination: r.destination,
    partitionKey: r.partition_key,
    idempotencyKey: r.idempotency_key,
    reason: r.reason,
    lastError: r.last_error,
    attempts: r.attempts,
    history: JSON.parse(r.history) as AttemptRecord[],
    traceparent: r.traceparent,
    ...payloadOf(r, sealer),
    deadAt: new Date(r.dead_at).toISOString(),
    status: r.status,
    replayCount: r.replay_count,
    replayedAt: r.replayed_at === null ? null : new Date(r.replayed_at).toISOString(),
  };
}

function whereOf(f: DeadLetterFilter): { sql: string; params: SqlValue[] } {
  const clauses: string[] = [];
  const params: SqlValue[] = [];
  const status = f.status ?? 'dead';
  if (status !== 'all') {
    clauses.push('status = ?');
    params.push(status);
  }
  if (f.kind) {
    clauses.push('kind = ?');
    params.push(f.kind);
  }
  if (f.type) {
    clauses.push('type = ?');
    params.push(f.type);
  }
  if (f.destination) {
    clauses.push('destination = ?');
    params.push(f.destination);
  }
  if (f.error) {
    clauses.push("LOWER(COALESCE(last_error, '')) LIKE ? ESCAPE '!'");
    params.push(`%${f.error.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`);
  }
  if (f.since) {
    clauses.push('dead_at >= ?');
    params.push(f.since.getTime());
  }
  if (f.until) {
    clauses.push('dead_at < ?');
    params.push(f.until.getTime());
  }
  return { sql: clauses.length ? clauses.join(' AND ') : '1 = 1', params };
}

function encodeCursor(deadAt: number, id: string): string {
  return Buffer.from(JSON.stringify([deadAt, id])).toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string') {
      return [v[0], v[1]];
    }
  } catch {
    // fall through
  }
  throw new Error('invalid cursor');
}

/** Newest first. Sealed payloads are opened with `sealer` (ADR 0018). */
export async function listDeadLetters(
  store: Store,
  filter: DeadLetterFilter = {},
  page: { limit?: number; cursor?: string } = {},
  sealer?: PayloadSealer,
): Promise<DeadLetterPage> {
  const limit = Math.min(Math.max(page.limit ?? 50, 1), 1000);
  const w = whereOf(filter);
  let sql = `SELECT * FROM dead_letters WHERE ${w.sql}`;
  const params = [...w.params];
  if (page.cursor) {
    const [at, id] = decodeCursor(page.cursor);
    sql += ' AND (dead_at < ? OR (dead_at = ? AND id < ?))';
    params.push(at, at, id);
  }
  sql += ' ORDER BY dead_at DESC, id DESC LIMIT ?';
  params.push(limit + 1);
  const rows = await store.query<DeadLetterRow>(sql, params);
  const items = rows.slice(0, limit).map((r) => toDeadLetter(r, sealer));
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  return { items, ...(last ? { nextCursor: encodeCursor(last.dead_at, last.id) } : {}) };
}

export async function showDeadLetter(
  store: Store,
  id: string,
  sealer?: PayloadSealer,
): Promise<DeadLetter | undefined> {
  const rows = await store.query<DeadLetterRow>('SELECT * FROM dead_letters WHERE id = ?', [id]);
  return rows[0] ? toDeadLetter(rows[0], sealer) : undefined;
}

export interface ReplayResult {
  id: string;
  kind: 'message' | 'delivery';
  /** The queued item: the same delivery id, or the new message id. */
  newId: string;
  /** The class it is queued in again. */
  priority: PriorityClass;
  /** A delivery's destination. */
  destination?: string;
}

/** Re-queues one dead letter; undefined when it is unknown or already replayed. */
export async function replayDeadLetter(
  store: Store,
  id: string,
  now: number = Date.now(),
): Promise<ReplayResult | undefined> {
  return store.transaction(async (tx) => {
    const rows = await tx.query<DeadLetterRow>(
      "SELECT * FROM dead_letters WHERE id = ? AND status = 'dead'",
      [id],
    );
    const dl = rows[0];
    if (!dl) return undefined;
    const claimed = await tx.execute(
      "UPDATE dead_letters SET status = 'replayed', replay_count = replay_count + 1, replayed_at = ? WHERE id = ? AND status = 'dead'",
      [now, id],
    );
    if (claimed.changes !== 1) return undefined;
    if (dl.kind === 'delivery') {
      const requeued = await tx.query<{ priority: number; destination: string }>(
        `UPDATE deliveries SET status = 'queued', attempts = 0, available_at = ?, lease_until = NULL,
           lease_token = NULL, completed_at = NULL, replay_count = replay_count + 1
         WHERE id = ? AND status = 'dead'
         RETURNING priority, destination`,
        [now, id],
      );
      const d = requeued[0];
      if (!d) throw new Error(`delivery ${id} is no longer dead-lettered`);
      return {
        id,
        kind: 'delivery',
        newId: id,
        priority: priorityOf(Number(d.priority)),
        destination: d.destination,
      };
    }
    const msgs = await tx.query<{
      source: string;
      idempotency_key: string;
      type: string;
      partition_key: string;
      priority: number;
      payload: string;
      traceparent: string | null;
      replay_count: number;
    }>(
      "SELECT source, idempotency_key, type, partition_key, priority, payload, traceparent, replay_count FROM messages WHERE id = ? AND status = 'dead'",
      [id],
    );
    const m = msgs[0];
    if (!m) throw new Error(`message ${id} is no longer dead-lettered`);
    await tx.execute("UPDATE messages SET status = 'replayed' WHERE id = ?", [id]);
    await lockPartitionKeys(tx, [m.partition_key]);
    const newId = await insertMessage(
      tx,
      {
        source: m.source,
        idempotencyKey: m.idempotency_key,
        type: m.type,
        partitionKey: m.partition_key,
        priority: priorityOf(m.priority),
        // Copied in its stored form: a sealed payload stays sealed, a clear one clear.
        payload: null,
        storedPayload: m.payload,
        traceparent: m.traceparent ?? undefined,
        replayCount: m.replay_count + 1,
      },
      now,
    );
    return { id, kind: 'message', newId, priority: priorityOf(m.priority) };
  });
}

/** Replays every dead letter matching the filter (up to `limit`, default 1000). */
export async function replayDeadLetters(
  store: Store,
  filter: DeadLetterFilter,
  opts: { limit?: number; now?: number } = {},
): Promise<ReplayResult[]> {
  const w = whereOf({ ...filter, status: 'dead' });
  const limit = Math.min(Math.max(opts.limit ?? 1000, 1), 100_000);
  const ids = await store.query<{ id: string }>(
    `SELECT id FROM dead_letters WHERE ${w.sql} ORDER BY dead_at, id LIMIT ?`,
    [...w.params, limit],
  );
  const out: ReplayResult[] = [];
  for (const { id } of ids) {
    const r = await replayDeadLetter(store, id, opts.now ?? Date.now());
    if (r) out.push(r);
  }
  return out;
}
