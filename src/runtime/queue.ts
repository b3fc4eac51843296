// The durable queue's store operations, written once in SQL both dialects understand: the inbox
// (idempotent accept), claiming messages and deliveries under leases, completion, retry and
// dead-lettering, replay, retention and depth figures. The engine (engine.ts) schedules them.
import { randomUUID } from 'node:crypto';
import type { Row, SqlRunner, SqlValue, Store, StoreTx } from '../store/port.js';
import {
  PRIORITY_CLASSES,
  type AcceptRequest,
  type AcceptResult,
  type OutboundDelivery,
  type PriorityClass,
  type QueuedMessage,
} from './types.js';
import { readStoredPayload, storedPayload, type PayloadSealer } from './sealing.js';

export const DAY_MS = 24 * 60 * 60 * 1000;

export function priorityRank(p: PriorityClass): number {
  const i = PRIORITY_CLASSES.indexOf(p);
  if (i < 0) throw new Error(`unknown priority class: ${String(p)}`);
  return i;
}

export function priorityOf(rank: number): PriorityClass {
  return PRIORITY_CLASSES[rank] ?? 'standard';
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * A UUID version 7 (RFC 9562): 48 bits of epoch milliseconds, then random bits. Rows keyed by
 * it are appended to the end of the `id` index instead of landing on a random page of it, so a
 * commit writes (and fsyncs) far fewer pages.
 */
export function timeOrderedId(now: number = Date.now()): string {
  const r = randomUUID();
  const t = now.toString(16).padStart(12, '0');
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${r.slice(15)}`;
}

function placeholders(n: number): string {
  return new Array<string>(n).fill('?').join(', ');
}

/** PostgreSQL: a partition key's lock, held until the transaction ends. */
const KEY_LOCK_SQL = 'SELECT pg_advisory_xact_lock(hashtextextended(?, 7366504)) AS locked';

/**
 * On PostgreSQL, accepts of one partition key are serialised (a transaction-scoped advisory
 * lock) so that commit order equals sequence order within a key: a message can never become
 * visible behind a later message of its key that is already in flight.
 */
export async function lockPartitionKeys(tx: SqlRunner, keys: Iterable<string>): Promise<void> {
  if (tx.dialect !== 'postgres') return;
  for (const key of [...new Set(keys)].sort()) await tx.query(KEY_LOCK_SQL, [key]);
}

// ------------------------------------------------------------------------------------- inbox

export interface InboxOptions {
  now: number;
  idempotencyWindowMs: number;
  /** When true, new deferrable messages are refused (duplicates are still answered). */
  refuseDeferrable: boolean;
  retryAfterSeconds: number;
  /** Seals payloads before they are written (ADR 0018); absent: stored in clear. */
  sealer?: PayloadSealer | undefined;
  /** Which requests' payloads the sealer seals (default: every one). */
  sealWhen?: ((req: AcceptRequest) => boolean) | undefined;
}

interface KeyRow extends Row {
  request_hash: string;
  message_id: string;
  accepted_at: number;
  traceparent: string | null;
  expires_at: number;
}

/**
 * Where an idempotency key is kept (migration 3): on its message's row while that message is
 * kept (`key_expires_at` set: the row holds the key, `messages_idempotency` makes it unique),
 * else in `idempotency_keys` (keys accepted before migration 3, and keys that outlived their
 * message's retention, moved there by the purge). The message first: a purge moves a key from
 * its message to the table in one transaction, so a key not found on a message is in the table
 * if it is kept at all.
 */
async function existingKey(
  tx: SqlRunner,
  source: string,
  key: string,
): Promise<KeyRow | undefined> {
  const held = await tx.query<KeyRow>(
    `SELECT request_hash, id AS message_id, accepted_at, traceparent, key_expires_at AS expires_at
     FROM messages WHERE source = ? AND idempotency_key = ? AND key_expires_at IS NOT NULL`,
    [source, key],
  );
  if (held[0]) return held[0];
  const kept = await tx.query<KeyRow>(
    'SELECT request_hash, message_id, accepted_at, traceparent, expires_at FROM idempotency_keys WHERE source = ? AND idempotency_key = ?',
    [source, key],
  );
  return kept[0];
}

/**
 * Lets an expired key go, wherever it is kept: its message (kept for traces and replay) no
 * longer holds it, so the key can be accepted as new.
 */
async function releaseExpiredKey(
  tx: SqlRunner,
  source: string,
  key: string,
  now: number,
): Promise<void> {
  await tx.execute(
    'UPDATE messages SET key_expires_at = NULL WHERE source = ? AND idempotency_key = ? AND key_expires_at < ?',
    [source, key, now],
  );
  await tx.execute(
    'DELETE FROM idempotency_keys WHERE source = ? AND idempotency_key = ? AND expires_at < ?',
    [source, key, now],
  );
}

function answerFromKey(row: KeyRow, requestHash: string): AcceptResult {
  if (row.request_hash !== requestHash) return { outcome: 'conflict', messageId: row.message_id };
  return {
    outcome: 'duplicate',
    messageId: row.message_id,
    acceptedAt: iso(row.accepted_at),
    ...(row.traceparent ? { traceparent: row.traceparent } : {}),
  };
}

/** The answer to a request whose message was written by this transaction. */
function acceptedAnswer(req: AcceptRequest, messageId: string, acceptedAt: string): AcceptResult {
  return {
    outcome: 'accepted',
    messageId,
    acceptedAt,
    ...(req.traceparent ? { traceparent: req.traceparent } : {}),
  };
}

export interface InsertMessage {
  source: string;
  idempotencyKey: string;
  type: string;
  partitionKey: string;
  priority: PriorityClass;
  payload: unknown;
  payloadJson?: string | undefined;
  traceparent?: string | undefined;
  availableAt?: Date | undefined;
  replayCount?: number;
  /** The payload already in its stored form (a replay copies it as it is, sealed or not). */
  storedPayload?: string | undefined;
}

/** The sealer for one request's payload: undefined when it is to be stored in clear. */
function sealerFor(req: AcceptRequest, opts: InboxOptions): PayloadSealer | undefined {
  if (!opts.sealer) return undefined;
  return !opts.sealWhen || opts.sealWhen(req) ? opts.sealer : undefined;
}

/** The stored form of a message's payload (sealed when a sealer is given). */
function messagePayload(
  m: { payload: unknown; payloadJson?: string | undefined },
  sealer: PayloadSealer | undefined,
): string {
  return storedPayload(sealer, m.payloadJson ?? JSON.stringify(m.payload ?? null));
}

/** The idempotency key a new message holds: the request's hash, kept until `expiresAt`. */
interface HeldKey {
  requestHash: string;
  expiresAt: number;
}

/**
 * SQLite: the seq of a partition key's last queued message, or NULL when it has none (binds the
 * key). `partition_tails` names each key's last accepted message (kept by triggers); it is still
 * the last queued one unless it has finished, and then so has every earlier one of its key.
 */
const SQLITE_TAIL = `(SELECT q.seq FROM partition_tails t JOIN messages q ON q.seq = t.last_seq AND q.status = 'queued'
  WHERE t.partition_key = ?)`;

/**
 * Inserts one queued message; with `key`, the message holds its idempotency key, and nothing is
 * inserted (false) when another message already holds it (on PostgreSQL the insert waits for
 * a concurrent transaction holding it to end).
 */
async function insertMessageRow(
  tx: SqlRunner,
  m: InsertMessage,
  now: number,
  id: string,
  sealer: PayloadSealer | undefined,
  key: HeldKey | undefined,
): Promise<boolean> {
  // The first queued message of a key is its head (the only claimable one). On PostgreSQL callers
  // hold the key's lock (lockPartitionKeys), so this check cannot race a completion; on SQLite
  // (one writer) nothing interleaves, and the message names the key's last queued one (prev_seq).
  const pg = tx.dialect === 'postgres';
  const r = await tx.execute(
    `INSERT INTO messages (id, source, idempotency_key, type, partition_key, priority, payload,
       traceparent, status, attempts, available_at, accepted_at, replay_count, request_hash,
       key_expires_at, ${pg ? '' : 'prev_seq, '}is_head)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?, ${
       pg
         ? `CASE WHEN EXISTS (SELECT 1 FROM messages q WHERE q.partition_key = ? AND q.status = 'queued')
             THEN 0 ELSE 1 END`
         : `${SQLITE_TAIL}, ${SQLITE_TAIL} IS NULL`
     })
     ON CONFLICT (source, idempotency_key) WHERE key_expires_at IS NOT NULL DO NOTHING`,
    [
      id,
      m.source,
      m.idempotencyKey,
      m.type,
      m.partitionKey,
      priorityRank(m.priority),
      m.storedPayload ?? messagePayload(m, sealer),
      m.traceparent ?? null,
      m.availableAt ? Math.max(now, m.availableAt.getTime()) : now,
      now,
      m.replayCount ?? 0,
      key?.requestHash ?? null,
      key?.expiresAt ?? null,
      ...(pg ? [m.partitionKey] : [m.partitionKey, m.partitionKey]),
    ],
  );
  return r.changes > 0;
}

/**
 * Inserts a queued message that does not hold its idempotency key (a replay's copy: the key
 * stays with the message first accepted under it).
 */
export async function insertMessage(
  tx: SqlRunner,
  m: InsertMessage,
  now: number,
  id: string = timeOrderedId(now),
  sealer?: PayloadSealer,
): Promise<string> {
  await insertMessageRow(tx, m, now, id, sealer, undefined);
  return id;
}

/** A message that left the queue (done or dead), whose key's next queued message is to lead. */
export type FinishedMessage = Pick<MessageRow, 'seq' | 'partition_key'>;

/**
 * After a key's head finished (done or dead), its next queued message becomes the head: on
 * SQLite the one naming it as `prev_seq`; on PostgreSQL the key's first queued message, under the
 * key's lock so an accept of the same key cannot slip between.
 */
export async function promoteNextHead(tx: SqlRunner, finished: FinishedMessage): Promise<void> {
  await promoteNextHeads(tx, [finished]);
}

/** PostgreSQL: the first queued message of a key becomes its head (under the key's lock). */
const PROMOTE_FIRST_QUEUED_SQL = `UPDATE messages SET is_head = 1
  WHERE seq = (SELECT MIN(seq) FROM messages WHERE partition_key = ? AND status = 'queued')
    AND is_head = 0`;

/** SQLite: the messages chained behind finished ones (a JSON array of their seqs) become heads. */
const PROMOTE_CHAINED_SQL = `UPDATE messages SET is_head = 1
  WHERE prev_seq IN (SELECT value FROM json_each(?)) AND status = 'queued' AND is_head = 0`;

/**
 * promoteNextHead queued to run with the transaction's COMMIT (`StoreTx.atCommit`). On
 * PostgreSQL the key's lock, the promotion and the COMMIT then take one round trip instead of
 * three, the lock is held only for it, and the promotion, a statement of its own, still sees
 * everything committed before the lock was granted (an accept of the key cannot slip between).
 */
export function promoteNextHeadAtCommit(tx: StoreTx, finished: FinishedMessage): void {
  if (tx.dialect === 'postgres') {
    tx.atCommit(KEY_LOCK_SQL, [finished.partition_key]);
    tx.atCommit(PROMOTE_FIRST_QUEUED_SQL, [finished.partition_key]);
    return;
  }
  tx.atCommit(PROMOTE_CHAINED_SQL, [JSON.stringify([finished.seq])]);
}

/**
 * promoteNextHead for many finished messages; on SQLite in one statement (one writer, nothing
 * can interleave).
 */
export async function promoteNextHeads(
  tx: SqlRunner,
  finished: readonly FinishedMessage[],
): Promise<void> {
  if (finished.length === 0) return;
  if (tx.dialect === 'postgres') {
    for (const f of finished) {
      await lockPartitionKeys(tx, [f.partition_key]);
      await tx.execute(PROMOTE_FIRST_QUEUED_SQL, [f.partition_key]);
    }
    return;
  }
  await tx.execute(PROMOTE_CHAINED_SQL, [JSON.stringify(finished.map((f) => f.seq))]);
}

/**
 * Records one request in the inbox inside `tx`. The message holds its idempotency key; the
 * unique index on held keys decides races: the insert either wins, or finds the message another
 * request committed. An expired key is let go and the request accepted as new.
 */
export async function acceptInTx(
  tx: SqlRunner,
  req: AcceptRequest,
  opts: InboxOptions,
): Promise<AcceptResult> {
  const known = await existingKey(tx, req.source, req.idempotencyKey);
  if (known && known.expires_at >= opts.now) return answerFromKey(known, req.requestHash);
  if (opts.refuseDeferrable && req.priority === 'deferrable') {
    return { outcome: 'backpressure', retryAfterSeconds: opts.retryAfterSeconds };
  }
  if (known) await releaseExpiredKey(tx, req.source, req.idempotencyKey, opts.now);
  const id = timeOrderedId(opts.now);
  const inserted = await insertMessageRow(tx, req, opts.now, id, sealerFor(req, opts), {
    requestHash: req.requestHash,
    expiresAt: opts.now + opts.idempotencyWindowMs,
  });
  if (!inserted) {
    // Another transaction accepted the key first (PostgreSQL: committed while this one waited).
    const winner = await existingKey(tx, req.source, req.idempotencyKey);
    if (!winner) throw new Error('idempotency key vanished during accept');
    return answerFromKey(winner, req.requestHash);
  }
  return acceptedAnswer(req, id, iso(opts.now));
}

/**
 * PostgreSQL: the whole batch in a few statements (key locks, one data-modifying CTE that
 * inserts the messages whose keys are new, one by one for the rest) instead of three round trips
 * a request.
 */
async function acceptBatchPostgres(
  tx: SqlRunner,
  reqs: readonly AcceptRequest[],
  opts: InboxOptions,
): Promise<AcceptResult[]> {
  const keys = [...new Set(reqs.map((r) => r.partitionKey))].sort();
  await tx.query(
    `SELECT COUNT(pg_advisory_xact_lock(hashtextextended(k, 7366504))) AS n
     FROM (SELECT jsonb_array_elements_text(?::jsonb) AS k) AS s`,
    [JSON.stringify(keys)],
  );
  const firstOf = new Set<string>();
  const fresh: Record<string, unknown>[] = [];
  const ids: string[] = [];
  reqs.forEach((r, i) => {
    ids.push(timeOrderedId(opts.now));
    if (opts.refuseDeferrable && r.priority === 'deferrable') return;
    const k = JSON.stringify([r.source, r.idempotencyKey]);
    if (firstOf.has(k)) return;
    firstOf.add(k);
    fresh.push({
      i,
      id: ids[i],
      source: r.source,
      key: r.idempotencyKey,
      hash: r.requestHash,
      tp: r.traceparent ?? null,
      type: r.type,
      pk: r.partitionKey,
      pr: priorityRank(r.priority),
      payload: messagePayload(r, sealerFor(r, opts)),
      av: r.availableAt ? Math.max(opts.now, r.availableAt.getTime()) : opts.now,
    });
  });
  const inserted = new Set<string>();
  if (fresh.length > 0) {
    // Keys kept already (on a message or in idempotency_keys, expired or not) are left to the
    // one-by-one path below; a key a concurrent transaction takes meanwhile is not inserted
    // (ON CONFLICT), and the head mark it was given is repaired below.
    const rows = await tx.query<{ id: string }>(
      `WITH x AS (
         SELECT * FROM jsonb_to_recordset(?::jsonb) AS x(i int, id text, source text, key text,
           hash text, tp text, type text, pk text, pr int, payload text, av bigint)
         WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.source = x.source
             AND m.idempotency_key = x.key AND m.key_expires_at IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.source = x.source
             AND k.idempotency_key = x.key))
       INSERT INTO messages (id, source, idempotency_key, type, partition_key, priority, payload,
         traceparent, status, attempts, available_at, accepted_at, replay_count, request_hash,
         key_expires_at, is_head)
       SELECT x.id, x.source, x.key, x.type, x.pk, x.pr, x.payload, x.tp, 'queued', 0, x.av, ?, 0,
         x.hash, ?,
         CASE WHEN row_number() OVER (PARTITION BY x.pk ORDER BY x.i) = 1
           AND NOT EXISTS (SELECT 1 FROM messages q WHERE q.partition_key = x.pk AND q.status = 'queued')
           THEN 1 ELSE 0 END
       FROM x
       ORDER BY x.i
       ON CONFLICT (source, idempotency_key) WHERE key_expires_at IS NOT NULL DO NOTHING
       RETURNING id`,
      [JSON.stringify(fresh), opts.now, opts.now + opts.idempotencyWindowMs],
    );
    for (const r of rows) inserted.add(r.id);
    if (rows.length < fresh.length) {
      // A key not inserted may have carried its partition key's head mark: the first queued
      // message of each such key becomes head if it is not (the keys' locks are held).
      const lost = new Set<string>();
      for (const f of fresh) if (!inserted.has(f.id as string)) lost.add(f.pk as string);
      for (const pk of lost) await tx.execute(PROMOTE_FIRST_QUEUED_SQL, [pk]);
    }
  }
  // Known keys, keys repeated in the batch and refused deferrable requests are answered one by
  // one, in request order (a repeated key answers as a duplicate of the first).
  const acceptedAt = iso(opts.now);
  const out: AcceptResult[] = [];
  for (let i = 0; i < reqs.length; i++) {
    const r = reqs[i]!;
    const id = ids[i]!;
    out.push(inserted.has(id) ? acceptedAnswer(r, id, acceptedAt) : await acceptInTx(tx, r, opts));
  }
  return out;
}

/** Accepts a batch in one transaction (one commit, one fsync). */
export async function acceptBatch(
  store: Store,
  reqs: readonly AcceptRequest[],
  opts: InboxOptions,
): Promise<AcceptResult[]> {
  if (store.dialect === 'postgres') {
    return store.transaction((tx) => acceptBatchPostgres(tx, reqs, opts));
  }
  return store.transaction((tx) => acceptBatchSqlite(tx, reqs, opts));
}

/** Rows per multi-row statement (well under SQLite's bound-parameter limit). */
const SQLITE_ROWS_PER_STATEMENT = 256;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * SQLite (one writer, so nothing can interleave inside the transaction): one statement finds the
 * last queued message of each of the batch's partition keys (the new messages' `prev_seq`, and
 * the head mark where there is none) and whether `idempotency_keys` keeps any key at all; one
 * multi-row insert writes the messages, which hold their idempotency keys, skipping (`ON
 * CONFLICT DO NOTHING`) any whose key a message holds already. Only when the table keeps keys
 * are the batch's keys looked up there first. A request whose key is kept already (a duplicate,
 * a conflict or an expired key) is handled one by one afterwards.
 */
async function acceptBatchSqlite(
  tx: SqlRunner,
  reqs: readonly AcceptRequest[],
  opts: InboxOptions,
): Promise<AcceptResult[]> {
  const out: (AcceptResult | undefined)[] = new Array<AcceptResult | undefined>(reqs.length);
  const seen = new Set<string>();
  let fresh: number[] = [];
  const later: number[] = [];
  reqs.forEach((r, i) => {
    const k = `${r.source.length}:${r.source}${r.idempotencyKey}`;
    if ((opts.refuseDeferrable && r.priority === 'deferrable') || seen.has(k)) {
      later.push(i);
      return;
    }
    seen.add(k);
    fresh.push(i);
  });
  if (fresh.length === 0) return acceptOneByOne(tx, reqs, opts, out, later);
  // Rows of kind 0: a key's last queued message; 1: idempotency_keys is not empty; 2: the last
  // seq given (the batch's messages are numbered from it, so each can name the one before it).
  const rows = await tx.query<{ kind: number; partition_key: string | null; seq: number }>(
    `SELECT 0 AS kind, t.partition_key, t.last_seq AS seq FROM json_each(?) AS k
       JOIN partition_tails t ON t.partition_key = k.value
       JOIN messages q ON q.seq = t.last_seq AND q.status = 'queued'
     UNION ALL SELECT 1, NULL, 0 WHERE EXISTS (SELECT 1 FROM idempotency_keys)
     UNION ALL SELECT 2, NULL, seq FROM sqlite_sequence WHERE name = 'messages'`,
    [JSON.stringify([...new Set(fresh.map((i) => reqs[i]!.partitionKey))])],
  );
  /** Each partition key's last queued message before this batch. */
  const before = new Map<string, number>();
  let keptKeys = false;
  let seq = 0;
  for (const row of rows) {
    if (row.kind === 0) before.set(row.partition_key!, Number(row.seq));
    else if (row.kind === 1) keptKeys = true;
    else seq = Number(row.seq);
  }
  if (keptKeys) {
    const bySource = new Map<string, number[]>();
    for (const i of fresh) {
      const list = bySource.get(reqs[i]!.source);
      if (list) list.push(i);
      else bySource.set(reqs[i]!.source, [i]);
    }
    const known = new Set<number>();
    for (const [source, list] of bySource) {
      const hits = await tx.query<{ n: number }>(
        `SELECT k.key AS n FROM json_each(?) AS k
         WHERE EXISTS (SELECT 1 FROM idempotency_keys i WHERE i.source = ? AND i.idempotency_key = k.value)`,
        [JSON.stringify(list.map((i) => reqs[i]!.idempotencyKey)), source],
      );
      for (const h of hits) known.add(list[Number(h.n)]!);
    }
    if (known.size > 0) {
      fresh = fresh.filter((i) => !known.has(i));
      later.push(...known);
    }
  }
  const acceptedAt = iso(opts.now);
  const keyExpiresAt = opts.now + opts.idempotencyWindowMs;
  /** The last message of each key so far, this batch's included. */
  const tail = new Map(before);
  /** The batch's new messages, in request order, with the one each was queued behind. */
  const written: { i: number; seq: number; prev: number | null }[] = [];
  let short = false;
  for (const part of chunks(fresh, SQLITE_ROWS_PER_STATEMENT)) {
    const params: SqlValue[] = [];
    for (const i of part) {
      const r = reqs[i]!;
      const id = timeOrderedId(opts.now);
      // A message is born head when no queued message of its key exists (nor an earlier one in
      // this batch); otherwise it names the one before it.
      const prev = tail.get(r.partitionKey) ?? null;
      seq++;
      tail.set(r.partitionKey, seq);
      written.push({ i, seq, prev });
      params.push(
        seq,
        id,
        r.source,
        r.idempotencyKey,
        r.type,
        r.partitionKey,
        priorityRank(r.priority),
        messagePayload(r, sealerFor(r, opts)),
        r.traceparent ?? null,
        r.availableAt ? Math.max(opts.now, r.availableAt.getTime()) : opts.now,
        opts.now,
        r.requestHash,
        keyExpiresAt,
        prev,
        prev === null ? 1 : 0,
      );
      out[i] = acceptedAnswer(r, id, acceptedAt);
    }
    const inserted = await tx.execute(
      `INSERT INTO messages (seq, id, source, idempotency_key, type, partition_key, priority,
         payload, traceparent, status, attempts, available_at, accepted_at, replay_count,
         request_hash, key_expires_at, prev_seq, is_head)
       VALUES ${new Array<string>(part.length).fill("(?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, 0, ?, ?, ?, ?)").join(', ')}
       ON CONFLICT (source, idempotency_key) WHERE key_expires_at IS NOT NULL DO NOTHING`,
      params,
    );
    if (inserted.changes < part.length) short = true;
  }
  if (short) await relinkAfterConflicts(tx, reqs, written, before, out, later);
  return acceptOneByOne(tx, reqs, opts, out, later);
}

/**
 * Some of a batch's messages were not inserted: their keys are held by messages already (those
 * requests are answered one by one afterwards). The messages queued behind one of them in the
 * batch are linked again to the one truly before them, or made head when there is none.
 */
async function relinkAfterConflicts(
  tx: SqlRunner,
  reqs: readonly AcceptRequest[],
  written: readonly { i: number; seq: number; prev: number | null }[],
  before: ReadonlyMap<string, number>,
  out: (AcceptResult | undefined)[],
  later: number[],
): Promise<void> {
  const present = new Set(
    (
      await tx.query<{ seq: number }>(
        'SELECT seq FROM messages WHERE seq IN (SELECT value FROM json_each(?))',
        [JSON.stringify(written.map((w) => w.seq))],
      )
    ).map((row) => Number(row.seq)),
  );
  const lostKeys = new Set<string>();
  for (const w of written) {
    if (present.has(w.seq)) continue;
    out[w.i] = undefined;
    later.push(w.i);
    lostKeys.add(reqs[w.i]!.partitionKey);
  }
  const tail = new Map(before);
  for (const w of written) {
    const key = reqs[w.i]!.partitionKey;
    if (!lostKeys.has(key) || !present.has(w.seq)) continue;
    const prev = tail.get(key) ?? null;
    tail.set(key, w.seq);
    if (prev === w.prev) continue;
    await tx.execute('UPDATE messages SET prev_seq = ?, is_head = ? WHERE seq = ?', [
      prev,
      prev === null ? 1 : 0,
      w.seq,
    ]);
  }
}

/**
 * Known keys, keys repeated in the batch and refused deferrable requests, in request order (a
 * repeated key answers as a duplicate of the first).
 */
async function acceptOneByOne(
  tx: SqlRunner,
  reqs: readonly AcceptRequest[],
  opts: InboxOptions,
  out: (AcceptResult | undefined)[],
  later: number[],
): Promise<AcceptResult[]> {
  later.sort((a, b) => a - b);
  for (const i of later) out[i] = await acceptInTx(tx, reqs[i]!, opts);
  return out as AcceptResult[];
}

// ------------------------------------------------------------------------------------- claims

export interface MessageRow extends Row {
  seq: number;
  id: string;
  source: string;
  idempotency_key: string;
  type: string;
  partition_key: string;
  priority: number;
  payload: string;
  traceparent: string | null;
  status: string;
  attempts: number;
  available_at: number;
  lease_until: number | null;
  lease_token: string | null;
  accepted_at: number;
  completed_at: number | null;
  last_error: string | null;
  replay_count: number;
}

export interface Claimed<R> {
  row: R;
  leaseToken: string;
}

/**
 * PostgreSQL, inside a single statement (its own implicit transaction): the commit of that
 * transaction does not wait for the WAL flush, as `transaction(fn, { relaxed: true })` would do
 * with three more round trips. The statement must join `relaxed` so the CTE is evaluated.
 */
const RELAXED_COMMIT = `relaxed AS (SELECT set_config('synchronous_commit', 'off', true) AS v)`;

/**
 * A message is claimable when it is the head of its key (no earlier unfinished message; kept in
 * `is_head`, indexed with the class and sequence), due, and not leased.
 */
const MESSAGE_CANDIDATES = `
  SELECT m.seq FROM messages m
  WHERE m.status = 'queued' AND m.is_head = 1 AND m.available_at <= ?
    AND (m.lease_until IS NULL OR m.lease_until < ?)
  ORDER BY m.priority, m.seq
  LIMIT ?`;

/**
 * Leases up to `limit` head-of-key messages, highest class first, then accept order. Each
 * claim counts an attempt (a message that crashes its worker is eventually dead-lettered).
 */
export async function claimMessages(
  store: Store,
  opts: { limit: number; leaseMs: number; now: number },
): Promise<Claimed<MessageRow>[]> {
  if (opts.limit <= 0) return [];
  const token = randomUUID();
  const leaseUntil = opts.now + opts.leaseMs;
  let rows: MessageRow[];
  if (store.dialect === 'postgres') {
    // The CTE is evaluated once; rows another claimer holds are skipped, not waited for.
    // A claim is lease bookkeeping: losing it with the machine only hands the messages back, so
    // its commit does not wait for the WAL flush (one round trip, see RELAXED_COMMIT).
    // The candidates, locked, come from claimable_messages (engine migration 6): the claim
    // index walked in order, however stale the table's statistics.
    rows = await store.query<MessageRow>(
      `WITH ${RELAXED_COMMIT}, c AS (SELECT claimable_messages(?, ?) AS seq)
       UPDATE messages SET lease_until = ?, lease_token = ?, attempts = attempts + 1
       FROM c, relaxed
       WHERE messages.seq = c.seq
         AND messages.status = 'queued' AND (messages.lease_until IS NULL OR messages.lease_until < ?)
       RETURNING messages.*`,
      [opts.now, opts.limit, leaseUntil, token, opts.now],
    );
  } else {
    // One statement: pick, lease and return (one writer, so nothing can interleave).
    rows = await store.transaction(
      (tx) =>
        tx.query<MessageRow>(
          `UPDATE messages SET lease_until = ?, lease_token = ?, attempts = attempts + 1
           WHERE seq IN (${MESSAGE_CANDIDATES})
           RETURNING *`,
          [leaseUntil, token, opts.now, opts.now, opts.limit],
        ),
      { relaxed: true },
    );
  }
  rows.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
  return rows.map((row) => ({ row, leaseToken: token }));
}

/**
 * Heartbeat: extends the leases of claims still being worked on (handlers and delivery attempts
 * that run long), under their lease tokens. Returns the ids whose lease was extended; a claim
 * whose lease was already lost is left alone.
 */
export async function renewLeases(
  store: Store,
  held: {
    messages: readonly Claimed<MessageRow>[];
    deliveries: readonly Claimed<DeliveryRow>[];
    leaseUntil: number;
  },
): Promise<Set<string>> {
  const renewed = new Set<string>();
  const byToken = <R extends { id: string }>(claims: readonly Claimed<R>[]) => {
    const m = new Map<string, string[]>();
    for (const c of claims) {
      const ids = m.get(c.leaseToken);
      if (ids) ids.push(c.row.id);
      else m.set(c.leaseToken, [c.row.id]);
    }
    return m;
  };
  await store.transaction(
    async (tx) => {
      for (const [table, claims] of [
        ['messages', byToken(held.messages)],
        ['deliveries', byToken(held.deliveries)],
      ] as const) {
        for (const [token, ids] of claims) {
          for (const part of chunks(ids, SQLITE_ROWS_PER_STATEMENT * 2)) {
            const mine = `lease_token = ? AND status = 'queued' AND id IN (${placeholders(part.length)})`;
            // PostgreSQL: a row locked by its own handler's transaction (marked done there) or
            // by a settle is skipped rather than waited for; it needs no renewal.
            const rows = await tx.query<{ id: string }>(
              tx.dialect === 'postgres'
                ? `UPDATE ${table} SET lease_until = ?
                   WHERE seq IN (SELECT seq FROM ${table} WHERE ${mine} FOR UPDATE SKIP LOCKED)
                   RETURNING id`
                : `UPDATE ${table} SET lease_until = ? WHERE ${mine} RETURNING id`,
              [held.leaseUntil, token, ...part],
            );
            for (const r of rows) renewed.add(r.id);
          }
        }
      }
    },
    { relaxed: true },
  );
  return renewed;
}

/** A claimed row as its handler sees it (the payload opened when sealed). */
export function toQueuedMessage(row: MessageRow, sealer?: PayloadSealer): QueuedMessage {
  return {
    id: row.id,
    source: row.source,
    idempotencyKey: row.idempotency_key,
    type: row.type,
    partitionKey: row.partition_key,
    priority: priorityOf(row.priority),
    payload: readStoredPayload(sealer, row.payload),
    ...(row.traceparent ? { traceparent: row.traceparent } : {}),
    attempt: row.attempts,
    acceptedAt: iso(row.accepted_at),
    replayCount: row.replay_count,
  };
}

/** Thrown when a lease was lost (expired and taken by another worker) before completion. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

/**
 * Marks a claimed message done and hands its key to the next message, in one transaction.
 * Throws if the lease is lost.
 */
export async function completeMessage(
  tx: SqlRunner,
  claimed: Claimed<MessageRow>,
  now: number,
): Promise<void> {
  await markMessageDone(tx, claimed.row.id, claimed.leaseToken, now);
  await promoteNextHead(tx, claimed.row);
}

/**
 * Marks a claimed message done inside the handler's transaction; throws if the lease is lost.
 * The caller must promote its key's next head before committing (the engine queues that to run
 * with the COMMIT, promoteNextHeadAtCommit, so the key's lock is held only for that round trip).
 */
export async function markMessageDone(
  tx: SqlRunner,
  id: string,
  leaseToken: string,
  now: number,
): Promise<void> {
  const r = await tx.execute(
    `UPDATE messages SET status = 'done', completed_at = ?, lease_until = NULL, lease_token = NULL, last_error = NULL
     WHERE id = ? AND lease_token = ? AND status = 'queued'`,
    [now, id, leaseToken],
  );
  if (r.changes !== 1) throw new LeaseLostError(`lease on message ${id} was lost`);
}

export async function recordAttempt(
  tx: SqlRunner,
  a: {
    subjectId: string;
    attempt: number;
    at: number;
    outcome: string;
    status?: number | undefined;
    error?: string | undefined;
    latencyMs?: number | undefined;
  },
): Promise<void> {
  await tx.execute(
    'INSERT INTO attempts (subject_id, attempt, at, outcome, status, error, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [
      a.subjectId,
      a.attempt,
      a.at,
      a.outcome,
      a.status ?? null,
      a.error ?? null,
      a.latencyMs === undefined ? null : Math.round(a.latencyMs),
    ],
  );
}

export interface AttemptRecord {
  attempt: number;
  at: string;
  outcome: string;
  status?: number;
  error?: string;
  latencyMs?: number;
}

async function attemptHistory(tx: SqlRunner, subjectId: string): Promise<AttemptRecord[]> {
  const rows = await tx.query<{
    attempt: number;
    at: number;
    outcome: string;
    status: number | null;
    error: string | null;
    latency_ms: number | null;
  }>(
    'SELECT attempt, at, outcome, status, error, latency_ms FROM attempts WHERE subject_id = ? ORDER BY at, attempt',
    [subjectId],
  );
  return rows.map((r) => ({
    attempt: r.attempt,
    at: iso(r.at),
    outcome: r.outcome,
    ...(r.status !== null ? { status: r.status } : {}),
    ...(r.error !== null ? { error: r.error } : {}),
    ...(r.latency_ms !== null ? { latencyMs: r.latency_ms } : {}),
  }));
}

async function writeDeadLetter(
  tx: SqlRunner,
  d: {
    id: string;
    kind: 'message' | 'delivery';
    type: string | null;
    destination: string | null;
    partitionKey: string | null;
    idempotencyKey: string;
    reason: string;
    lastError: string | null;
    attempts: number;
    traceparent: string | null;
    payload: string;
    replayCount: number;
    now: number;
  },
): Promise<void> {
  const history = await attemptHistory(tx, d.id);
  await tx.execute(
    `INSERT INTO dead_letters (id, kind, type, destination, partition_key, idempotency_key, reason,
       last_error, attempts, history, traceparent, payload, dead_at, status, replay_count)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'dead', ?)
     ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, last_error = excluded.last_error,
       attempts = excluded.attempts, history = excluded.history, dead_at = excluded.dead_at,
       status = 'dead', replay_count = excluded.replay_count`,
    [
      d.id,
      d.kind,
      d.type,
      d.destination,
      d.partitionKey,
      d.idempotencyKey,
      d.reason,
      d.lastError,
      d.attempts,
      JSON.stringify(history),
      d.traceparent,
      d.payload,
      d.now,
      d.replayCount,
    ],
  );
}

/**
 * A handler failed: record the attempt, then either reschedule (the message keeps holding its
 * key) or dead-letter it (its key moves on). Returns what happened; nothing if the lease is lost.
 */
export async function failMessage(
  store: Store,
  claimed: Claimed<MessageRow>,
  f: { now: number; error: string; retryAfterMs: number | null; reason: string },
): Promise<'retry' | 'dead' | 'lease-lost'> {
  const row = claimed.row;
  return store.transaction(async (tx) => {
    const dead = f.retryAfterMs === null;
    const r = await tx.execute(
      dead
        ? `UPDATE messages SET status = 'dead', completed_at = ?, lease_until = NULL, lease_token = NULL, last_error = ?
           WHERE id = ? AND lease_token = ? AND status = 'queued'`
        : `UPDATE messages SET available_at = ?, lease_until = NULL, lease_token = NULL, last_error = ?
           WHERE id = ? AND lease_token = ? AND status = 'queued'`,
      [dead ? f.now : f.now + (f.retryAfterMs ?? 0), f.error, row.id, claimed.leaseToken],
    );
    if (r.changes !== 1) return 'lease-lost';
    await recordAttempt(tx, {
      subjectId: row.id,
      attempt: row.attempts,
      at: f.now,
      outcome: dead ? 'dead' : 'retry',
      error: f.error,
    });
    if (dead) {
      await promoteNextHead(tx, row);
      await writeDeadLetter(tx, {
        id: row.id,
        kind: 'message',
        type: row.type,
        destination: null,
        partitionKey: row.partition_key,
        idempotencyKey: row.idempotency_key,
        reason: f.reason,
        lastError: f.error,
        attempts: row.attempts,
        traceparent: row.traceparent,
        payload: row.payload,
        replayCount: row.replay_count,
        now: f.now,
      });
    }
    return dead ? 'dead' : 'retry';
  });
}

// --------------------------------------------------------------------------------- deliveries

export interface DeliveryRow extends Row {
  seq: number;
  id: string;
  message_id: string | null;
  destination: string;
  idempotency_key: string;
  priority: number;
  payload: string;
  headers: string | null;
  traceparent: string | null;
  status: string;
  attempts: number;
  available_at: number;
  lease_until: number | null;
  lease_token: string | null;
  created_at: number;
  origin_at: number | null;
  completed_at: number | null;
  last_error: string | null;
  last_status: number | null;
  replay_count: number;
}

export interface InsertDelivery {
  messageId: string | null;
  destination: string;
  idempotencyKey: string;
  priority: PriorityClass;
  payload: unknown;
  headers?: Record<string, string> | undefined;
  traceparent?: string | undefined;
  availableAt?: Date | undefined;
  /** When the work that caused it was accepted (for end-to-end latency). */
  originAt?: number | undefined;
}

/** Writes a delivery (idempotent on destination + idempotency key); returns its id. */
export async function insertDelivery(
  tx: SqlRunner,
  d: InsertDelivery,
  now: number,
  sealer?: PayloadSealer,
): Promise<string> {
  const id = timeOrderedId(now);
  const r = await tx.execute(
    `INSERT INTO deliveries (id, message_id, destination, idempotency_key, priority, payload, headers,
       traceparent, status, attempts, available_at, created_at, origin_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)
     ON CONFLICT (destination, idempotency_key) DO NOTHING`,
    [
      id,
      d.messageId,
      d.destination,
      d.idempotencyKey,
      priorityRank(d.priority),
      storedPayload(sealer, JSON.stringify(d.payload ?? null)),
      d.headers ? JSON.stringify(d.headers) : null,
      d.traceparent ?? null,
      d.availableAt ? Math.max(now, d.availableAt.getTime()) : now,
      now,
      d.originAt ?? now,
    ],
  );
  if (r.changes === 1) return id;
  const existing = await tx.query<{ id: string }>(
    'SELECT id FROM deliveries WHERE destination = ? AND idempotency_key = ?',
    [d.destination, d.idempotencyKey],
  );
  return existing[0]?.id ?? id;
}

export interface DeliveryClaimFilter {
  limit: number;
  leaseMs: number;
  now: number;
  /** Only these destinations (those with a sender here). */
  destinations: readonly string[];
  /** Destinations whose deferrable deliveries must wait. */
  congested?: readonly string[];
  /**
   * Each destination's free in-flight slots (default `limit`): one with none is not claimed from
   * (its local in-flight limit is reached); on PostgreSQL a destination's claim takes, and locks,
   * at most that many.
   */
  room?: ReadonlyMap<string, number>;
}

export async function claimDeliveries(
  store: Store,
  f: DeliveryClaimFilter,
): Promise<Claimed<DeliveryRow>[]> {
  const roomOf = (d: string) => Math.min(f.limit, f.room?.get(d) ?? f.limit);
  const destinations = f.destinations.filter((d) => roomOf(d) > 0);
  if (f.limit <= 0 || destinations.length === 0) return [];
  const token = randomUUID();
  const congested = (f.congested ?? []).filter((d) => destinations.includes(d));
  let rows: DeliveryRow[];
  if (store.dialect === 'postgres') {
    // Each destination's candidates, locked, come from its own range of deliveries_queue
    // (claimable_deliveries, engine migration 6), up to its room; a congested destination's
    // range stops before its deferrable deliveries.
    const ranges = destinations.map((destination) => ({
      destination,
      room: roomOf(destination),
      below: congested.includes(destination) ? priorityRank('deferrable') : PRIORITY_CLASSES.length,
    }));
    rows = await store.query<DeliveryRow>(
      `WITH ${RELAXED_COMMIT}, c AS (SELECT claimable_deliveries(?, ?::jsonb, ?) AS seq)
       UPDATE deliveries SET lease_until = ?, lease_token = ?
       FROM c, relaxed
       WHERE deliveries.seq = c.seq
         AND deliveries.status = 'queued' AND (deliveries.lease_until IS NULL OR deliveries.lease_until < ?)
       RETURNING deliveries.*`,
      [f.now, JSON.stringify(ranges), f.limit, f.now + f.leaseMs, token, f.now],
    );
  } else {
    const params: SqlValue[] = [f.now, f.now, ...destinations];
    let where = `d.status = 'queued' AND d.available_at <= ? AND (d.lease_until IS NULL OR d.lease_until < ?)
      AND d.destination IN (${placeholders(destinations.length)})`;
    if (congested.length > 0) {
      where += ` AND NOT (d.priority = ${priorityRank('deferrable')} AND d.destination IN (${placeholders(congested.length)}))`;
      params.push(...congested);
    }
    params.push(f.limit);
    rows = await store.transaction(
      (tx) =>
        tx.query<DeliveryRow>(
          `UPDATE deliveries SET lease_until = ?, lease_token = ?
           WHERE seq IN (SELECT d.seq FROM deliveries d WHERE ${where} ORDER BY d.priority, d.seq LIMIT ?)
           RETURNING *`,
          [f.now + f.leaseMs, token, ...params],
        ),
      { relaxed: true },
    );
  }
  rows.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
  return rows.map((row) => ({ row, leaseToken: token }));
}

/** A claimed row as its sender sees it (the payload opened when sealed). */
export function toOutboundDelivery(row: DeliveryRow, sealer?: PayloadSealer): OutboundDelivery {
  return {
    id: row.id,
    messageId: row.message_id,
    destination: row.destination,
    idempotencyKey: row.idempotency_key,
    priority: priorityOf(row.priority),
    payload: readStoredPayload(sealer, row.payload),
    headers: row.headers ? (JSON.parse(row.headers) as Record<string, string>) : {},
    ...(row.traceparent ? { traceparent: row.traceparent } : {}),
    attempt: row.attempts + 1,
    replayCount: row.replay_count,
  };
}

export type DeliveryResult =
  | { kind: 'delivered'; status: number; latencyMs: number }
  | { kind: 'retry'; afterMs: number; error: string; status?: number; latencyMs: number }
  | { kind: 'dead'; reason: string; error: string; status?: number; latencyMs: number }
  /** Not attempted (circuit open, deferred by a local limit, no sender here): no attempt counted. */
  | { kind: 'postpone'; afterMs: number; why: 'circuit-open' | 'deferred' | 'no-sender' };

/**
 * Settles many deliveries in the caller's transaction: the delivered ones (the common case) with
 * one UPDATE per lease token and status and one multi-row INSERT of their attempt records; any
 * other outcome one by one. Returns, per item, whether it was settled (false: lease lost).
 */
export async function settleDeliveriesInTx(
  tx: SqlRunner,
  items: readonly { claimed: Claimed<DeliveryRow>; result: DeliveryResult }[],
  now: number,
): Promise<boolean[]> {
  const out = new Array<boolean>(items.length).fill(false);
  const groups = new Map<string, number[]>();
  for (let i = 0; i < items.length; i++) {
    const { claimed, result } = items[i]!;
    if (result.kind !== 'delivered') {
      out[i] = await settleDeliveryInTx(tx, claimed, result, now);
      continue;
    }
    const g = `${claimed.leaseToken} ${result.status}`;
    const list = groups.get(g);
    if (list) list.push(i);
    else groups.set(g, [i]);
  }
  const recorded: number[] = [];
  for (const list of groups.values()) {
    const first = items[list[0]!]!;
    const status = (first.result as { status: number }).status;
    for (const part of chunks(list, SQLITE_ROWS_PER_STATEMENT * 2)) {
      // Under the lease token nobody else has changed the row since the claim, so
      // `attempts + 1` is the attempt the claim handed out.
      const rows = await tx.query<{ id: string }>(
        `UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, completed_at = ?,
           last_status = ?, last_error = NULL, lease_until = NULL, lease_token = NULL
         WHERE lease_token = ? AND status = 'queued' AND id IN (${placeholders(part.length)})
         RETURNING id`,
        [now, status, first.claimed.leaseToken, ...part.map((i) => items[i]!.claimed.row.id)],
      );
      const settled = new Set(rows.map((r) => r.id));
      for (const i of part) {
        if (settled.has(items[i]!.claimed.row.id)) {
          out[i] = true;
          recorded.push(i);
        }
      }
    }
  }
  for (const part of chunks(recorded, SQLITE_ROWS_PER_STATEMENT)) {
    const params: SqlValue[] = [];
    for (const i of part) {
      const { claimed, result } = items[i]!;
      const r = result as { status: number; latencyMs: number };
      params.push(
        claimed.row.id,
        claimed.row.attempts + 1,
        now,
        'delivered',
        r.status,
        null,
        Math.round(r.latencyMs),
      );
    }
    await tx.execute(
      `INSERT INTO attempts (subject_id, attempt, at, outcome, status, error, latency_ms)
       VALUES ${new Array<string>(part.length).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      params,
    );
  }
  return out;
}

/**
 * Records one attempt's outcome under the lease, inside a transaction the caller owns (the
 * engine's group commit of outcomes); false when the lease was lost.
 */
export async function settleDeliveryInTx(
  tx: SqlRunner,
  claimed: Claimed<DeliveryRow>,
  result: DeliveryResult,
  now: number,
): Promise<boolean> {
  const row = claimed.row;
  const attempt = row.attempts + 1;
  {
    let r;
    switch (result.kind) {
      case 'delivered':
        r = await tx.execute(
          `UPDATE deliveries SET status = 'delivered', attempts = ?, completed_at = ?, last_status = ?,
             last_error = NULL, lease_until = NULL, lease_token = NULL
           WHERE id = ? AND lease_token = ? AND status = 'queued'`,
          [attempt, now, result.status, row.id, claimed.leaseToken],
        );
        break;
      case 'retry':
        r = await tx.execute(
          `UPDATE deliveries SET attempts = ?, available_at = ?, last_status = ?, last_error = ?,
             lease_until = NULL, lease_token = NULL
           WHERE id = ? AND lease_token = ? AND status = 'queued'`,
          [
            attempt,
            now + Math.max(0, result.afterMs),
            result.status ?? null,
            result.error,
            row.id,
            claimed.leaseToken,
          ],
        );
        break;
      case 'dead':
        r = await tx.execute(
          `UPDATE deliveries SET status = 'dead', attempts = ?, completed_at = ?, last_status = ?,
             last_error = ?, lease_until = NULL, lease_token = NULL
           WHERE id = ? AND lease_token = ? AND status = 'queued'`,
          [attempt, now, result.status ?? null, result.error, row.id, claimed.leaseToken],
        );
        break;
      case 'postpone':
        r = await tx.execute(
          `UPDATE deliveries SET available_at = ?, lease_until = NULL, lease_token = NULL
           WHERE id = ? AND lease_token = ? AND status = 'queued'`,
          [now + Math.max(0, result.afterMs), row.id, claimed.leaseToken],
        );
        return r.changes === 1;
    }
    if (r.changes !== 1) return false;
    await recordAttempt(tx, {
      subjectId: row.id,
      attempt,
      at: now,
      outcome: result.kind,
      status: result.status,
      error: 'error' in result ? result.error : undefined,
      latencyMs: result.latencyMs,
    });
    if (result.kind === 'dead') {
      let type: string | null = null;
      if (row.message_id) {
        const m = await tx.query<{ type: string }>('SELECT type FROM messages WHERE id = ?', [
          row.message_id,
        ]);
        type = m[0]?.type ?? null;
      }
      await writeDeadLetter(tx, {
        id: row.id,
        kind: 'delivery',
        type,
        destination: row.destination,
        partitionKey: null,
        idempotencyKey: row.idempotency_key,
        reason: result.reason,
        lastError: result.error,
        attempts: attempt,
        traceparent: row.traceparent,
        payload: row.payload,
        replayCount: row.replay_count,
        now,
      });
    }
    return true;
  }
}

// ---------------------------------------------------------------------------- state and stats

export function stateAccess(tx: SqlRunner, now: () => number) {
  return {
    async get<T = unknown>(namespace: string, key: string): Promise<T | undefined> {
      const rows = await tx.query<{ value: string }>(
        'SELECT value FROM state WHERE namespace = ? AND key = ?',
        [namespace, key],
      );
      return rows[0] ? (JSON.parse(rows[0].value) as T) : undefined;
    },
    async put(namespace: string, key: string, value: unknown): Promise<void> {
      await tx.execute(
        `INSERT INTO state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        [namespace, key, JSON.stringify(value ?? null), now()],
      );
    },
    async delete(namespace: string, key: string): Promise<boolean> {
      const r = await tx.execute('DELETE FROM state WHERE namespace = ? AND key = ?', [
        namespace,
        key,
      ]);
      return r.changes > 0;
    },
  };
}

export interface QueueDepths {
  messages: { priority: number; n: number; oldest: number | null }[];
  deliveries: { destination: string; priority: number; n: number; oldest: number | null }[];
  deadLetters: number;
}

export async function queueDepths(store: SqlRunner): Promise<QueueDepths> {
  const sqlite = store.dialect === 'sqlite';
  // SQLite (one event loop that a scan would block): the counts kept by triggers (migration 5),
  // and each class's oldest from the first entry of an index. There the oldest message of a
  // class is the oldest head of a key in it (a message waiting behind an older head of another
  // class is younger than that head, which is counted in its own class).
  const messages = await store.query<{ priority: number; n: number; oldest: number | null }>(
    sqlite
      ? `SELECT c.priority, c.n, (SELECT m.accepted_at FROM messages m
           WHERE m.status = 'queued' AND m.is_head = 1 AND m.priority = c.priority
           ORDER BY m.seq LIMIT 1) AS oldest
         FROM queue_counts c WHERE c.queue = 'messages' AND c.destination = '' AND c.n > 0`
      : "SELECT priority, COUNT(*) AS n, MIN(accepted_at) AS oldest FROM messages WHERE status = 'queued' GROUP BY priority",
  );
  const deliveries = await store.query<{
    destination: string;
    priority: number;
    n: number;
    oldest: number | null;
  }>(
    sqlite
      ? `SELECT c.destination, c.priority, c.n, (SELECT d.created_at FROM deliveries d
           WHERE d.status = 'queued' AND d.destination = c.destination AND d.priority = c.priority
           ORDER BY d.seq LIMIT 1) AS oldest
         FROM queue_counts c WHERE c.queue = 'deliveries' AND c.n > 0`
      : "SELECT destination, priority, COUNT(*) AS n, MIN(created_at) AS oldest FROM deliveries WHERE status = 'queued' GROUP BY destination, priority",
  );
  const dl = await store.query<{ n: number }>(
    sqlite
      ? "SELECT COALESCE(SUM(n), 0) AS n FROM queue_counts WHERE queue = 'dead_letters'"
      : "SELECT COUNT(*) AS n FROM dead_letters WHERE status = 'dead'",
  );
  return {
    messages: messages.map((r) => ({ ...r, n: Number(r.n) })),
    deliveries: deliveries.map((r) => ({ ...r, n: Number(r.n) })),
    deadLetters: Number(dl[0]?.n ?? 0),
  };
}

// ----------------------------------------------------------------------------------- retention

export interface RetentionWindows {
  /** Keep done messages and delivered deliveries (and attempt records) this long. */
  completedMs: number;
  /**
   * Keep dead letters this long after they died (the dead message or delivery rows with them);
   * replayed dead letters count from the same time.
   */
  deadLettersMs: number;
  /** Rows deleted per statement. */
  batch: number;
}

export interface PurgeReport {
  /** Queued messages found to be heads of their key without the mark (should stay 0). */
  headsRepaired: number;
  messages: number;
  deliveries: number;
  /**
   * Idempotency keys forgotten: expired ones kept in `idempotency_keys`, and expired keys whose
   * messages were purged.
   */
  idempotencyKeys: number;
  attempts: number;
  /** Dead letters past their window (their dead message and delivery rows go with them). */
  deadLetters: number;
}

async function deleteInBatches(store: Store, sql: string, params: SqlValue[], batch: number) {
  let total = 0;
  for (;;) {
    const r = await store.execute(sql, [...params, batch]);
    total += r.changes;
    if (r.changes < batch) return total;
  }
}

/** Copies the keys of messages about to be deleted into `idempotency_keys` (FROM … to follow). */
const KEEP_KEYS = `INSERT INTO idempotency_keys (source, idempotency_key, request_hash, message_id,
    accepted_at, traceparent, expires_at)
  SELECT source, idempotency_key, request_hash, id, accepted_at, traceparent, key_expires_at`;
/** A row kept there for the same key (expired: a message has held the key since) is replaced. */
const KEEP_KEYS_CONFLICT = `ON CONFLICT (source, idempotency_key) DO UPDATE SET
    request_hash = excluded.request_hash, message_id = excluded.message_id,
    accepted_at = excluded.accepted_at, traceparent = excluded.traceparent,
    expires_at = excluded.expires_at`;

/**
 * Deletes messages of `status` completed before `cutoff`, `batch` at a time. A key such a message
 * holds that is still inside its window moves to `idempotency_keys` in the same transaction, so
 * it keeps answering after its message is gone; `expiredKeys` counts the keys that go with their
 * messages.
 */
async function purgeMessages(
  store: Store,
  status: 'done' | 'replayed' | 'dead',
  cutoff: number,
  now: number,
  batch: number,
): Promise<{ messages: number; expiredKeys: number }> {
  let messages = 0;
  let expiredKeys = 0;
  // The status is written in the SQL (not bound) so the partial index of that status is used.
  const pick = `SELECT seq FROM messages WHERE status = '${status}' AND completed_at < ? LIMIT ?`;
  for (;;) {
    let rows: { key_expires_at: number | null }[];
    if (store.dialect === 'postgres') {
      rows = await store.query<{ key_expires_at: number | null }>(
        `WITH d AS (
           DELETE FROM messages WHERE seq IN (${pick})
           RETURNING source, idempotency_key, request_hash, id, accepted_at, traceparent, key_expires_at),
         k AS (${KEEP_KEYS} FROM d WHERE key_expires_at >= ? ${KEEP_KEYS_CONFLICT})
         SELECT key_expires_at FROM d`,
        [cutoff, batch, now],
      );
    } else {
      rows = await store.transaction(async (tx) => {
        const seqs = await tx.query<{ seq: number }>(pick, [cutoff, batch]);
        if (seqs.length === 0) return [];
        const list = JSON.stringify(seqs.map((r) => r.seq));
        await tx.execute(
          `${KEEP_KEYS} FROM messages
           WHERE seq IN (SELECT value FROM json_each(?)) AND key_expires_at >= ? ${KEEP_KEYS_CONFLICT}`,
          [list, now],
        );
        return tx.query<{ key_expires_at: number | null }>(
          'DELETE FROM messages WHERE seq IN (SELECT value FROM json_each(?)) RETURNING key_expires_at',
          [list],
        );
      });
    }
    messages += rows.length;
    for (const r of rows) {
      if (r.key_expires_at !== null && Number(r.key_expires_at) < now) expiredKeys++;
    }
    if (rows.length < batch) return { messages, expiredKeys };
  }
}

/** Deletes finished work older than the window and idempotency keys past their expiry. */
export async function purgeExpired(
  store: Store,
  w: RetentionWindows,
  now: number,
): Promise<PurgeReport> {
  const cutoff = now - w.completedMs;
  const done = await purgeMessages(store, 'done', cutoff, now, w.batch);
  const replayed = await purgeMessages(store, 'replayed', cutoff, now, w.batch);
  const deliveries = await deleteInBatches(
    store,
    "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries WHERE status = 'delivered' AND completed_at < ? LIMIT ?)",
    [cutoff],
    w.batch,
  );
  const attempts = await deleteInBatches(
    store,
    `DELETE FROM attempts WHERE subject_id IN (
       SELECT subject_id FROM attempts a WHERE a.at < ?
         AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.subject_id)
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = a.subject_id)
       LIMIT ?)`,
    [cutoff],
    w.batch,
  );
  const dlCutoff = now - w.deadLettersMs;
  const deadLetters = await deleteInBatches(
    store,
    'DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters WHERE dead_at < ? LIMIT ?)',
    [dlCutoff],
    w.batch,
  );
  // The dead rows themselves (their dead letter holds the payload and history). A row whose
  // dead letter was replayed is 'replayed' and goes with completed work.
  const dead = await purgeMessages(store, 'dead', dlCutoff, now, w.batch);
  await deleteInBatches(
    store,
    "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries WHERE status = 'dead' AND completed_at < ? LIMIT ?)",
    [dlCutoff],
    w.batch,
  );
  // Safety net: a queued message with no earlier queued message of its key is a head (on SQLite:
  // whose prev_seq names no queued message; a queued message without one is born head).
  const heads = await store.execute(
    store.dialect === 'postgres'
      ? `UPDATE messages SET is_head = 1
         WHERE status = 'queued' AND is_head = 0 AND NOT EXISTS (
           SELECT 1 FROM messages p
           WHERE p.partition_key = messages.partition_key AND p.status = 'queued' AND p.seq < messages.seq)`
      : `UPDATE messages SET is_head = 1
         WHERE status = 'queued' AND prev_seq IS NOT NULL AND is_head = 0 AND NOT EXISTS (
           SELECT 1 FROM messages p WHERE p.seq = messages.prev_seq AND p.status = 'queued')`,
  );
  // Keys kept in the table past their expiry; keys held by messages expire with them (above) or
  // are let go when a request reuses them.
  const expiredKeys = await deleteInBatches(
    store,
    'DELETE FROM idempotency_keys WHERE (source, idempotency_key) IN (SELECT source, idempotency_key FROM idempotency_keys WHERE expires_at < ? LIMIT ?)',
    [now],
    w.batch,
  );
  return {
    messages: done.messages + replayed.messages,
    deliveries,
    idempotencyKeys: expiredKeys + done.expiredKeys + replayed.expiredKeys + dead.expiredKeys,
    attempts,
    deadLetters,
    headsRepaired: heads.changes,
  };
}
