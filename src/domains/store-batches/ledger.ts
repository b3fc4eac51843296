// The store transaction ledger: which (store, session, sequence) Middlemart has taken, as which
// message, and the gaps between them. Resequencing is not done here: transactions after a gap are
// taken (a lost transaction must not stop a store's trading); the gap is reported until the store
// sends the missing numbers.
import type { SqlRunner } from '../../ports/sql.js';

export interface RecordedTransaction {
  sequence: number;
  transactionId: string;
  eventType: string;
  messageId: string;
  requestHash: string;
}

export interface SequenceGap {
  session: string;
  /** First missing sequence number. */
  from: number;
  /** Last missing sequence number (inclusive). */
  to: number;
  missing: number;
}

export interface SessionProgress {
  session: string;
  /** Transactions taken in this session. */
  received: number;
  /** Highest sequence taken. */
  lastSequence: number;
}

const CHUNK = 200;

/** What the ledger holds for these sequences of a store session. */
export async function recordedTransactions(
  sql: SqlRunner,
  storeId: string,
  session: string,
  sequences: readonly number[],
): Promise<Map<number, RecordedTransaction>> {
  const out = new Map<number, RecordedTransaction>();
  for (let i = 0; i < sequences.length; i += CHUNK) {
    const chunk = sequences.slice(i, i + CHUNK);
    const rows = await sql.query<{
      sequence: number | string;
      transaction_id: string;
      event_type: string;
      message_id: string;
      request_hash: string;
    }>(
      `SELECT sequence, transaction_id, event_type, message_id, request_hash FROM store_transactions
        WHERE store_id = ? AND session = ? AND sequence IN (${chunk.map(() => '?').join(', ')})`,
      [storeId, session, ...chunk],
    );
    for (const r of rows) {
      out.set(Number(r.sequence), {
        sequence: Number(r.sequence),
        transactionId: r.transaction_id,
        eventType: r.event_type,
        messageId: r.message_id,
        requestHash: r.request_hash,
      });
    }
  }
  return out;
}

/** Records taken transactions (a row already there stays as it is). */
export async function recordTransactions(
  sql: SqlRunner,
  storeId: string,
  session: string,
  rows: ReadonlyArray<RecordedTransaction & { kind: string }>,
  batchId: string | undefined,
  at: number,
): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const chunk = rows.slice(i, i + CHUNK);
    await sql.execute(
      `INSERT INTO store_transactions
         (store_id, session, sequence, transaction_id, kind, event_type, message_id, request_hash, batch_id, accepted_at)
       VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}
       ON CONFLICT (store_id, session, sequence) DO NOTHING`,
      chunk.flatMap((r) => [
        storeId,
        session,
        r.sequence,
        r.transactionId,
        r.kind,
        r.eventType,
        r.messageId,
        r.requestHash,
        batchId ?? null,
        at,
      ]),
    );
  }
}

/** Every run of missing sequence numbers of a store, per session (below its highest one taken). */
export async function sequenceGaps(sql: SqlRunner, storeId: string): Promise<SequenceGap[]> {
  const rows = await sql.query<{
    session: string;
    prev: number | string;
    sequence: number | string;
  }>(
    `SELECT session, prev, sequence FROM (
       SELECT session, sequence,
              LAG(sequence, 1, 0) OVER (PARTITION BY session ORDER BY sequence) AS prev
         FROM store_transactions WHERE store_id = ?
     ) t WHERE sequence > prev + 1 ORDER BY session, sequence`,
    [storeId],
  );
  return rows.map((r) => {
    const from = Number(r.prev) + 1;
    const to = Number(r.sequence) - 1;
    return { session: r.session, from, to, missing: to - from + 1 };
  });
}

/** How far each session of a store has come. */
export async function sessionProgress(sql: SqlRunner, storeId: string): Promise<SessionProgress[]> {
  const rows = await sql.query<{
    session: string;
    received: number | string;
    last: number | string;
  }>(
    `SELECT session, COUNT(*) AS received, MAX(sequence) AS last FROM store_transactions
      WHERE store_id = ? GROUP BY session ORDER BY session`,
    [storeId],
  );
  return rows.map((r) => ({
    session: r.session,
    received: Number(r.received),
    lastSequence: Number(r.last),
  }));
}

/** The answer given to an earlier upload under this Idempotency-Key, if any. */
export async function batchAnswer(
  sql: SqlRunner,
  storeId: string,
  idempotencyKey: string,
): Promise<{ requestHash: string; answer: unknown } | undefined> {
  const rows = await sql.query<{ request_hash: string; answer: string }>(
    'SELECT request_hash, answer FROM store_batch_answers WHERE store_id = ? AND idempotency_key = ?',
    [storeId, idempotencyKey],
  );
  const row = rows[0];
  return row
    ? { requestHash: row.request_hash, answer: JSON.parse(row.answer) as unknown }
    : undefined;
}

/** Keeps the answer of an upload for its Idempotency-Key (the first answer stays). */
export async function saveBatchAnswer(
  sql: SqlRunner,
  storeId: string,
  idempotencyKey: string,
  requestHash: string,
  answer: unknown,
  at: number,
): Promise<void> {
  await sql.execute(
    `INSERT INTO store_batch_answers (store_id, idempotency_key, request_hash, answer, created_at)
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (store_id, idempotency_key) DO NOTHING`,
    [storeId, idempotencyKey, requestHash, JSON.stringify(answer), at],
  );
}
