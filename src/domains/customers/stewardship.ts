// The stewardship read side: open and decided tasks, each with both records and the per-field
// comparison the matcher made, and a customer's golden record with its provenance, cross-reference,
// match decisions and history. Decisions themselves are applied by the directory in the engine.
import type { CustomerDirectory, CustomerSql } from './directory.js';
import { attributeOf, type CustomerAttribute, type SourceRecord } from './survivorship.js';

export type TaskStatus = 'open' | 'merged' | 'kept-apart' | 'obsolete';

export interface TaskSummary {
  id: string;
  status: TaskStatus;
  customerA: string;
  customerB: string;
  score: number;
  probability: number;
  rule: string | null;
  createdAt: string;
  decision: string | null;
  reason: string | null;
  decidedBy: string | null;
  decidedAt: string | null;
  mergeId: string | null;
}

export interface FieldComparisonView {
  field: string;
  level: string;
  weight: number;
  a: unknown;
  b: unknown;
}

export interface TaskDetail extends TaskSummary {
  recordA: SourceRecord | null;
  recordB: SourceRecord | null;
  comparison: FieldComparisonView[];
}

interface TaskRow extends Record<string, unknown> {
  id: string;
  status: string;
  customer_a: string;
  customer_b: string;
  record_a_system: string;
  record_a_id: string;
  record_b_system: string;
  record_b_id: string;
  score: number | string;
  probability: number | string;
  explanation: string;
  created_at: number | string;
  decision: string | null;
  reason: string | null;
  decided_by: string | null;
  decided_at: number | string | null;
  merge_id: string | null;
}

const iso = (v: unknown): string => new Date(Number(v)).toISOString();

function summary(r: TaskRow): TaskSummary {
  const explanation = JSON.parse(r.explanation) as { rule?: string | null };
  return {
    id: r.id,
    status: r.status as TaskStatus,
    customerA: r.customer_a,
    customerB: r.customer_b,
    score: Number(r.score),
    probability: Number(r.probability),
    rule: explanation.rule ?? null,
    createdAt: iso(r.created_at),
    decision: r.decision,
    reason: r.reason,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at === null ? null : iso(r.decided_at),
    mergeId: r.merge_id,
  };
}

/** Which record value a matcher field compares (for showing both sides). */
const FIELD_VALUES: Record<string, (r: SourceRecord) => unknown> = {
  givenName: (r) => r.givenName,
  surname: (r) => r.familyName,
  email: (r) => attributeOf(r, 'email'),
  phone: (r) => attributeOf(r, 'phone'),
  dateOfBirth: (r) => r.dateOfBirth,
  streetNumber: (r) => addressPart(r, (a) => a.lines[0]),
  streetName: (r) => addressPart(r, (a) => a.lines[0]),
  addressLine2: (r) => addressPart(r, (a) => a.lines[1]),
  city: (r) => addressPart(r, (a) => a.city),
  postcode: (r) => addressPart(r, (a) => a.postalCode),
  state: (r) => addressPart(r, (a) => a.region),
  loyaltyId: (r) => r.loyaltyId,
};

function addressPart(
  r: SourceRecord,
  pick: (a: SourceRecord['addresses'][number]['address']) => unknown,
): unknown {
  const a = (r.addresses.find((x) => x.default) ?? r.addresses[0])?.address;
  return a ? pick(a) : undefined;
}

export class StewardshipQueries {
  constructor(private readonly directory: CustomerDirectory) {}

  /** Tasks, oldest first within a status; `cursor` is the last id of the previous page. */
  async listTasks(
    db: CustomerSql,
    q: { status?: TaskStatus | 'all'; limit: number; cursor?: string },
  ): Promise<{ items: TaskSummary[]; nextCursor: string | null }> {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (q.status !== 'all') {
      where.push('status = ?');
      params.push(q.status ?? 'open');
    }
    if (q.cursor) {
      const at = await db.query<{ created_at: number | string }>(
        'SELECT created_at FROM customer_stewardship_tasks WHERE id = ?',
        [q.cursor],
      );
      if (at[0]) {
        where.push('(created_at > ? OR (created_at = ? AND id > ?))');
        params.push(Number(at[0].created_at), Number(at[0].created_at), q.cursor);
      }
    }
    const rows = await db.query<TaskRow>(
      `SELECT * FROM customer_stewardship_tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY created_at, id LIMIT ?`,
      [...params, q.limit + 1],
    );
    const items = rows.slice(0, q.limit).map(summary);
    return {
      items,
      nextCursor: rows.length > q.limit ? (items[items.length - 1]?.id ?? null) : null,
    };
  }

  async task(db: CustomerSql, id: string): Promise<TaskDetail | undefined> {
    const rows = await db.query<TaskRow>('SELECT * FROM customer_stewardship_tasks WHERE id = ?', [
      id,
    ]);
    const row = rows[0];
    if (!row) return undefined;
    const recordA = await this.record(db, row.record_a_system, row.record_a_id);
    const recordB = await this.record(db, row.record_b_system, row.record_b_id);
    const explanation = JSON.parse(row.explanation) as {
      fields: Array<{ field: string; level: string; weight: number }>;
    };
    const comparison = explanation.fields.map((f) => {
      const value = FIELD_VALUES[f.field];
      return {
        ...f,
        a: recordA && value ? (value(recordA) ?? null) : null,
        b: recordB && value ? (value(recordB) ?? null) : null,
      };
    });
    return { ...summary(row), recordA, recordB, comparison };
  }

  private async record(
    db: CustomerSql,
    system: string,
    sourceId: string,
  ): Promise<SourceRecord | null> {
    const rows = await db.query<{ record_sealed: string }>(
      'SELECT record_sealed FROM customer_source_records WHERE system = ? AND source_id = ?',
      [system, sourceId],
    );
    return rows[0] ? this.directory.vault.open<SourceRecord>(rows[0].record_sealed) : null;
  }

  /** A customer's golden record with provenance, cross-reference, decisions and history. */
  async customer(db: CustomerSql, id: string) {
    const current = await this.directory.currentId(db, id);
    if (!current) return undefined;
    const golden = await this.directory.golden(db, current);
    if (!golden) return undefined;
    const decisions = await db.query<{
      system: string;
      source_id: string;
      decision: string;
      rule: string | null;
      score: number | null;
      probability: number | null;
      candidate_id: string | null;
      explanation: string;
      decided_at: number | string;
    }>(
      `SELECT d.* FROM customer_match_decisions d
         JOIN customer_source_records r ON r.system = d.system AND r.source_id = d.source_id
        WHERE r.customer_id = ? ORDER BY d.decided_at`,
      [current],
    );
    const history = await db.query<{ kind: string; detail: string; at: number | string }>(
      'SELECT kind, detail, at FROM customer_history WHERE customer_id = ? ORDER BY seq',
      [current],
    );
    return {
      id: current,
      requestedId: id,
      provisional: golden.provisional,
      version: golden.version,
      profile: golden.profile,
      provenance: golden.provenance as Partial<Record<CustomerAttribute, unknown>>,
      decisions: decisions.map((d) => ({
        system: d.system,
        sourceId: d.source_id,
        decision: d.decision,
        rule: d.rule,
        score: d.score === null ? null : Number(d.score),
        probability: d.probability === null ? null : Number(d.probability),
        candidateId: d.candidate_id,
        fields: JSON.parse(d.explanation) as unknown[],
        decidedAt: iso(d.decided_at),
      })),
      history: history.map((h) => ({
        kind: h.kind,
        at: iso(h.at),
        detail: JSON.parse(h.detail) as Record<string, unknown>,
      })),
    };
  }
}
