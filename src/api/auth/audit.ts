// The audit log of administrative actions (key creation and revocation, replays, payload views):
// who (the key's prefix and name, or `cli`), what, on what, when and from where. Append-only and
// hash-chained: entry n stores the SHA-256 of entry n-1's hash and its own content, and the head
// row holds the last sequence number and hash, so `verifyAudit` detects an altered, inserted or
// deleted entry (a rewrite of the whole chain and its head needs write access to the database and
// is out of its reach; anchor the head elsewhere for that). Read by `auditor` and `admin` at
// `GET /v1/audit`. Stored in `api_audit_log` and `api_audit_head` (migration 1001).
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { KeySql, KeyStore } from './api-keys.js';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEntry {
  seq: number;
  id: string;
  at: string;
  /** `<key prefix> (<key name>)`, or `cli` for the command line. */
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
  /** The caller's address, when the action came over HTTP. */
  remote: string | null;
  prevHash: string;
  hash: string;
}

export interface NewAuditEntry {
  actor: string;
  action: string;
  target?: string;
  detail?: Record<string, unknown>;
  remote?: string;
}

interface AuditRow {
  [k: string]: unknown;
  seq: number | string;
  id: string;
  at: number | string;
  actor: string;
  action: string;
  target: string | null;
  detail: string;
  remote: string | null;
  prev_hash: string;
  hash: string;
}

/** The hash of an entry: over the previous hash and every stored field, in a fixed order. */
export function auditHash(
  prevHash: string,
  e: {
    seq: number;
    id: string;
    at: number;
    actor: string;
    action: string;
    target: string | null;
    detail: string;
    remote: string | null;
  },
): string {
  const content = JSON.stringify([
    e.seq,
    e.id,
    e.at,
    e.actor,
    e.action,
    e.target,
    e.detail,
    e.remote,
  ]);
  return createHash('sha256').update(`${prevHash}\n${content}`, 'utf8').digest('hex');
}

/** Appends one entry at the end of the chain, in one transaction. */
export async function appendAudit(
  db: KeyStore,
  entry: NewAuditEntry,
  now: number = Date.now(),
): Promise<void> {
  await db.transaction(async (tx) => {
    // Taking the head row first serialises appenders (a row lock on PostgreSQL, the write lock on
    // SQLite), so two entries never claim the same predecessor.
    const bumped = await tx.execute('UPDATE api_audit_head SET seq = seq + 1 WHERE id = 1');
    if (bumped.changes !== 1) throw new Error('the audit log has no head row');
    const heads = await tx.query<{ seq: number | string; hash: string }>(
      'SELECT seq, hash FROM api_audit_head WHERE id = 1',
    );
    const head = heads[0]!;
    const row = {
      seq: Number(head.seq),
      id: randomUUID(),
      at: now,
      actor: entry.actor,
      action: entry.action,
      target: entry.target ?? null,
      detail: JSON.stringify(entry.detail ?? {}),
      remote: entry.remote ?? null,
    };
    const hash = auditHash(head.hash, row);
    await tx.execute(
      'INSERT INTO api_audit_log (seq, id, at, actor, action, target, detail, remote, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [
        row.seq,
        row.id,
        row.at,
        row.actor,
        row.action,
        row.target,
        row.detail,
        row.remote,
        head.hash,
        hash,
      ],
    );
    await tx.execute('UPDATE api_audit_head SET hash = ? WHERE id = 1', [hash]);
  });
}

/** The actor and address of an HTTP request, for `appendAudit`. */
export function auditActorOf(request: FastifyRequest): { actor: string; remote: string } {
  const p = request.principal;
  return { actor: p ? `${p.keyPrefix} (${p.name})` : 'anonymous', remote: request.ip };
}

function toEntry(r: AuditRow): AuditEntry {
  return {
    seq: Number(r.seq),
    id: r.id,
    at: new Date(Number(r.at)).toISOString(),
    actor: r.actor,
    action: r.action,
    target: r.target,
    detail: JSON.parse(r.detail) as Record<string, unknown>,
    remote: r.remote,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export class InvalidCursorError extends Error {}

/** Newest first, `limit` per page; `cursor` is the previous page's `nextCursor`. */
export async function listAudit(
  db: KeySql,
  page: { limit?: number; cursor?: string } = {},
): Promise<{ items: AuditEntry[]; nextCursor?: string }> {
  const limit = Math.min(Math.max(page.limit ?? 50, 1), 500);
  let before = Number.MAX_SAFE_INTEGER;
  if (page.cursor !== undefined) {
    if (!/^[1-9][0-9]{0,15}$/.test(page.cursor)) throw new InvalidCursorError('invalid cursor');
    before = Number(page.cursor);
  }
  const rows = await db.query<AuditRow>(
    'SELECT * FROM api_audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?',
    [before, limit + 1],
  );
  const items = rows.slice(0, limit).map(toEntry);
  const last = items[items.length - 1];
  return { items, ...(rows.length > limit && last ? { nextCursor: String(last.seq) } : {}) };
}

export interface AuditVerification {
  ok: boolean;
  /** Entries checked. */
  entries: number;
  /** The first entry (sequence number) that does not hold, and why. */
  brokenAt?: number;
  reason?: string;
}

/** Walks the whole chain: sequence without gaps, links, hashes, and the head at its end. */
export async function verifyAudit(db: KeySql, batch = 1000): Promise<AuditVerification> {
  let prevHash = GENESIS_HASH;
  let expected = 1;
  let entries = 0;
  for (;;) {
    const rows = await db.query<AuditRow>(
      'SELECT * FROM api_audit_log WHERE seq >= ? ORDER BY seq LIMIT ?',
      [expected, batch],
    );
    for (const r of rows) {
      const seq = Number(r.seq);
      const fail = (reason: string): AuditVerification => ({
        ok: false,
        entries,
        brokenAt: seq,
        reason,
      });
      if (seq !== expected) return { ...fail(`entry ${expected} is missing`), brokenAt: expected };
      if (r.prev_hash !== prevHash) return fail('its link does not name the entry before it');
      const hash = auditHash(prevHash, {
        seq,
        id: r.id,
        at: Number(r.at),
        actor: r.actor,
        action: r.action,
        target: r.target,
        detail: r.detail,
        remote: r.remote,
      });
      if (hash !== r.hash) return fail('its content does not match its hash');
      prevHash = hash;
      expected += 1;
      entries += 1;
    }
    if (rows.length < batch) break;
  }
  const heads = await db.query<{ seq: number | string; hash: string }>(
    'SELECT seq, hash FROM api_audit_head WHERE id = 1',
  );
  const head = heads[0];
  if (!head || Number(head.seq) !== expected - 1 || head.hash !== prevHash) {
    return {
      ok: false,
      entries,
      brokenAt: expected,
      reason: 'the chain ends before its head: entries were deleted from the end',
    };
  }
  return { ok: true, entries };
}
